"""factory_boy factories for rows that tests need without going through VOD."""

import uuid

import factory
from django.contrib.auth import get_user_model

from uploads.models import UploadStatus, VideoUpload

TEST_PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    """A user with a known password."""

    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password(TEST_PASSWORD)


def staff_with(*codenames, **fields):
    """A staff member holding exactly these permissions (by codename)."""
    from django.contrib.auth.models import Permission

    person = UserFactory(is_staff=True, **fields)
    person.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return person


class VideoUploadFactory(factory.django.DjangoModelFactory):
    """A video row as services would leave it after issuing a credential."""

    class Meta:
        model = VideoUpload

    owner = factory.SubFactory(UserFactory)
    vod_id = factory.LazyFunction(lambda: uuid.uuid4().hex)
    status = UploadStatus.UPLOADING
    title = factory.Sequence(lambda n: f"Video {n}")
    file_name = "movie.mp4"
