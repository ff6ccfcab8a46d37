"""The per-process memo of which upload policy governs a user: one Redis read instead of
the policy query, and never stale after a change made through the ORM (real Redis)."""

import pytest
import redis
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import UserFactory
from uploads.models import UploadPolicy
from uploads.services import policy_for, policy_memo

pytestmark = pytest.mark.django_db(transaction=True)

MEMO_REDIS = "redis://127.0.0.1:6379/13"


@pytest.fixture
def shared_memo(settings):
    """The memo on, against a Redis database of its own, empty."""
    settings.REDIS_URL = MEMO_REDIS
    redis.Redis.from_url(MEMO_REDIS).delete(policy_memo.GENERATION.key)
    policy_memo.forget()
    yield
    policy_memo.forget()


def queries_for(user) -> tuple[UploadPolicy | None, int]:
    with CaptureQueriesContext(connection) as captured:
        policy = policy_for(user)
    return policy, len(captured)


def test_the_answer_is_remembered_until_a_policy_changes(shared_memo):
    user = UserFactory()
    everyone = UploadPolicy.objects.create(name="everyone", is_default=True)

    assert queries_for(user) == (everyone, 1)
    assert queries_for(user) == (everyone, 0)  # from the memo

    everyone.max_video_bytes = 1000
    everyone.save()
    policy, queries = queries_for(user)
    assert queries == 1 and policy.max_video_bytes == 1000
    everyone.delete()
    assert queries_for(user) == (None, 1)


def test_group_changes_retire_the_answer(shared_memo):
    user = UserFactory()
    everyone = UploadPolicy.objects.create(name="everyone", is_default=True)
    partners, staff = Group.objects.create(name="partners"), Group.objects.create(name="staff")
    for_partners = UploadPolicy.objects.create(name="partners", priority=1)
    for_partners.groups.add(partners)
    user.groups.add(staff)
    assert policy_for(user) == everyone

    user.groups.add(partners)  # the user's groups change
    assert policy_for(user) == for_partners
    for_partners.groups.remove(partners)  # the policy's groups change
    assert policy_for(user) == everyone
    for_partners.groups.add(staff)
    assert policy_for(user) == for_partners
    staff.delete()  # its memberships go without an m2m signal
    assert policy_for(user) == everyone


def test_without_a_shared_cache_every_lookup_asks_the_database(settings):
    settings.REDIS_URL = ""
    user = UserFactory()
    UploadPolicy.objects.create(name="everyone", is_default=True)

    assert queries_for(user)[1] == 1
    assert queries_for(user)[1] == 1


def test_redis_down_means_the_database_answers(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    user = UserFactory()
    everyone = UploadPolicy.objects.create(name="everyone", is_default=True)

    assert queries_for(user) == (everyone, 1)
    assert queries_for(user) == (everyone, 1)
