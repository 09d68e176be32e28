#!/usr/bin/env bash
# Installs what the dev-page browser test needs, only when it is missing:
# Debian's chromium (never a downloaded browser) and playwright-core.
# Idempotent: a second run does nothing.
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -x /usr/bin/chromium ]; then
  if ! command -v apt-get >/dev/null; then
    echo "tests/browser/setup.sh: /usr/bin/chromium is missing and apt-get is not available; install Debian's chromium package" >&2
    exit 1
  fi
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then
      sudo_cmd=(sudo)
    else
      echo "tests/browser/setup.sh: /usr/bin/chromium is missing; run 'apt-get install -y chromium' as root" >&2
      exit 1
    fi
  fi
  echo "tests/browser/setup.sh: installing chromium" >&2
  if ! "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2; then
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2
  fi
fi

if [ ! -d node_modules/playwright-core ]; then
  if ! command -v npm >/dev/null; then
    echo "tests/browser/setup.sh: npm is missing; install Node.js 20 or newer (Debian: apt-get install -y nodejs npm)" >&2
    exit 1
  fi
  echo "tests/browser/setup.sh: installing playwright-core (npm ci)" >&2
  npm ci --no-audit --no-fund >&2
fi
