"""The API's routes under /api/v1/."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from . import auth_views, policy_views, views

router = SimpleRouter()
router.register("videos", views.VideoViewSet, basename="video")
router.register("images", views.ImageViewSet, basename="image")
router.register("attached-media", views.AttachedMediaViewSet, basename="attached-media")

urlpatterns = [
    path("", views.ApiRootView.as_view(), name="api-root"),
    path("vod/events/", views.VodEventView.as_view(), name="vod-events"),
    path("auth/token/", auth_views.TokenView.as_view(), name="auth-token"),
    path("auth/tokens/", auth_views.TokensView.as_view(), name="auth-tokens"),
    path("me/policy/", policy_views.MyPolicyView.as_view(), name="my-policy"),
    *router.urls,
]
