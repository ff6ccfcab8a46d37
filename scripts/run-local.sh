#!/usr/bin/env bash
# `make run`: vodsandbox and vodportal on loopback, SQLite, demo accounts. Ctrl-C stops both.
#
# The host may also be a deployment, its .env or environment holding the production
# DATABASE_URL, REDIS_URL, AUDIT_KEY and secrets: a local run never touches them. It sets its
# own (a SQLite file and local memory under var/), VODPORTAL_LOCAL_RUN makes settings skip
# .env and refuse any other database or a Redis (vodportal/envfile.py). LOCAL_RUN_DIR (var/
# by default) is where it keeps everything: tests/test_local_run.py points it elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
PORT=${PORT:-8000}
SANDBOX_PORT=${SANDBOX_PORT:-8765}
VAR=${LOCAL_RUN_DIR:-var}

mkdir -p "$VAR"
VAR=$(cd "$VAR" && pwd)
# Local secrets, made once and kept out of git (var/ is ignored).
if [ ! -f "$VAR/dev.env" ]; then
  umask 077
  {
    echo "DJANGO_SECRET_KEY=$("$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(48))')"
    echo "AUDIT_KEY=$("$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(48))')"
  } > "$VAR/dev.env"
fi
# The callback key the sandbox signs event notifications with (at most 32 characters).
if ! grep -q '^VOD_CALLBACK_AUTH_KEYS=' "$VAR/dev.env"; then
  echo "VOD_CALLBACK_AUTH_KEYS=$("$BIN/python" -c 'import secrets; print(secrets.token_hex(16))')" >> "$VAR/dev.env"
fi
set -a
# shellcheck disable=SC1091
. "$VAR/dev.env"
# Set here, whatever the environment says: settings read no .env in a local run, and an
# environment variable always wins over .env anyway (django-environ's read_env only fills
# in unset variables; an empty REDIS_URL counts as set).
VODPORTAL_LOCAL_RUN=true
DATABASE_URL=sqlite:///$VAR/local.sqlite3
REDIS_URL=
AUDIT_CHECKPOINT_DIR=$VAR/audit-checkpoints
DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost
DJANGO_DEBUG=true
VOD_SANDBOX=true
VOD_ENDPOINT=127.0.0.1:$SANDBOX_PORT
VOD_PROTOCOL=http
VOD_CALLBACK_URL=http://127.0.0.1:$PORT/api/v1/vod/events/
VOD_SANDBOX_ACCESS_KEY_ID=${VOD_SANDBOX_ACCESS_KEY_ID:-SandboxDevKeyId0001}
VOD_SANDBOX_ACCESS_KEY_SECRET=${VOD_SANDBOX_ACCESS_KEY_SECRET:-sandbox-dev-secret-change-me}
# The account the portal uploads into; the sandbox checks every Create* against the same ids.
VOD_APP_ID=${VOD_APP_ID:-app-1000000}
VOD_TEMPLATE_GROUP_ID=${VOD_TEMPLATE_GROUP_ID:-sandbox-transcode}
VOD_STORAGE_LOCATION=${VOD_STORAGE_LOCATION:-}
VOD_NO_TRANSCODE_TEMPLATE_GROUP_IDS=${VOD_NO_TRANSCODE_TEMPLATE_GROUP_IDS:-VOD_NO_TRANSCODE}
ALIBABA_CLOUD_ECS_METADATA_DISABLED=true
set +a

"$BIN/python" manage.py migrate --no-input -v 0
"$BIN/python" manage.py demo_setup --json > "$VAR/demo.out"

ACCOUNT=(--app-id "$VOD_APP_ID" --template-group "$VOD_TEMPLATE_GROUP_ID"
         --default-template-group "$VOD_TEMPLATE_GROUP_ID")
[ -n "$VOD_STORAGE_LOCATION" ] && ACCOUNT+=(--storage-location "$VOD_STORAGE_LOCATION")
IFS=, read -ra NO_TRANSCODE <<< "$VOD_NO_TRANSCODE_TEMPLATE_GROUP_IDS"
for group in "${NO_TRANSCODE[@]}"; do ACCOUNT+=(--no-transcode-template-group "$group"); done
"$BIN/python" -m vodsandbox --host 127.0.0.1 --port "$SANDBOX_PORT" \
  --access-key-id "$VOD_SANDBOX_ACCESS_KEY_ID" --access-key-secret "$VOD_SANDBOX_ACCESS_KEY_SECRET" \
  --callback-auth-key "$VOD_CALLBACK_AUTH_KEYS" --callback-url "$VOD_CALLBACK_URL" \
  --transcode-delay 2 "${ACCOUNT[@]}" \
  > "$VAR/sandbox.log" 2>&1 &
SANDBOX_PID=$!
trap 'kill $SANDBOX_PID 2>/dev/null || true' EXIT INT TERM

"$BIN/python" - "$SANDBOX_PORT" "$VAR" <<'PY'
import socket, sys, time
deadline = time.time() + 10
while time.time() < deadline:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.2).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(f"vodsandbox did not start; see {sys.argv[2]}/sandbox.log")
PY

"$BIN/python" - "$PORT" "$SANDBOX_PORT" "$VOD_APP_ID" "$VOD_TEMPLATE_GROUP_ID" "$VAR" <<'PY'
import json, sys
port, sandbox_port, app_id, template_group, var = sys.argv[1:]
demo = json.load(open(f"{var}/demo.out"))
base = f"http://127.0.0.1:{port}"
print(f"""
Open {base}/upload/ and log in as demo / {demo['user_password']}

vodportal (local, DEBUG, vodsandbox on SQLite)
  Database:   SQLite {var}/local.sqlite3; cache: local memory (no Redis)
              .env, DATABASE_URL and REDIS_URL of this host are not used
  Upload:     {base}/upload/       (your uploads: {base}/uploads/)
  API:        {base}/api/v1/
  Admin:      {base}/admin/        staff login: demo-staff / {demo['staff_password']}
  User login: demo / {demo['user_password']}
  Sandbox:    http://127.0.0.1:{sandbox_port}/  (log: {var}/sandbox.log)
  Account:    app {app_id}, template group {template_group}: what the portal sends
              No transcoding: VOD_TEMPLATE_GROUP_ID=VOD_NO_TRANSCODE make run (the sandbox
              always knows VOD's `--template-group VOD_NO_TRANSCODE`)

Log in as an app does, for an API token of your own (the demo's is below):

  curl -s -X POST {base}/api/v1/auth/token/ -H 'Content-Type: application/json' \\
    -d '{{"username": "demo", "password": "{demo['user_password']}"}}'

Ask for an upload credential as the demo user:

  curl -s -X POST {base}/api/v1/videos/ \\
    -H 'Authorization: Token {demo['token']}' \\
    -H 'Content-Type: application/json' \\
    -d '{{"title": "My first video", "file_name": "movie.mp4"}}'

Then:  curl -s -X POST {base}/api/v1/videos/<video_id>/refresh/ -H 'Authorization: Token {demo['token']}'

Upload a real file through the credential and watch it become ready:

  .venv/bin/python scripts/upload_file.py vodsandbox/samples/sample.mp4 --portal {base} --token {demo['token']}

Ctrl-C stops both servers.
""", flush=True)
PY

"$BIN/python" manage.py runserver "127.0.0.1:$PORT" --noreload
