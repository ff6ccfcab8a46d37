"""Upload policies in the admin: staff assign them to groups; every change is audited with
its values before and after (`policy.changed`). Usage per user is on the policy's page."""

from __future__ import annotations

from django.contrib import admin
from django.forms.models import model_to_dict

from . import audit, services
from .audit import RequestContext
from .models import UploadPolicy


def _values(policy: UploadPolicy) -> dict:
    values = model_to_dict(policy, exclude=["groups"])
    values["groups"] = sorted(group.name for group in policy.groups.all()) if policy.pk else []
    return {name: value for name, value in values.items() if name != "id"}


@admin.register(UploadPolicy)
class UploadPolicyAdmin(admin.ModelAdmin):
    """Policies, the groups they govern, and each change audited with before and after."""

    list_display = ("name", "priority", "is_default", "allow_video", "allow_image",
                    "allow_attached_media", "daily_count", "monthly_bytes", "max_in_flight")
    list_editable = ()
    filter_horizontal = ("groups",)
    fieldsets = (
        (None, {"fields": ("name", "priority", "is_default", "groups")}),
        ("What may be uploaded", {"fields": (
            "allow_video", "allow_image", "allow_attached_media", "allowed_extensions",
            "max_video_bytes", "max_image_bytes", "max_attached_media_bytes")}),
        ("Quotas", {"fields": ("max_in_flight", "daily_count", "daily_bytes",
                               "monthly_count", "monthly_bytes")}),
        ("VOD settings the server chooses (empty: the deployment's)", {"fields": (
            "template_group_id", "workflow_id", "app_id", "storage_location", "cate_id")}),
    )

    def save_related(self, request, form, formsets, change):
        """Save, then audit the policy as it is now against what it was (groups included,
        which are saved only here)."""
        before = getattr(form.instance, "_vodportal_before", None)
        super().save_related(request, form, formsets, change)
        audit.record("policy.changed", context=RequestContext.from_request(request),
                     target_kind="upload_policy",
                     data={"policy": form.instance.name, "created": not change,
                           "before": before, "after": _values(form.instance)})

    def get_object(self, request, object_id, from_field=None):
        policy = super().get_object(request, object_id, from_field)
        if policy is not None:
            policy._vodportal_before = _values(policy)
        return policy

    def delete_model(self, request, obj):
        before = _values(obj)
        super().delete_model(request, obj)
        audit.record("policy.changed", context=RequestContext.from_request(request),
                     target_kind="upload_policy",
                     data={"policy": before["name"], "deleted": True, "before": before,
                           "after": None})

    def delete_queryset(self, request, queryset):
        for policy in queryset:
            self.delete_model(request, policy)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The policy's page also shows what its users have used today and this month."""
        policy = self.get_object(request, object_id)
        rows = []
        if policy is not None:
            users = {user for group in policy.groups.all() for user in group.user_set.all()[:50]}
            for user in sorted(users, key=lambda each: each.get_username())[:50]:
                used = services.usage(user)
                rows.append({"user": user.get_username(), "day_count": used.day_count,
                             "day_bytes": used.day_bytes, "month_count": used.month_count,
                             "month_bytes": used.month_bytes, "in_flight": used.in_flight})
        return super().change_view(request, object_id, form_url,
                                   extra_context={**(extra_context or {}), "usage_rows": rows})
