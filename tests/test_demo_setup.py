"""`manage.py demo_setup`: the accounts `make run` prints, created once and kept."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db(transaction=True)


def run(tmp_path, capsys):
    call_command("demo_setup", "--state-file", str(tmp_path / "demo.json"), "--json")
    return json.loads(capsys.readouterr().out)


def test_demo_setup_is_idempotent_and_the_token_works(tmp_path, capsys, settings):
    first = run(tmp_path, capsys)
    second = run(tmp_path, capsys)

    assert first == second
    users = get_user_model().objects
    assert users.get(username="demo-staff").is_staff
    assert not users.get(username="demo").is_staff
    assert users.get(username="demo").check_password(first["user_password"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {first['token']}")
    response = client.post("/api/v1/videos/", {"title": "Demo", "file_name": "movie.mp4"},
                           format="json")
    assert response.status_code == 201, response.content
    assert (tmp_path / "demo.json").stat().st_mode & 0o077 == 0
