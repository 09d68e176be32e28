#!/usr/bin/env bash
# Installs what the WebRTC interop tests need, only when it is missing: a
# Python venv under tests/rtc/.venv with aiortc (an independent WebRTC
# implementation) and LiveKit's official Python SDK (libwebrtc inside its
# wheel), from PyPI. Idempotent: a second run does nothing.
# Prints the venv's python path on stdout.
set -euo pipefail
cd "$(dirname "$0")"

# Tests run at once may all call this: one installs, the others wait for it.
exec 9>"$PWD/.setup.lock"
flock 9

venv="$PWD/.venv"
python="$venv/bin/python"

if [ -x "$python" ] && "$python" -c 'import aiortc, livekit.rtc' 2>/dev/null; then
  echo "$python"
  exit 0
fi

if ! command -v python3 >/dev/null; then
  echo "tests/rtc/setup.sh: python3 is missing; install Python 3.9 or newer (Debian: apt-get install -y python3 python3-venv)" >&2
  exit 1
fi

if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" -eq 0 ]; then
    echo "tests/rtc/setup.sh: installing python3-venv" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >&2 ||
      { DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >&2; }
  else
    echo "tests/rtc/setup.sh: Python's venv module is missing; run 'apt-get install -y python3-venv' as root" >&2
    exit 1
  fi
fi

echo "tests/rtc/setup.sh: creating $venv with aiortc and livekit" >&2
if [ ! -x "$python" ]; then
  python3 -m venv "$venv" >&2
fi
"$python" -m pip install --quiet --disable-pip-version-check \
  'aiortc>=1.9,<2' 'livekit>=1.0,<2' 'livekit-api>=1.0,<2' >&2
"$python" -c 'import aiortc, livekit.rtc' >&2
echo "$python"
