#!/usr/bin/env bash
# Installs the Debian packages the tests, the training recipes and the microphone path need, when
# they are missing.
# sox: WAV conversion and the microphone recorder; espeak-ng: speech the tests synthesise;
# chromium: the dashboard's browser test (driven by playwright-core, never a browser download);
# redis-server: the Redis backplane tests (started on a free port by the tests themselves);
# python3-websockets: the Python subscriber example;
# python3-torch, -torchaudio, -sklearn, -soundfile, -onnx, -numpy: the training recipes under
# training/ (run by Debian's /usr/bin/python3; the fidelity tests train quick variants).
set -euo pipefail
need=()
command -v sox >/dev/null 2>&1 || need+=(sox libsox-fmt-all)
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
PY=/usr/bin/python3
py_has() { [ -x "$PY" ] && "$PY" -c "import $1" >/dev/null 2>&1; }
py_has torch || need+=(python3-torch)
py_has torchaudio || need+=(python3-torchaudio)
py_has sklearn || need+=(python3-sklearn)
py_has soundfile || need+=(python3-soundfile)
py_has onnx || need+=(python3-onnx)
py_has numpy || need+=(python3-numpy)
py_has websockets || need+=(python3-websockets)
if [ ${#need[@]} -eq 0 ]; then
  echo "setup-system: system packages already installed"
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
