"""API tokens in the staff admin, replacing knox's own token admin.

knox's admin listed every token's full digest and showed a new token through the messages
framework, which keeps it in a cookie. Here a token is named only by its token id (the
digest's first 12 characters, also in the rows' checkboxes), a new one is shown once on a
page that is never cached, and creating or revoking one is audited with the staff member as
actor. Each user's page lists their tokens. Loaded from `uploads/admin.py`, after knox and
django.contrib.auth registered theirs (both come before "uploads" in INSTALLED_APPS).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.widgets import ForeignKeyRawIdWidget
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.safestring import SafeData, mark_safe
from knox.models import AuthToken

from .audit import RequestContext
from .auth_audit import acting_as, token_id
from .models import ExternalIdentity
from .services import accounts


def _when(moment) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "never"


class TokenColumns:
    """The columns a token is shown with, in the list and on a user's page."""

    @admin.display(description="token id")
    def token_id(self, token) -> str:
        """A non-secret handle: the start of the token's SHA-512 digest."""
        return token_id(token)

    @admin.display(description="expires", ordering="expiry")
    def expires(self, token) -> str:
        """The expiry, or "never"."""
        return _when(token.expiry)

    @admin.display(description="last used", ordering="use__last_used_at")
    def last_used(self, token) -> str:
        """When the token was last used (to the minute), or "never"."""
        return _when(accounts.last_used(token))


class IssueTokenForm(forms.Form):
    """Whom a new token is for and how long it lives (at most REST_KNOX's TOKEN_TTL)."""

    user = forms.ModelChoiceField(queryset=get_user_model()._default_manager.filter(
        is_active=True), help_text="An active user (the id; the magnifier finds it).")
    expiry_hours = forms.IntegerField(min_value=0, label="Expires after (hours)")

    def __init__(self, *args, admin_site, **kwargs):
        super().__init__(*args, **kwargs)
        # The raw id widget: a select over every user would not scale.
        self.fields["user"].widget = ForeignKeyRawIdWidget(
            AuthToken._meta.get_field("user").remote_field, admin_site)
        limit = accounts.max_expiry_hours()
        self.fields["expiry_hours"].max_value = limit
        self.fields["expiry_hours"].help_text = (
            f"At most {limit} (REST_KNOX TOKEN_TTL)." if limit is not None
            else "0: never expires.")

    def clean_expiry_hours(self):
        """The lifetime as a timedelta (None: never), by the rules of the commands."""
        try:
            return accounts.token_expiry(self.cleaned_data["expiry_hours"])
        except accounts.AccountError as exc:
            raise ValidationError(str(exc)) from exc


class AuthTokenAdmin(TokenColumns, admin.ModelAdmin):
    """API tokens: list, search, issue (shown once), revoke. Nothing else: no change form,
    no per-token page (its URL would carry the full digest, knox's __str__ shows it)."""

    list_display = ("token_id", "user", "created", "expires", "last_used")
    list_display_links = None
    list_select_related = ("user", "use")
    ordering = ("-created",)
    search_fields = ("user__username",)  # turns the search box on; see get_search_results
    search_help_text = "An exact username, or the start of a token id."
    actions = ("revoke_tokens",)
    issue_template = "admin/knox/authtoken/issue.html"
    issued_template = "admin/knox/authtoken/issued.html"

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("", self.admin_site.admin_view(self.changelist_view),
                 name="%s_%s_changelist" % info),
            path("add/", self.admin_site.admin_view(self.add_view), name="%s_%s_add" % info),
        ]

    def get_actions(self, request):
        actions = super().get_actions(request)
        # Django's bulk delete would confirm by listing knox's __str__: the full digest.
        actions.pop("delete_selected", None)
        return actions

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(user__username=term)
        prefix = term.lower()
        if len(prefix) <= accounts.TOKEN_ID_LENGTH and all(c in "0123456789abcdef"
                                                            for c in prefix):
            match |= Q(digest__startswith=prefix)
        return queryset.filter(match), False

    def action_checkbox(self, obj):
        """The row's checkbox carries the token id, not the primary key (the full digest);
        `changelist_view` maps ids back to rows."""
        checkbox = forms.CheckboxInput(
            {"class": "action-select", "aria-label": f"Select token {token_id(obj)}"},
            lambda value: False)
        return checkbox.render(helpers.ACTION_CHECKBOX_NAME, token_id(obj))

    def changelist_view(self, request, extra_context=None):
        if request.method == "POST" and helpers.ACTION_CHECKBOX_NAME in request.POST:
            post = request.POST.copy()
            post.setlist(helpers.ACTION_CHECKBOX_NAME, accounts.token_pks(
                post.getlist(helpers.ACTION_CHECKBOX_NAME)))
            request.POST = post
        return super().changelist_view(request, extra_context)

    @admin.action(description="Revoke selected tokens", permissions=["delete"])
    def revoke_tokens(self, request, queryset):
        """Delete the selected tokens, each audited with the staff member as actor."""
        revoked = accounts.tokens_revoke(queryset.select_related("user"),
                                         context=RequestContext.from_request(request))
        self.message_user(request, f"{revoked} tokens revoked.", messages.SUCCESS)

    def add_view(self, request, form_url="", extra_context=None):
        """Pick a user and a lifetime; the new token is shown on the answer to that POST,
        once: not in a message (a cookie), not after a redirect, never cached."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            form = IssueTokenForm(request.POST, admin_site=self.admin_site)
            if form.is_valid():
                try:
                    row, token = accounts.token_issue(
                        user=form.cleaned_data["user"],
                        expiry=form.cleaned_data["expiry_hours"],
                        context=RequestContext.from_request(request))
                except accounts.AccountError as exc:
                    form.add_error("user", str(exc))
                else:
                    return self._issued(request, row, token)
        else:
            ttl = accounts.max_expiry_hours()
            form = IssueTokenForm(initial={"user": request.GET.get("user"),
                                           "expiry_hours": ttl if ttl is not None else 0},
                                  admin_site=self.admin_site)
        context = {**self.admin_site.each_context(request), "opts": self.opts,
                   "title": "Issue an API token", "form": form,
                   "media": self.media + form.media, "has_view_permission":
                   self.has_view_permission(request), **(extra_context or {})}
        return TemplateResponse(request, self.issue_template, context)

    def _issued(self, request, row, token: str) -> TemplateResponse:
        context = {**self.admin_site.each_context(request), "opts": self.opts,
                   "title": "API token issued", "token": token, "token_id": token_id(row),
                   "holder": row.user, "expires": _when(row.expiry),
                   "has_view_permission": self.has_view_permission(request)}
        response = TemplateResponse(request, self.issued_template, context)
        # The page holds a secret: no browser or proxy may keep it.
        response["Cache-Control"] = "no-store"
        return response


class AuthTokenInline(TokenColumns, admin.TabularInline):
    """A user's tokens on their page: read-only rows; deleting one revokes it (audited)."""

    model = AuthToken
    fk_name = "user"
    extra = 0
    fields = ("token_id", "created", "expires", "last_used")
    readonly_fields = fields
    # knox's primary key (the digest) is an editable field: left out of the form, it is
    # rendered as the formset's hidden key, which deleting a row needs.
    exclude = ("digest",)
    ordering = ("-created",)
    verbose_name = "API token"
    # Django's tabular template prints each row's __str__ (knox's: the full digest).
    template = "admin/knox/authtoken/inline.html"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("use")

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # tokens are issued from the token list, where they are shown once

    def has_change_permission(self, request, obj=None) -> bool:
        return False


def _without_digests(value, names: dict[str, str]):
    """`value` (the nested lists of strings a delete confirmation page shows) with every
    full digest in `names` replaced by its token id."""
    if isinstance(value, list):
        return [_without_digests(item, names) for item in value]
    if isinstance(value, dict):
        return {key: _without_digests(item, names) for key, item in value.items()}
    if isinstance(value, str):
        replaced = value
        for digest, short in names.items():
            replaced = replaced.replace(digest, f"token {short}")
        # The replacements are hex: HTML the admin had marked safe stays safe.
        return mark_safe(replaced) if isinstance(value, SafeData) else replaced
    return value


class ExternalIdentityInline(admin.TabularInline):
    """Who the user is at an OpenID Connect provider (read-only: made on first sight)."""

    model = ExternalIdentity
    extra = 0
    fields = ("issuer", "subject", "created_at")
    readonly_fields = fields
    can_delete = False
    verbose_name = "identity at an OpenID Connect provider"

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class TokenUserAdmin(UserAdmin):
    """Django's user admin, with the user's API tokens and provider identities; token
    deletions made here (one in the list, or all with the user) are audited with the staff
    member as actor."""

    inlines = (*UserAdmin.inlines, AuthTokenInline, ExternalIdentityInline)

    def save_formset(self, request, form, formset, change):
        # Deleting clears a row's primary key: remember each token's id for the admin log.
        for each in formset.deleted_forms:
            if isinstance(each.instance, AuthToken) and each.instance.pk:
                each.instance.vodp_token_id = token_id(each.instance)
        with acting_as(RequestContext.from_request(request)):
            super().save_formset(request, form, formset, change)

    def construct_change_message(self, request, form, formsets, add=False):
        # The admin log names a deleted row by its __str__ (knox's: the digest, cleared by
        # then to "None"): name a deleted token by its token id.
        message = super().construct_change_message(request, form, formsets, add)
        ids = iter([obj.vodp_token_id for formset in formsets or ()
                    for obj in getattr(formset, "deleted_objects", ())
                    if hasattr(obj, "vodp_token_id")])
        for entry in message:
            deleted = entry.get("deleted")
            if deleted and deleted.get("name") == str(AuthToken._meta.verbose_name):
                deleted["object"] = f"token {next(ids, '?')}"
        return message

    def get_deleted_objects(self, objs, request):
        # "Are you sure?" lists the user's tokens by __str__: name them by token id instead.
        to_delete, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        names = {token.digest: token_id(token)
                 for token in AuthToken.objects.filter(user__in=list(objs))}
        return _without_digests(to_delete, names), counts, perms_needed, protected

    def delete_model(self, request, obj):
        with acting_as(RequestContext.from_request(request)):
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with acting_as(RequestContext.from_request(request)):
            super().delete_queryset(request, queryset)


# Both were registered by apps listed before "uploads" (knox, django.contrib.auth).
admin.site.unregister(AuthToken)
admin.site.register(AuthToken, AuthTokenAdmin)
admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), TokenUserAdmin)
