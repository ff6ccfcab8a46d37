"""One row per video VOD created for a user."""

from django.conf import settings
from django.db import models


class Video(models.Model):
    """What the sample's developer keeps: who asked, and the VideoId VOD gave."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    video_id = models.CharField(max_length=64)
    title = models.CharField(max_length=128)
    file_name = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
