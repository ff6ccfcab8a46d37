"""POST /api/v1/videos/: CreateUploadVideo as Alibaba's sample calls it, then a row.

No idempotency, no audit trail, no limiter, no row before VOD is called, no retries, no
error mapping: an SDK exception is a 500. What a developer writes from the sample.
"""

from functools import cache

from alibabacloud_tea_openapi.models import Config
from alibabacloud_vod20170321 import models as vod_models
from alibabacloud_vod20170321.client import Client
from django.conf import settings
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from .models import Video


@cache
def vod_client() -> Client:
    """One SDK client per process (the sample builds one in `create_client()`)."""
    return Client(Config(access_key_id=settings.VOD_ACCESS_KEY_ID,
                         access_key_secret=settings.VOD_ACCESS_KEY_SECRET,
                         endpoint=settings.VOD_ENDPOINT, protocol="http",
                         region_id="cn-shanghai"))


class CreateVideoSerializer(serializers.Serializer):
    """The two fields the sample's request needs."""

    title = serializers.CharField(max_length=128)
    file_name = serializers.CharField(max_length=255)


class CreateVideo(APIView):
    """Ask VOD for an upload address and credential; record the VideoId."""

    def post(self, request):
        """CreateUploadVideo, then Video.objects.create, then VOD's three fields."""
        serializer = CreateVideoSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        title, file_name = serializer.validated_data["title"], serializer.validated_data["file_name"]
        answer = vod_client().create_upload_video(
            vod_models.CreateUploadVideoRequest(title=title, file_name=file_name)).body
        Video.objects.create(owner=request.user, video_id=answer.video_id, title=title,
                             file_name=file_name)
        return Response({"VideoId": answer.video_id, "UploadAddress": answer.upload_address,
                         "UploadAuth": answer.upload_auth}, status=status.HTTP_201_CREATED)
