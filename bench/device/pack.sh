#!/usr/bin/env bash
# Packs what a GPU run of the encoders bench needs into .dev/ (git-ignored),
# small enough for the device tool's 64 MiB transfer: the node binary (xz), node_modules without
# other platforms' binaries and the dev/test-only packages (xz), and weightless skeletons of the
# stand-ins (training/encoders/skeleton.py; filled with fresh random weights on the GPU machine).
# Then: device run with carry [".dev"] and command `bash bench/device/gpu.sh`.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .dev
[ -s .dev/node.xz ] || xz -T2 -6 -c "$(command -v node)" > .dev/node.xz
tar -C . -cf - \
  --exclude='node_modules/onnxruntime-node/bin/napi-v6/darwin' \
  --exclude='node_modules/onnxruntime-node/bin/napi-v6/win32' \
  --exclude='node_modules/onnxruntime-node/bin/napi-v6/linux/arm64' \
  --exclude='node_modules/onnxruntime-web' --exclude='node_modules/vosk/lib' \
  --exclude='node_modules/typescript' --exclude='node_modules/playwright-core' \
  --exclude='node_modules/prettier' --exclude='node_modules/@img' --exclude='node_modules/vite' \
  --exclude='node_modules/eslint' --exclude='node_modules/@typescript-eslint' \
  --exclude='node_modules/typescript-eslint' --exclude='node_modules/vitest' --exclude='node_modules/@vitest' \
  --exclude='node_modules/koffi' --exclude='node_modules/@koromix' --exclude='node_modules/ffi-napi' \
  --exclude='node_modules/chart.js' --exclude='node_modules/bintrees/test' --exclude='*.map' --exclude='*.d.ts' --exclude='*.md' --exclude='node_modules/protobufjs' --exclude='node_modules/@huggingface' \
  node_modules | xz -T2 -9 > .dev/nm.tar.xz
if [ ! -s .dev/skeleton/skeleton.json ]; then
  /usr/bin/python3 -m training.encoders.export_standins --encoders base,large --out models/weights/standins
  /usr/bin/python3 -m training.encoders.skeleton strip --src models/weights/standins --dst .dev/skeleton
fi
du -sh .dev/*
