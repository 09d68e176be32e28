#!/usr/bin/env bash
# Installs the system packages voxguard and its tests need, only when they
# are missing: libopus0 (the Opus codec, opened with dlopen so that building
# needs no libopus-dev), espeak-ng (the local voice), redis-server (the
# fleet tests start and pause Redis processes of their own) and iproute2
# (the WebRTC interop tests' private network). Debian/Ubuntu, apt-get only;
# idempotent: a second run does nothing and prints nothing.
set -euo pipefail
export PATH="$PATH:/sbin:/usr/sbin"

missing=()
if ! ldconfig -p 2>/dev/null | grep -q 'libopus\.so\.0'; then
  missing+=(libopus0)
fi
if ! command -v espeak-ng >/dev/null; then
  missing+=(espeak-ng)
fi
if ! command -v redis-server >/dev/null; then
  missing+=(redis-server)
fi
# The WebRTC interop tests build a private network namespace with `ip`.
if ! command -v ip >/dev/null; then
  missing+=(iproute2)
fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if ! command -v apt-get >/dev/null; then
  echo "install-system-deps.sh: missing ${missing[*]} and apt-get is not available; install them with your system's package manager" >&2
  exit 1
fi
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then
    sudo_cmd=(sudo)
  else
    echo "install-system-deps.sh: missing ${missing[*]}; run 'apt-get install -y ${missing[*]}' as root" >&2
    exit 1
  fi
fi

echo "install-system-deps.sh: installing ${missing[*]}" >&2
apt_install() {
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}
# A fresh machine has no package lists yet; fetch them only when needed.
if ! apt_install; then
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  apt_install
fi
