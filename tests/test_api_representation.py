"""The response serializers render by hand (uploads/api/serializers.py, for speed); here that
rendering is held equal to DRF's generic field-by-field rendering of the same declared
fields, for every serializer and for rows in every state."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework import serializers as drf

from uploads import services
from uploads.api import serializers
from uploads.audit import RequestContext
from uploads.models import AttachedMediaUpload, ImageUpload, VideoUpload

pytestmark = pytest.mark.django_db(transaction=True)

RECORDS = {
    VideoUpload: serializers.VideoUploadSerializer,
    ImageUpload: serializers.ImageUploadSerializer,
    AttachedMediaUpload: serializers.AttachedMediaUploadSerializer,
}
ISSUED = {
    VideoUpload: serializers.VideoIssuedSerializer,
    ImageUpload: serializers.ImageIssuedSerializer,
    AttachedMediaUpload: serializers.AttachedMediaIssuedSerializer,
}


def generic(serializer, instance) -> dict:
    """What DRF itself renders for the serializer's declared fields."""
    return dict(drf.Serializer.to_representation(serializer, instance))


def issue_all(user) -> list[services.Issued]:
    context = RequestContext(actor=user, request_id="representation")
    return [
        services.video_issue(owner=user, title="Clip ü", file_name="clip.mp4", context=context,
                             file_size=1234, tags="a,b", cate_id=7,
                             cover_url="https://example.com/c.png", extend={"k": [1, "v"]}),
        services.image_issue(owner=user, image_type="cover", image_ext="jpg", context=context,
                             title="Poster", original_file_name="poster.jpg"),
        services.attached_media_issue(owner=user, business_type="subtitle", media_ext="srt",
                                      context=context, file_name="subs.srt", cate_ids="3,4"),
    ]


def test_issued_answers_equal_drfs_rendering(user, sandbox):
    for issued in issue_all(user):
        serializer = ISSUED[type(issued.upload)](issued.upload,
                                                 context={"credential": issued.credential})
        assert serializer.data == generic(serializer, issued.upload)
        assert set(serializer.data) == set(serializer.Meta.fields)
        nested = serializers.UploadCredentialSerializer(issued.credential)
        assert nested.data == generic(nested, issued.credential)


def test_records_in_every_state_equal_drfs_rendering(user, sandbox):
    rows = [issued.upload for issued in issue_all(user)]
    for row in rows:
        variants = [row]
        requesting = type(row)(owner=user, title="pending")  # no VOD id, no expiry
        requesting.save(force_insert=True)
        variants.append(requesting)
        failed = type(row).objects.get(pk=row.pk)
        failed.error_code, failed.error_message = "InternalError", "VOD failed."
        failed.credential_expires_at = timezone.now() + timedelta(microseconds=7)
        variants.append(failed)
        for variant in variants:
            serializer = RECORDS[type(row)](variant)
            assert serializer.data == generic(serializer, variant), type(row)
            assert set(serializer.data) == set(serializer.Meta.fields)


def test_lists_render_through_the_same_path(api, sandbox):
    for _ in range(3):
        assert api.post("/api/v1/videos/", {"title": "t", "file_name": "t.mp4"},
                        format="json").status_code == 201
    listed = api.get("/api/v1/videos/").json()["results"]
    rows = {row.vod_id: row for row in VideoUpload.objects.select_related("owner")}
    for item in listed:
        serializer = serializers.VideoUploadSerializer(rows[item["video_id"]])
        assert item == generic(serializer, rows[item["video_id"]])
