#!/usr/bin/env bash
# Installs the espeak-ng program (voxguard's local voice) when it is missing.
# Idempotent: does nothing when espeak-ng is already on PATH.
set -euo pipefail
if command -v espeak-ng >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "espeak-ng is missing and apt-get is not available: install espeak-ng with your package manager" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends espeak-ng >/dev/null
command -v espeak-ng >/dev/null
