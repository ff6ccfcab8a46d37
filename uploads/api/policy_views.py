"""GET /api/v1/me/policy/: the caller's upload limits, what they have used and what is left
(the upload page checks a file against it before asking for a credential)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import services

_QUOTAS = (("max_in_flight", "in_flight"), ("daily_count", "day_count"),
           ("daily_bytes", "day_bytes"), ("monthly_count", "month_count"),
           ("monthly_bytes", "month_bytes"))
_KINDS = ("video", "image", "attached_media")


class QuotaSerializer(serializers.Serializer):
    limit = serializers.IntegerField(allow_null=True, help_text="null: no limit")
    used = serializers.IntegerField()
    remaining = serializers.IntegerField(allow_null=True)
    resets_at = serializers.DateTimeField(allow_null=True)


class KindLimitSerializer(serializers.Serializer):
    allowed = serializers.BooleanField()
    max_bytes = serializers.IntegerField(allow_null=True)


class MyPolicySerializer(serializers.Serializer):
    policy = serializers.CharField(allow_null=True, help_text="null: no policy, no limits")
    kinds = serializers.DictField(child=KindLimitSerializer())
    allowed_extensions = serializers.ListField(child=serializers.CharField(),
                                               help_text="Empty: every extension VOD takes.")
    quotas = serializers.DictField(child=QuotaSerializer())


class MyPolicyView(APIView):
    """The caller's policy, usage and remaining quota."""

    @extend_schema(responses={200: MyPolicySerializer})
    def get(self, request, format=None):
        """What the caller may upload now."""
        policy = services.policy_for(request.user)
        current = services.usage(request.user)
        resets = {"day": current.day_resets_at, "month": current.month_resets_at}
        quotas = {}
        for limit_name, used_name in _QUOTAS:
            limit = getattr(policy, limit_name) if policy else None
            used = getattr(current, used_name)
            period = used_name.split("_")[0]
            quotas[limit_name] = {"limit": limit, "used": used,
                                  "remaining": None if limit is None else max(0, limit - used),
                                  "resets_at": resets.get(period)}
        body = {
            "policy": policy.name if policy else None,
            "kinds": {kind: {"allowed": getattr(policy, f"allow_{kind}") if policy else True,
                             "max_bytes": getattr(policy, f"max_{kind}_bytes") if policy
                             else None} for kind in _KINDS},
            "allowed_extensions": sorted(
                {ext.strip().lower().lstrip(".") for ext in policy.allowed_extensions.split(",")
                 if ext.strip()}) if policy else [],
            "quotas": quotas,
        }
        return Response(MyPolicySerializer(body).data)
