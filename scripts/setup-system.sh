#!/usr/bin/env bash
# Installs the Debian packages the tests and the microphone path need, when they are missing.
# sox: WAV conversion and the microphone recorder; espeak-ng: speech the tests synthesise;
# chromium: the dashboard's browser test (driven by playwright-core, never a browser download).
set -euo pipefail
need=()
command -v sox >/dev/null 2>&1 || need+=(sox libsox-fmt-all)
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -eq 0 ]; then
  echo "setup-system: sox, espeak-ng and chromium already installed"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
echo "setup-system: installing ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
