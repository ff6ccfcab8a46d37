"""The production install path (issue 16, points 2 to 5): one configuration source for
Django and gunicorn, runtime requirements only, every static asset the pages load, and the
README's deployment steps kept the same as what scripts/deploy_check.py runs (CI)."""

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from django.core.management import call_command

from tests.stack import ROOT

BUNDLE = ROOT / "uploads" / "static" / "vendor" / "aliyun-oss-sdk.min.js"
MANIFEST_STORAGE = "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"


def deploy_check():
    spec = importlib.util.spec_from_file_location("deploy_check", ROOT / "scripts" / "deploy_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def gunicorn_config(env_file, **environment: str) -> dict:
    """gunicorn.conf.py's settings, loaded as gunicorn loads it, in a clean process."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("GUNICORN_", "VODPORTAL_"))}
    env.update(VODPORTAL_ENV_FILE=str(env_file), **environment)
    code = ("import json, runpy; c = runpy.run_path('gunicorn.conf.py'); "
            "print(json.dumps({k: c[k] for k in ('bind', 'workers', 'worker_class', "
            "'worker_connections')}))")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60, check=True)
    return json.loads(run.stdout)


def test_gunicorn_reads_the_env_file_django_reads(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("GUNICORN_WORKERS=3\nGUNICORN_BIND=127.0.0.1:48123\n"
                        "GUNICORN_WORKER_CONNECTIONS=50\n")
    assert gunicorn_config(env_file) == {"bind": "127.0.0.1:48123", "workers": 3,
                                         "worker_class": "gevent", "worker_connections": 50}


def test_the_environment_wins_over_the_env_file_for_gunicorn_and_django(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("GUNICORN_WORKERS=3\nGUNICORN_BIND=127.0.0.1:48123\n"
                        "VOD_REGION=cn-beijing\nVOD_APP_ID=app-from-file\n")
    assert gunicorn_config(env_file, GUNICORN_WORKERS="5")["workers"] == 5

    env = {key: value for key, value in os.environ.items() if not key.startswith("VOD_")}
    env.update(VODPORTAL_ENV_FILE=str(env_file), VOD_REGION="ap-southeast-1",
               DJANGO_SETTINGS_MODULE="vodportal.settings")
    code = "from django.conf import settings; print(settings.VOD_REGION, settings.VOD_APP_ID)"
    run = subprocess.run([sys.executable, "manage.py", "shell", "-v", "0", "-c", code], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=120, check=True)
    assert run.stdout.split() == ["ap-southeast-1", "app-from-file"]


def test_the_sdk_keeps_as_many_vod_connections_as_a_worker_serves_requests(tmp_path):
    """VOD_HTTP_CONNECTIONS follows GUNICORN_WORKER_CONNECTIONS from the same .env, unless
    set itself: a worker with more requests in flight than connections kept would open and
    throw away one per call past them."""
    env_file = tmp_path / ".env"
    env_file.write_text("GUNICORN_WORKER_CONNECTIONS=150\n")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("VOD_", "GUNICORN_"))}
    env.update(VODPORTAL_ENV_FILE=str(env_file), DJANGO_SETTINGS_MODULE="vodportal.settings")
    code = "from django.conf import settings; print(settings.VOD_HTTP_CONNECTIONS)"

    def connections(**overrides: str) -> str:
        run = subprocess.run([sys.executable, "manage.py", "shell", "-v", "0", "-c", code],
                             cwd=ROOT, env={**env, **overrides}, capture_output=True,
                             text=True, timeout=120, check=True)
        return run.stdout.strip()

    assert connections() == "150"
    assert connections(VOD_HTTP_CONNECTIONS="40") == "40"


def test_make_serve_installs_runtime_requirements_only_and_no_npm():
    dry_run = subprocess.run(["make", "-n", "-B", "serve"], cwd=ROOT, capture_output=True,
                             text=True, timeout=60, check=True).stdout
    assert "-r requirements.txt" in dry_run and "gunicorn" in dry_run
    assert "requirements-dev" not in dry_run and "npm" not in dry_run


def test_env_is_ignored_and_the_bundle_is_not():
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT)
    assert ignored.returncode == 0
    bundle = subprocess.run(["git", "check-ignore", "-q", str(BUNDLE.relative_to(ROOT))], cwd=ROOT)
    assert bundle.returncode == 1


def test_the_committed_bundle_is_the_pinned_one_the_readme_records():
    """ali-oss is MIT: its notice travels with the bundle; version and digest are recorded."""
    header = BUNDLE.read_text(encoding="utf-8").splitlines()[0]
    pinned = json.loads((ROOT / "package.json").read_text())["dependencies"]["ali-oss"]
    assert header == f"// Aliyun OSS SDK for JavaScript v{pinned}"
    assert "MIT License" in (BUNDLE.parent / "aliyun-oss-sdk.LICENSE.txt").read_text()
    readme = (ROOT / "README.md").read_text()
    digest = hashlib.sha256(BUNDLE.read_bytes()).hexdigest()
    assert re.search(rf"ali-oss` {re.escape(pinned)}\b.*?sha256\s+`{digest}`", readme, re.S), \
        "README's note on the bundle does not match the file"


def test_the_readme_choices_are_the_checks_and_every_kind_is_there():
    module = deploy_check()
    blocks = module.readme_blocks()
    kinds = [kind for kind, _ in blocks]
    assert kinds[0] == "choices" and "serve" in kinds and kinds[-1] == "cron"
    own = module.choices(8000, {"db": "d", "owner": "o", "user": "u"},
                         {"key_id": "k", "secret": "s", "callback_key": "c"})
    assert module.assigned_names(blocks[0][1]) == module.assigned_names(own)
    script = module.script(blocks, own, ROOT)
    # Every command of the README's run blocks is in the script as written.
    for kind, body in blocks:
        if kind == "run":
            assert body.replace(module.README_DIR, str(ROOT)) in script
    assert "-r requirements.txt" in script and "requirements-dev" not in script


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """collectstatic as a deployment runs it (a manifest storage), once for the module."""
    from django.test import override_settings

    root = tmp_path_factory.mktemp("static")
    with override_settings(STATIC_ROOT=root, STORAGES={
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": MANIFEST_STORAGE}}):
        call_command("collectstatic", interactive=False, verbosity=0)
    return root


@pytest.fixture
def static_root(collected, tmp_path, settings):
    """A copy of the collected files, served through the manifest storage."""
    root = tmp_path / "static"
    shutil.copytree(collected, root)
    settings.STATIC_ROOT = root
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {"BACKEND": MANIFEST_STORAGE}}
    return root


def drop_bundle(root, *, from_manifest: bool):
    manifest_path = root / "staticfiles.json"
    manifest = json.loads(manifest_path.read_text())
    hashed = manifest["paths"]["vendor/aliyun-oss-sdk.min.js"]
    (root / hashed).unlink()
    (root / "vendor" / "aliyun-oss-sdk.min.js").unlink()
    if from_manifest:
        del manifest["paths"]["vendor/aliyun-oss-sdk.min.js"]
        manifest_path.write_text(json.dumps(manifest))


def test_the_pages_assets_are_read_from_the_templates():
    from uploads.checks import page_static_assets

    assert {"vendor/aliyun-oss-sdk.min.js", "uploads/upload.js"} <= set(page_static_assets())


@pytest.mark.django_db
def test_collected_assets_pass_the_check_and_readyz(static_root, client):
    from uploads.checks import check_page_static_assets

    assert check_page_static_assets() == []
    body = client.get("/readyz").json()
    assert body["checks"]["static_files"].startswith("ok"), body


@pytest.mark.django_db
@pytest.mark.parametrize("from_manifest", [True, False], ids=["not-collected", "file-lost"])
def test_a_missing_bundle_fails_check_deploy_and_readyz_naming_it(static_root, client,
                                                                  from_manifest):
    """The issue: the bundle existed only where `npm ci` had run, and a deployment's upload
    page failed in the browser. Now `check --deploy` and /readyz say which file is missing."""
    from uploads.checks import check_page_static_assets

    drop_bundle(static_root, from_manifest=from_manifest)

    errors = check_page_static_assets()
    assert [error.id for error in errors] == ["uploads.E003"]
    assert "vendor/aliyun-oss-sdk.min.js" in errors[0].msg
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert "static_files" in body["failing"]
    assert body["checks"]["static_files"] == "fail: missing: vendor/aliyun-oss-sdk.min.js"


def test_check_deploy_runs_the_static_check(tmp_path):
    """Registered for `check --deploy`: with no collected files, it names every asset."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("DJANGO_")}
    env.update(DJANGO_SETTINGS_MODULE="vodportal.settings", DJANGO_SECRET_KEY="s" * 50,
               AUDIT_KEY="a-key", VODPORTAL_ENV_FILE=str(tmp_path / "none.env"))
    if (ROOT / "staticfiles" / "staticfiles.json").exists():
        pytest.skip("this checkout has collected static files (make serve ran here)")
    run = subprocess.run([sys.executable, "manage.py", "check", "--deploy"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert "uploads.E003" in run.stderr and "vendor/aliyun-oss-sdk.min.js" in run.stderr
