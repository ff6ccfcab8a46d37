"""The token admin that replaces knox's: tokens named by token id only, issued on a page
shown once (no cookie, no cache), revoked with an audited action; each user's tokens on
their page; knox's permissions decide who may see, issue and revoke."""

import re
from html.parser import HTMLParser

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from knox.crypto import hash_token
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.factories import UserFactory, staff_with
from uploads.models import ApiTokenUse, AuditEvent
from uploads.token_admin import AuthTokenAdmin, TokenUserAdmin

pytestmark = pytest.mark.django_db(transaction=True)

TOKENS = reverse("admin:knox_authtoken_changelist")
ADD = reverse("admin:knox_authtoken_add")
ISSUED = re.compile(r'value="(vodp_[0-9a-f]+)"')


def api_status(token: str) -> int:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return api.get("/api/v1/videos/").status_code


def revoke(client, *rows):
    return client.post(TOKENS, {"action": "revoke_tokens",
                                "_selected_action": [row.digest[:12] for row in rows]},
                       follow=True)


def test_knox_admin_is_replaced_with_no_page_per_token():
    assert isinstance(admin.site.get_model_admin(AuthToken), AuthTokenAdmin)
    assert isinstance(admin.site.get_model_admin(get_user_model()), TokenUserAdmin)
    # A token's own page would carry its digest in the URL and show knox's __str__.
    with pytest.raises(NoReverseMatch):
        reverse("admin:knox_authtoken_change", args=["0" * 128])


def test_list_shows_token_id_user_times_and_last_use_never_the_secret(admin_client, user):
    row, token = AuthToken.objects.create(user=user)
    used = timezone.now().replace(second=0, microsecond=0)
    ApiTokenUse.objects.create(token=row, last_used_at=used)
    never_row, never_token = AuthToken.objects.create(user=user, expiry=None)

    page = admin_client.get(TOKENS).content.decode()

    assert row.digest[:12] in page and never_row.digest[:12] in page and "alice" in page
    assert f"{used:%Y-%m-%d %H:%M} UTC" in page and f"{row.expiry:%Y-%m-%d %H:%M} UTC" in page
    assert "never" in page
    for secret in (token, never_token, row.digest, never_row.digest, row.token_key,
                   never_row.token_key):
        assert secret not in page
    assert "Revoke selected tokens" in page and "delete_selected" not in page


def test_search_by_exact_username_or_token_id_prefix(admin_client, user, other_user):
    alice_row, _ = AuthToken.objects.create(user=user)
    bob_row, _ = AuthToken.objects.create(user=other_user)

    def found(term):
        return {row.pk for row in admin_client.get(TOKENS, {"q": term}).context["cl"].result_list}

    assert found("alice") == {alice_row.pk}
    assert found("ali") == set()  # usernames match exactly
    assert found(bob_row.digest[:12]) == {bob_row.pk}
    assert found(bob_row.digest[:6].upper()) >= {bob_row.pk}
    assert found(bob_row.digest[:13]) == set()  # longer than a token id: not a search by digest


def test_issue_shows_the_token_once_never_in_a_cookie_message_or_cache(client, user):
    staff = staff_with("view_authtoken", "add_authtoken")
    client.force_login(staff)
    form = client.get(ADD, {"user": user.pk})
    assert form.status_code == 200 and 'value="2160"' in form.content.decode()

    response = client.post(ADD, {"user": user.pk, "expiry_hours": "24"})

    assert response.status_code == 200
    assert response.templates[0].name == "admin/knox/authtoken/issued.html"
    assert "no-store" in response["Cache-Control"]
    body = response.content.decode()
    [token] = ISSUED.findall(body)
    assert body.count(token) == 1 and "will not be shown again" in body
    row = AuthToken.objects.get(digest=hash_token(token))
    assert row.user == user and row.digest[:12] in body and row.digest not in body
    assert api_status(token) == 200
    # Nothing keeps it: not a cookie, not the messages framework, not the session.
    assert all(token not in morsel.value for morsel in response.cookies.values())
    assert all(token not in str(message) for message in get_messages(response.wsgi_request))
    assert token not in str(dict(client.session))
    assert token not in client.get(TOKENS).content.decode()
    event = AuditEvent.objects.get(action="auth.token.created")
    assert event.actor == staff and event.actor_label == staff.username
    assert event.data["token_id"] == row.digest[:12] and token not in str(event.data)


def test_issue_refuses_inactive_users_and_lifetimes_past_the_settings(admin_client):
    inactive = UserFactory(username="gone", is_active=False)
    active = UserFactory(username="dave")

    refused = [admin_client.post(ADD, {"user": inactive.pk, "expiry_hours": "24"}),
               admin_client.post(ADD, {"user": active.pk, "expiry_hours": "0"}),
               admin_client.post(ADD, {"user": active.pk, "expiry_hours": "2161"})]

    assert [response.templates[0].name for response in refused] == \
        ["admin/knox/authtoken/issue.html"] * 3
    assert not ISSUED.search(" ".join(response.content.decode() for response in refused))
    assert not AuthToken.objects.exists()


def test_revoke_action_is_audited_with_the_staff_member(client, user):
    kept, kept_token = AuthToken.objects.create(user=user)
    row, token = AuthToken.objects.create(user=user)
    staff = staff_with("view_authtoken", "delete_authtoken")
    client.force_login(staff)
    assert row.digest[:12] in client.get(TOKENS).content.decode()

    response = revoke(client, row)

    assert [str(message) for message in response.context["messages"]] == ["1 tokens revoked."]
    assert not AuthToken.objects.filter(pk=row.pk).exists()
    assert api_status(token) == 401 and api_status(kept_token) == 200
    event = AuditEvent.objects.get(action="auth.token.deleted")
    assert event.actor == staff and event.actor_label == staff.username
    assert event.data["token_id"] == row.digest[:12] and token not in str(event.data)


def test_staff_without_knox_permissions_get_403_and_cannot_revoke(client, user):
    row, token = AuthToken.objects.create(user=user)
    client.force_login(staff_with())
    assert client.get(TOKENS).status_code == 403
    assert client.get(ADD).status_code == 403
    assert client.post(ADD, {"user": user.pk, "expiry_hours": "24"}).status_code == 403

    client.force_login(staff_with("view_authtoken"))
    assert client.get(TOKENS).status_code == 200
    assert client.get(ADD).status_code == 403
    page = revoke(client, row).content.decode()

    assert "Revoke selected tokens" not in page
    assert AuthToken.objects.filter(pk=row.pk).exists() and api_status(token) == 200
    assert AuthToken.objects.count() == 1
    assert not AuditEvent.objects.filter(action="auth.token.deleted").exists()


class _FormFields(HTMLParser):
    """The fields a browser would submit from a page's forms, as they are."""

    def __init__(self):
        super().__init__()
        self.data, self._select, self._textarea = {}, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = attrs.get("name")
        if tag == "input" and name and attrs.get("type") not in ("submit", "button"):
            checkable = attrs.get("type") in ("checkbox", "radio")
            if checkable and "checked" not in attrs:
                return
            value = attrs.get("value")
            self.data.setdefault(name, []).append(("on" if checkable else "")
                                                  if value is None else value)
        elif tag == "select":
            self._select = name
        elif tag == "option" and self._select and "selected" in attrs:
            self.data.setdefault(self._select, []).append(attrs.get("value") or "")
        elif tag == "textarea":
            self._textarea = name
            self.data[name] = [""]

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea] = [data.strip("\n")]

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def submitted(html: str) -> dict:
    parser = _FormFields()
    parser.feed(html)
    return {name: values if len(values) > 1 else values[0]
            for name, values in parser.data.items() if name != "csrfmiddlewaretoken"}


def test_users_page_lists_their_tokens_and_deleting_one_is_audited(admin_client, superuser,
                                                                   user):
    row, token = AuthToken.objects.create(user=user)
    kept, kept_token = AuthToken.objects.create(user=user)
    ApiTokenUse.objects.create(token=kept, last_used_at=timezone.now())
    page_url = reverse("admin:auth_user_change", args=[user.pk])

    page = admin_client.get(page_url)

    text = page.content.decode()
    assert row.digest[:12] in text and kept.digest[:12] in text and token not in text
    # Only the formset's hidden primary key field holds the digest; no text shows it.
    assert text.count(row.digest) == 1 and re.search(rf'type="hidden" name="[\w-]+" '
                                                     rf'value="{row.digest}"', text)
    data = submitted(text)
    formset = next(inline for inline in page.context["inline_admin_formsets"]
                   if inline.formset.model is AuthToken)
    index = next(i for i, each in enumerate(formset.formset.forms) if each.instance == row)
    data[formset.formset.forms[index].add_prefix("DELETE")] = "on"

    saved = admin_client.post(page_url, data)

    assert saved.status_code == 302, saved.context["errors"] if saved.context else saved
    assert not AuthToken.objects.filter(pk=row.pk).exists()
    assert api_status(token) == 401 and api_status(kept_token) == 200
    event = AuditEvent.objects.get(action="auth.token.deleted")
    assert event.actor == superuser and event.data["token_id"] == row.digest[:12]
    [logged] = LogEntry.objects.filter(object_id=str(user.pk))
    assert logged.get_change_message() == f"Deleted auth token “token {row.digest[:12]}”."


def test_deleting_a_user_names_their_tokens_by_id_and_audits_each(admin_client, superuser,
                                                                  user):
    row, _ = AuthToken.objects.create(user=user)
    delete_url = reverse("admin:auth_user_delete", args=[user.pk])

    confirm = admin_client.get(delete_url).content.decode()
    assert f"token {row.digest[:12]}" in confirm and row.digest not in confirm

    admin_client.post(delete_url, {"post": "yes"})

    assert not get_user_model().objects.filter(pk=user.pk).exists()
    event = AuditEvent.objects.get(action="auth.token.deleted")
    assert event.actor == superuser and event.data["user"] == "alice"


def test_users_page_shows_who_they_are_at_an_identity_provider(admin_client, user):
    from uploads.models import ExternalIdentity

    ExternalIdentity.objects.create(user=user, issuer="https://id.example.com",
                                    subject="248289761001")

    text = admin_client.get(reverse("admin:auth_user_change", args=[user.pk])).content.decode()

    assert "https://id.example.com" in text and "248289761001" in text
