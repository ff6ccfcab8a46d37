#!/usr/bin/env bash
# Usage: ensure-debian-package.sh COMMAND PACKAGE required|optional WHAT-NEEDS-IT
# Installs Debian's PACKAGE when COMMAND is missing and we may (root, apt). Otherwise says so
# and exits 1 if the package is required, 0 if the caller copes without it (the browser tests
# skip locally, and fail under CI).
set -euo pipefail
command_name=$1 package=$2 need=$3 purpose=$4
if command -v "$command_name" >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's $package for $purpose..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
  exit 0
fi
echo "$package is not installed (sudo apt-get install $package): needed for $purpose." >&2
[ "$need" = optional ]
