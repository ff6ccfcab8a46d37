"""Records of every media id vodportal asked VOD for, and the audit trail.

Rows are written only by `uploads.services`. A row exists (status `requesting`) before VOD
is called, so a crash between the two leaves a trace rather than an orphan in VOD.
"""

import base64
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from .validation import MARKER_TAG_PREFIX


class UploadStatus(models.TextChoices):
    """Our lifecycle of an upload, moved only by services."""

    REQUESTING = "requesting", "Requesting credential"
    UPLOADING = "uploading", "Uploading"
    UPLOADED = "uploaded", "Uploaded"
    PROCESSING = "processing", "Processing"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"
    BLOCKED = "blocked", "Blocked"
    CANCELLED = "cancelled", "Cancelled"
    # The media existed in VOD (its file had arrived) and was deleted there: by DELETE on
    # the API, by staff, or by anyone in VOD's console (DeleteMediaComplete, vod_sync).
    DELETED = "deleted", "Deleted"
    # Its file broke the upload's policy (larger than declared or allowed): deleted in VOD.
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"


# Statuses an upload may still move from on its own (its bytes, VOD's callbacks, vod_sync):
# the pages follow them live, vod_sync looks them up, quotas count them as in flight.
IN_FLIGHT_STATUSES = (UploadStatus.REQUESTING, UploadStatus.UPLOADING, UploadStatus.UPLOADED,
                      UploadStatus.PROCESSING)


class MediaUpload(models.Model):
    """What all three kinds of upload keep. Never holds UploadAuth or any STS secret."""

    # Our id doubles as VOD's ReferenceId (32 hex characters, within VOD's 6-64), so a
    # retried CreateUploadVideo cannot make a second video and a lost answer can be found.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="%(class)ss"
    )
    vod_id = models.CharField("VOD id", max_length=64, unique=True, null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=UploadStatus.choices, default=UploadStatus.REQUESTING
    )
    vod_status = models.CharField("VOD status", max_length=32, blank=True,
                                  help_text="VOD's last reported status")

    title = models.CharField(max_length=128, blank=True)
    description = models.TextField(blank=True)
    file_name = models.CharField(max_length=255, blank=True)
    file_size = models.BigIntegerField(null=True, blank=True,
                                       help_text="As declared when the credential was asked for")
    uploaded_size = models.BigIntegerField(null=True, blank=True,
                                           help_text="As VOD reported it once the file arrived")
    policy = models.ForeignKey("uploads.UploadPolicy", on_delete=models.SET_NULL, null=True,
                               blank=True, related_name="+",
                               help_text="The policy the upload was issued under")
    tags = models.CharField(max_length=600, blank=True, help_text="Comma-separated, as sent to VOD")
    cate_id = models.BigIntegerField(null=True, blank=True)
    app_id = models.CharField(max_length=64, blank=True)
    storage_location = models.CharField(max_length=128, blank=True)
    extend = models.JSONField(null=True, blank=True, help_text="UserData.Extend, echoed in callbacks")

    # The non-secret parts of UploadAddress.
    upload_endpoint = models.CharField(max_length=255, blank=True)
    upload_bucket = models.CharField(max_length=128, blank=True)
    upload_object_key = models.CharField(max_length=512, blank=True)

    credential_expires_at = models.DateTimeField(null=True, blank=True)
    credentials_issued = models.PositiveIntegerField(default=0)
    last_vod_request_id = models.CharField("last VOD request id", max_length=64, blank=True)
    error_code = models.CharField(max_length=128, blank=True)
    error_message = models.CharField(max_length=512, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ["-created_at"]

    @property
    def reference_id(self) -> str:
        """The ReferenceId this row is known by in VOD."""
        return self.id.hex

    @property
    def marker_tag(self) -> str:
        """The tag this row's image or attached media carries in VOD, so that SearchMedia
        finds it again when the create's answer was lost (they have no ReferenceId).

        Our id in base32: 31 bytes with the prefix, within VOD's 32 bytes per tag.
        """
        return MARKER_TAG_PREFIX + base64.b32encode(self.id.bytes).decode().rstrip("=").lower()

    def __str__(self) -> str:
        return f"{self.vod_id or 'pending'} ({self.title or self.file_name})"


class VideoUpload(MediaUpload):
    """An audio or video file: CreateUploadVideo / RefreshUploadVideo."""

    kind = "video"

    template_group_id = models.CharField(max_length=64, blank=True)
    workflow_id = models.CharField(max_length=64, blank=True)
    cover_url = models.URLField(max_length=1024, blank=True)

    class Meta(MediaUpload.Meta):
        verbose_name = "video upload"
        permissions = [
            ("refresh_videoupload_credential", "Can refresh upload credentials"),
            ("sync_videoupload", "Can sync video status from VOD"),
            ("cancel_videoupload", "Can cancel videos (deletes them in VOD)"),
        ]
        indexes = [
            models.Index(fields=["owner", "-created_at", "-id"], name="video_owner_created"),
            models.Index(fields=["status", "-created_at", "-id"], name="video_status_created"),
            models.Index(fields=["-created_at", "-id"], name="video_created"),
        ]


class ImageUpload(MediaUpload):
    """An image: CreateUploadImage."""

    kind = "image"

    image_type = models.CharField(max_length=16)
    image_ext = models.CharField(max_length=8)
    image_url = models.URLField(max_length=1024, blank=True)
    file_url = models.URLField(max_length=1024, blank=True)

    class Meta(MediaUpload.Meta):
        verbose_name = "image upload"
        permissions = [
            ("sync_imageupload", "Can sync image status from VOD"),
            ("cancel_imageupload", "Can cancel images (deletes them in VOD)"),
        ]
        indexes = [
            models.Index(fields=["owner", "-created_at", "-id"], name="image_owner_created"),
            models.Index(fields=["status", "-created_at", "-id"], name="image_status_created"),
            models.Index(fields=["-created_at", "-id"], name="image_created"),
        ]


class AttachedMediaUpload(MediaUpload):
    """An auxiliary asset (watermark, subtitle, material): CreateUploadAttachedMedia."""

    kind = "attached_media"

    business_type = models.CharField(max_length=16)
    media_ext = models.CharField(max_length=8)
    cate_ids = models.CharField(max_length=128, blank=True)
    media_url = models.URLField(max_length=1024, blank=True)
    file_url = models.URLField(max_length=1024, blank=True)

    class Meta(MediaUpload.Meta):
        verbose_name = "attached media upload"
        verbose_name_plural = "attached media uploads"
        permissions = [
            ("sync_attachedmediaupload", "Can sync attached media status from VOD"),
            ("cancel_attachedmediaupload", "Can cancel attached media (deletes them in VOD)"),
        ]
        indexes = [
            models.Index(fields=["owner", "-created_at", "-id"], name="attached_owner_created"),
            models.Index(fields=["status", "-created_at", "-id"], name="attached_status_created"),
            models.Index(fields=["-created_at", "-id"], name="attached_created"),
        ]


# The upload models by their kind ("video", "image", "attached_media"): the one place that
# lists them, for whatever must go through every kind.
UPLOAD_MODELS: dict[str, type[MediaUpload]] = {
    model.kind: model for model in (VideoUpload, ImageUpload, AttachedMediaUpload)}


class AuditOutcome(models.TextChoices):
    """How the audited action ended."""

    SUCCESS = "success", "Success"
    FAILURE = "failure", "Failure"
    REJECTED = "rejected", "Rejected"


class AuditEvent(models.Model):
    """One fact in the append-only audit trail. Written only through `uploads.audit`."""

    # Its place in the chain; NULL until the sealer chains it (uploads.audit_sealer).
    sequence = models.BigIntegerField(unique=True, null=True, blank=True)
    created_at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Frozen copies, covered by the hash: the trail still names the actor after the account
    # is renamed or deleted (deletion nulls `actor`, the only change the triggers allow).
    actor_ref = models.BigIntegerField(null=True, blank=True)
    actor_label = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=64)
    outcome = models.CharField(max_length=16, choices=AuditOutcome.choices)
    target_kind = models.CharField(max_length=32, blank=True)
    target_vod_id = models.CharField("target VOD id", max_length=64, blank=True)
    target_pk = models.CharField(max_length=64, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    vod_request_id = models.CharField("VOD request id", max_length=64, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=256, blank=True)
    data = models.JSONField(default=dict, blank=True)
    # HMAC(AUDIT_KEY, previous row's hash + this row's canonical form + mac), set when the
    # row is sealed: see uploads.audit.
    hash = models.CharField(max_length=64, null=True, blank=True)
    # "nonce:HMAC(AUDIT_KEY, the row as written)", by the writer; the sealer chains only rows
    # whose mac holds. NULL on rows written before the sealer existed (sealed already).
    mac = models.CharField(max_length=97, null=True, blank=True)

    class Meta:
        ordering = ["-sequence"]
        constraints = [
            # A copy of a genuine row, mac and all, cannot be inserted to be sealed again.
            # (A constraint, not unique=True: no second, LIKE-able index on PostgreSQL.)
            models.UniqueConstraint(fields=["mac"], name="audit_mac_unique"),
        ]
        indexes = [
            models.Index(fields=["target_vod_id"], name="audit_target_vod_id"),
            models.Index(fields=["target_pk"], name="audit_target_pk"),
            models.Index(fields=["request_id"], name="audit_request_id"),
            models.Index(fields=["vod_request_id"], name="audit_vod_request_id"),
            models.Index(fields=["action", "-sequence"], name="audit_action_seq"),
            models.Index(fields=["outcome", "-sequence"], name="audit_outcome_seq"),
            models.Index(fields=["actor", "-sequence"], name="audit_actor_seq"),
            # The sealer's work list, in id order: only rows not sealed yet (a few at a time).
            models.Index(fields=["id"], condition=models.Q(sequence__isnull=True),
                         name="audit_unsealed"),
        ]

    def __str__(self) -> str:
        place = f"#{self.sequence}" if self.sequence is not None else "(pending)"
        return f"{place} {self.action} {self.outcome}"


class VodEventStatus(models.TextChoices):
    """What became of one event notification."""

    RECEIVED = "received", "Received"
    ACCEPTED = "accepted", "Accepted"
    DUPLICATE = "duplicate", "Duplicate (already processed)"
    REJECTED = "rejected", "Rejected"


class VodEvent(models.Model):
    """One event notification from VOD, stored raw before it is verified or acted on.

    The signature header is not kept: with the URL and timestamp it would allow guessing the
    callback key offline.
    """

    received_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=16, choices=VodEventStatus.choices,
                              default=VodEventStatus.RECEIVED)
    reason = models.CharField(max_length=200, blank=True)
    event_type = models.CharField(max_length=64, blank=True)
    media_id = models.CharField(max_length=64, blank=True)
    event_time = models.CharField(max_length=32, blank=True)
    vod_timestamp = models.CharField(max_length=32, blank=True, help_text="X-VOD-TIMESTAMP")
    # SHA-256 of the body: VOD's retries and duplicates carry the same body.
    fingerprint = models.CharField(max_length=64, db_index=True)
    body = models.TextField()
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-received_at"]
        indexes = [models.Index(fields=["media_id", "-received_at"], name="vodevent_media")]
        constraints = [
            # One body is acted on once: of deliveries racing with the same body, the
            # database lets exactly one become `accepted` (the others are `duplicate`).
            models.UniqueConstraint(fields=["fingerprint"],
                                    condition=models.Q(status="accepted"),
                                    name="vodevent_accepted_once"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type or 'event'} {self.media_id} ({self.status})"


class IdempotencyRecord(models.Model):
    """One Idempotency-Key a user sent to a create endpoint, and the answer it got.

    The answer carries an upload credential, so it is stored encrypted (see
    uploads.api.idempotency); the key, the body's fingerprint and the status are plain.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="+")
    key = models.CharField(max_length=255)
    scope = models.CharField(max_length=64, help_text="The endpoint, e.g. video.create")
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the request body")
    RUNNING, COMPLETED, INTERRUPTED = "running", "completed", "interrupted"
    state = models.CharField(max_length=16, default=RUNNING, choices=[
        (RUNNING, "Running"), (COMPLETED, "Completed"),
        (INTERRUPTED, "Interrupted: VOD may have acted; a retry resumes the same upload")])
    # The upload row this key creates; a retry after an interrupted attempt resumes it.
    upload_id = models.UUIDField(null=True, blank=True, db_index=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, help_text="Encrypted")
    created_at = models.DateTimeField(auto_now_add=True)
    # When a request last took the key to run it: a `running` key whose request died (a
    # killed worker) may be taken over once IDEMPOTENCY_LEASE_SECONDS have passed.
    claimed_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "scope", "key"],
                                               name="idempotency_user_scope_key")]

    def __str__(self) -> str:
        return f"{self.scope} {self.key}"

    @classmethod
    def abandoned(cls) -> models.Q:
        """Records a retry (or vod_sync) may take over: interrupted, or running past
        IDEMPOTENCY_LEASE_SECONDS (their request died without saying so)."""
        lease_start = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_LEASE_SECONDS)
        return models.Q(state=cls.INTERRUPTED) | models.Q(state=cls.RUNNING,
                                                          claimed_at__lt=lease_start)


class ExternalIdentity(models.Model):
    """A user known from an OpenID Connect provider: the provider's (issuer, subject) pair
    names exactly one user, created on first sight (uploads/oidc.py)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="external_identities")
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"],
                                               name="external_identity_once")]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"


class ApiTokenUse(models.Model):
    """When an API token was last used, to the minute: written at most once a minute per
    token and process, so a busy token costs no write per request."""

    token = models.OneToOneField("knox.AuthToken", on_delete=models.CASCADE, primary_key=True,
                                 related_name="use")
    last_used_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"last used {self.last_used_at:%Y-%m-%d %H:%M}"


class UploadPolicy(models.Model):
    """What a group's users may upload, and the VOD settings the server chooses for them
    (uploads/services/policies.py). A user is governed by the first policy (by `priority`)
    of any of their groups, else by the default policy, else by none (no limits)."""

    name = models.CharField(max_length=64, unique=True)
    priority = models.PositiveIntegerField(default=100, help_text="Lower wins when a user's "
                                                                  "groups have several.")
    is_default = models.BooleanField(default=False, help_text="For users of no group with a "
                                                              "policy (one policy at most).")
    groups = models.ManyToManyField("auth.Group", blank=True, related_name="upload_policies")

    allow_video = models.BooleanField(default=True)
    allow_image = models.BooleanField(default=True)
    allow_attached_media = models.BooleanField(default=True)
    allowed_extensions = models.CharField(
        max_length=512, blank=True,
        help_text="Comma-separated (mp4,mov,png); empty: every extension VOD accepts.")
    max_video_bytes = models.BigIntegerField(null=True, blank=True)
    max_image_bytes = models.BigIntegerField(null=True, blank=True)
    max_attached_media_bytes = models.BigIntegerField(null=True, blank=True)
    max_in_flight = models.PositiveIntegerField(
        null=True, blank=True, help_text="Uploads requesting, uploading or processing at once.")
    daily_count = models.PositiveIntegerField(null=True, blank=True)
    daily_bytes = models.BigIntegerField(null=True, blank=True)
    monthly_count = models.PositiveIntegerField(null=True, blank=True)
    monthly_bytes = models.BigIntegerField(null=True, blank=True)

    # Chosen by the server for this group's uploads (empty: the deployment's VOD_* setting).
    template_group_id = models.CharField(max_length=64, blank=True)
    workflow_id = models.CharField(max_length=64, blank=True)
    app_id = models.CharField(max_length=64, blank=True)
    storage_location = models.CharField(max_length=128, blank=True)
    cate_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["priority", "name"]
        verbose_name_plural = "upload policies"
        constraints = [models.UniqueConstraint(fields=["is_default"],
                                               condition=models.Q(is_default=True),
                                               name="one_default_upload_policy")]

    def __str__(self) -> str:
        return self.name
