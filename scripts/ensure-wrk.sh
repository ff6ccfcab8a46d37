#!/usr/bin/env bash
# bench/issue_throughput.py drives the portal with wrk (C, epoll: the load generator must not
# be the bottleneck). Install Debian's package when missing and we may (root, apt).
set -euo pipefail
if command -v wrk >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's wrk for the issuing benchmark..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
else
  echo "wrk is not installed (sudo apt-get install wrk); the issuing benchmark needs it." >&2
  exit 1
fi
