"""Follow README.md's "Deploying" section word for word on this machine (`make deploy-check`).

The section's shell blocks are the deployment: each is marked by an HTML comment above it
(`<!-- deploy-check: KIND -->`), and this script runs them, read from the README, in one
bash, so the README cannot drift from what was tested. Kinds:

  choices  the deployer's own values: replaced by this script's (same variable names,
           checked), pointing at throwaway database roles, a free port and vodsandbox
  run      run as written
  serve    run as written, in the background (gunicorn, in the foreground for a person)
  cron     each crontab line's command run once

Everything runs in a clean copy of the tree (what `git ls-files` would commit) standing in
for /srv/vodportal, with a venv made from requirements.txt only. The process environment
adds only the sandbox's settings (VOD_SANDBOX, VOD_ENDPOINT, ...), which win over `.env` as
any environment variable does. After the README's /readyz step, the check issues one upload
credential through gunicorn and fetches the hashed ali-oss bundle the upload page loads.

Needs PostgreSQL (a superuser, DEPLOY_CHECK_PGUSER, on 127.0.0.1 without a password or with
PGPASSWORD), Redis on 127.0.0.1:6379, curl, and python3 with venv. Standard library only:
it runs before any venv exists. `--keep` leaves the copy (and its logs) behind.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.stack import free_port  # noqa: E402
README_DIR = "/srv/vodportal"  # where the README installs; the copy's path replaces it
MARKER = re.compile(r"<!-- deploy-check: (\w+) -->\s*\n\s*```[a-z]*\n(.*?)\n\s*```", re.S)
# Variables of the environment this script runs in that would change what the README's
# commands do: only what the README writes (and the sandbox settings below) may configure.
FOREIGN = re.compile(r"^(DJANGO_|VOD_|DATABASE_|REDIS_URL$|AUDIT_|GUNICORN_|ALIBABA_CLOUD_|"
                     r"VODPORTAL_|API_|OIDC_|LOG_|PG(?!PASSWORD$)|PYTEST|VIRTUAL_ENV$)")
ASSIGNED = re.compile(r"(?:^|\s)(?:export\s+)?([A-Z_][A-Z0-9_]*)=")


def readme_blocks(readme: Path = ROOT / "README.md") -> list[tuple[str, str]]:
    """The marked blocks of the Deploying section, in order, as (kind, dedented text)."""
    text = readme.read_text(encoding="utf-8")
    start = text.index("## Deploying")
    end = text.find("\n## ", start + 1)
    section = text[start:end if end != -1 else None]
    blocks = [(kind, textwrap.dedent(body)) for kind, body in MARKER.findall(section)]
    kinds = [kind for kind, _ in blocks]
    unknown = set(kinds) - {"choices", "run", "serve", "cron"}
    if unknown or kinds.count("choices") != 1 or kinds.count("serve") != 1 or "cron" not in kinds:
        raise SystemExit(f"README's deploy-check markers are not as expected: {kinds}")
    return blocks


def assigned_names(block: str) -> set[str]:
    """The shell variables a block of assignments sets."""
    code = "\n".join(line.split("#", 1)[0] for line in block.splitlines())
    return set(ASSIGNED.findall(code))


def choices(port: int, names: dict[str, str], sandbox: dict[str, str]) -> str:
    """This machine's stand-ins for the README's first block (same variable names)."""
    return textwrap.dedent(f"""\
        HOST=127.0.0.1
        BIND=127.0.0.1:{port}
        DB_HOST=127.0.0.1 DB_NAME={names['db']} DB_OWNER={names['owner']} DB_USER={names['user']}
        REDIS=redis://127.0.0.1:6379/11
        REGION=cn-shanghai
        ACCESS_KEY_ID={sandbox['key_id']}
        ACCESS_KEY_SECRET={sandbox['secret']}
        CALLBACK_KEY={sandbox['callback_key']}
        export PGHOST=$DB_HOST PGUSER={os.environ.get('DEPLOY_CHECK_PGUSER', 'postgres')}
        """)


# The check's own steps, run after the README's /readyz step: one credential through
# gunicorn (against vodsandbox), the page's static bundle served, no test tools installed.
OWN_STEPS = r"""
echo  # the README's curl printed /readyz's body without a newline
echo "== deploy-check: one upload credential through gunicorn"
curl -fsS -H "Host: $HOST" -H "Authorization: Token $TOKEN" -H 'Content-Type: application/json' \
  -d '{"title": "Deploy check", "file_name": "check.mp4"}' "http://$BIND/api/v1/videos/" \
  > "$CHECK_DIR/credential.json"
.venv/bin/python - "$CHECK_DIR/credential.json" <<'PY'
import json, sys
body = json.load(open(sys.argv[1]))
assert body["video_id"] and body["upload_auth"] and body["upload"]["security_token"], body
print("credential issued for video", body["video_id"])
PY
echo "== deploy-check: the upload page's ali-oss bundle is collected and served"
BUNDLE=$(.venv/bin/python -c 'import json; manifest = json.load(open("staticfiles/staticfiles.json"))
print(manifest["paths"]["vendor/aliyun-oss-sdk.min.js"])')
curl -fsS -o /dev/null -H "Host: $HOST" "http://$BIND/static/$BUNDLE"
echo "served /static/$BUNDLE"
echo "== deploy-check: runtime requirements only"
if .venv/bin/python -c 'import pytest' 2>/dev/null; then echo "pytest is installed"; exit 1; fi
"""


def script(blocks: list[tuple[str, str]], own_choices: str, app: Path) -> str:
    """One bash script: the README's blocks, in order, with this machine's choices."""
    parts = ["set -euo pipefail"]
    for kind, body in blocks:
        body = body.replace(README_DIR, str(app))
        if kind == "choices":
            parts.append(own_choices)
        elif kind == "run":
            parts.append(body)
        elif kind == "serve":
            # gunicorn stays in this bash's process group, which the check ends at the close.
            parts.append(f'{body} > "$CHECK_DIR/gunicorn.log" 2>&1 &')
        elif kind == "cron":
            parts.append(OWN_STEPS)
            for line in body.splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    command = line.split(None, 5)[5]  # after the five schedule fields
                    parts.append(f'echo "== cron, once: {command}"\n{command}')
    return "\n\n".join(parts) + "\n"


def copy_tree(destination: Path) -> None:
    """What a clean clone would hold once the work tree is committed: tracked files and new
    ones not ignored (never .venv, node_modules, var/, .env or staticfiles/)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, check=True, capture_output=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def wait_for_port(port: int, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{what} did not start")


def psql(sql: str) -> None:
    """As the PostgreSQL superuser: the throwaway roles and database are dropped at the end."""
    subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U",
                    os.environ.get("DEPLOY_CHECK_PGUSER", "postgres"), "-d", "postgres",
                    "-c", sql], check=False, timeout=60)


def main() -> int:
    keep = "--keep" in sys.argv[1:]
    started = time.monotonic()
    blocks = readme_blocks()
    workdir = Path(tempfile.mkdtemp(prefix="vodportal-deploy-check-"))
    app, check_dir = workdir / "vodportal", workdir / "check"
    check_dir.mkdir()
    copy_tree(app)
    suffix = f"{os.getpid()}_{secrets.token_hex(3)}"
    names = {"db": f"vodp_dc_{suffix}", "owner": f"vodp_dc_owner_{suffix}",
             "user": f"vodp_dc_app_{suffix}"}
    sandbox = {"key_id": "DeployCheckKeyId01", "secret": secrets.token_hex(16),
               "callback_key": secrets.token_hex(16), "port": str(free_port())}
    own_choices = choices(free_port(), names, sandbox)
    readme_choices = next(body for kind, body in blocks if kind == "choices")
    if assigned_names(readme_choices) != assigned_names(own_choices):
        raise SystemExit("README's choices and the check's differ: "
                         f"{sorted(assigned_names(readme_choices) ^ assigned_names(own_choices))}")
    (check_dir / "deploy.sh").write_text(script(blocks, own_choices, app))

    env = {key: value for key, value in os.environ.items() if not FOREIGN.match(key)}
    env.update({"CHECK_DIR": str(check_dir), "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
                # The local VOD instead of Alibaba Cloud: environment, so it wins over .env.
                "VOD_SANDBOX": "true", "VOD_ENDPOINT": f"127.0.0.1:{sandbox['port']}",
                "VOD_PROTOCOL": "http", "VOD_SANDBOX_ACCESS_KEY_ID": sandbox["key_id"],
                "VOD_SANDBOX_ACCESS_KEY_SECRET": sandbox["secret"]})
    # vodsandbox is standard library only: it runs before the copy has a venv.
    vod = subprocess.Popen(
        [sys.executable, "-m", "vodsandbox", "--host", "127.0.0.1", "--port", sandbox["port"],
         "--access-key-id", sandbox["key_id"], "--access-key-secret", sandbox["secret"],
         "--callback-auth-key", sandbox["callback_key"]],
        cwd=app, stdout=(check_dir / "sandbox.log").open("w"), stderr=subprocess.STDOUT)
    deploy = None
    try:
        wait_for_port(int(sandbox["port"]), vod, "vodsandbox")
        print(f"deploy-check: README's deployment in {app}", flush=True)
        deploy = subprocess.Popen(["bash", str(check_dir / "deploy.sh")], cwd=app, env=env,
                                  start_new_session=True)
        status = deploy.wait(timeout=600)
    finally:
        if deploy is not None:
            try:  # gunicorn, left running in the script's process group
                os.killpg(deploy.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass  # the group is gone: nothing was left running
        vod.terminate()
        vod.wait(timeout=10)
        # WITH (FORCE) ends whatever connections gunicorn's workers still hold.
        psql(f"DROP DATABASE IF EXISTS {names['db']} WITH (FORCE)")
        psql(f"DROP ROLE IF EXISTS {names['user']}")
        psql(f"DROP ROLE IF EXISTS {names['owner']}")
    log = check_dir / "gunicorn.log"
    if status != 0 and log.exists():
        print("--- gunicorn.log (end)\n" + log.read_text()[-3000:], file=sys.stderr)
    print(f"deploy-check: {'ok' if status == 0 else 'FAILED'} in "
          f"{time.monotonic() - started:.0f} s" + (f"; kept {workdir}" if keep else ""))
    if not keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
