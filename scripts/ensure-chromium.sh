#!/usr/bin/env bash
# Browser tests drive Debian's Chromium. Install it when missing and we may (root, apt);
# otherwise say so: the browser tests then skip locally (and fail under CI).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's chromium for the browser tests..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "chromium is not installed (sudo apt-get install chromium); browser tests will skip." >&2
fi
