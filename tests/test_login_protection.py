"""Brute force on the login forms is stopped (django-axes), and every login is audited
(issue 12, finding 4)."""

import pytest
from django.conf import settings

from tests.factories import TEST_PASSWORD, UserFactory
from uploads import audit
from uploads.models import AuditEvent

pytestmark = pytest.mark.django_db

FORMS = {"site": "/accounts/login/", "admin": "/admin/login/"}


@pytest.fixture
def root():
    return UserFactory(username="root", is_staff=True, is_superuser=True)


def attempt(client, path, password, address="203.0.113.9"):
    return client.post(path, {"username": "root", "password": password},
                       REMOTE_ADDR=address)


@pytest.mark.parametrize("form", FORMS)
def test_the_right_password_is_refused_after_too_many_wrong_ones(client, root, form):
    path = FORMS[form]
    limit = settings.AXES_FAILURE_LIMIT
    answers = [attempt(client, path, f"wrong-{n}") for n in range(limit)]

    assert [answer.status_code for answer in answers[:-1]] == [200] * (limit - 1)
    assert answers[-1].status_code == 429
    locked = attempt(client, path, TEST_PASSWORD)
    assert locked.status_code == 429 and b"Too many failed logins" in locked.content
    assert "_auth_user_id" not in client.session

    # Another address is not locked out.
    assert attempt(client, path, TEST_PASSWORD, address="198.51.100.4").status_code == 302
    assert client.session["_auth_user_id"] == str(root.pk)


def test_logins_failures_and_lockouts_are_audited_without_the_password(client, root):
    path = FORMS["site"]
    for n in range(settings.AXES_FAILURE_LIMIT):
        attempt(client, path, f"secret-guess-{n}")
    attempt(client, path, TEST_PASSWORD, address="198.51.100.4")

    failed = AuditEvent.objects.filter(action="auth.login.failed")
    assert failed.count() == settings.AXES_FAILURE_LIMIT
    first = failed.order_by("sequence").first()
    assert first.outcome == "failure" and first.data["username"] == "root"
    assert first.client_ip == "203.0.113.9" and first.actor_label == "login"
    assert AuditEvent.objects.filter(action="auth.locked_out", outcome="rejected").count() >= 1
    success = AuditEvent.objects.get(action="auth.login")
    assert success.actor_ref == root.pk and success.client_ip == "198.51.100.4"
    assert not AuditEvent.objects.filter(data__icontains="secret-guess").exists()
    assert audit.verify_chain().ok


def test_a_lockout_ends_after_its_cool_off(client, root):
    from axes.models import AccessAttempt
    from django.utils import timezone

    path = FORMS["site"]
    for n in range(settings.AXES_FAILURE_LIMIT):
        attempt(client, path, f"wrong-{n}")
    assert attempt(client, path, TEST_PASSWORD).status_code == 429

    AccessAttempt.objects.update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME * 2)

    assert attempt(client, path, TEST_PASSWORD).status_code == 302
