"""Who may act on an upload: its owner, or staff holding the permission the admin requires.

The API follows the admin's rules: the staff flag alone grants nothing. Seeing someone
else's upload needs `view_<model>`; a credential for it needs the refresh permission (it
lets the holder write the source file); cancelling it needs the cancel permission. Each
refusal to someone who can see the upload is audited with both users.
"""

from __future__ import annotations

from .. import audit
from ..audit import RequestContext
from ..models import AuditOutcome, MediaUpload

# API action -> the permission (codename, with the model's name in it) it needs on an upload
# that is not the caller's own.
_ACTION_PERMISSIONS = {
    "list": "view_{model}",
    "retrieve": "view_{model}",
    "refresh": "refresh_{model}_credential",
    "destroy": "cancel_{model}",
}


class NotPermitted(Exception):
    """The caller may see the upload but not do this to it."""


def staff_permitted(user, model: type[MediaUpload], action: str) -> bool:
    """Whether `user` may do `action` on other users' uploads of `model`: an active staff
    member holding the permission the admin asks for the same thing."""
    template = _ACTION_PERMISSIONS.get(action)
    if template is None or not (user.is_active and user.is_staff):
        return False
    return user.has_perm(f"uploads.{template.format(model=model._meta.model_name)}")


def upload_action_check(*, upload: MediaUpload, user, action: str,
                        context: RequestContext) -> None:
    """Raise NotPermitted (audited) unless `user` owns `upload` or may do `action` on it."""
    if upload.owner_id == user.pk or staff_permitted(user, type(upload), action):
        return
    audit.record("upload.access.refused", outcome=AuditOutcome.REJECTED, context=context,
                 target=upload, data={"action": action, "owner": upload.owner.get_username()})
    raise NotPermitted(f"You may not {action} another user's upload.")


def on_behalf(upload: MediaUpload, context: RequestContext) -> dict:
    """Audit data naming the upload's owner when someone else acts on it."""
    actor = context.actor
    if actor is not None and getattr(actor, "pk", None) != upload.owner_id:
        return {"owner": upload.owner.get_username()}
    return {}
