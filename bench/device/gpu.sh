#!/usr/bin/env bash
# Runs on the GPU machine lent by the device tool (from the repo root, `.dev` and `.gl` carried; see
# bench/device/pack.sh): unpacks node and node_modules, the Vulkan loader, fills the stand-ins'
# weights, then probes WebGPU and times the encoders on it. Results land in $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
t0=$(date +%s)
el() { echo $(( $(date +%s) - t0 )); }
log() { echo "[gpu $(el)s] $*" | tee -a "$OUT/gpu.log"; }
left() { [ "$(el)" -lt "${GPU_BUDGET_S:-380}" ]; }
exec 2> >(tee -a "$OUT/stderr.log" >&2)

mkdir -p /tmp/bin && xz -dc .dev/node.xz > /tmp/bin/node && chmod +x /tmp/bin/node && export PATH=/tmp/bin:$PATH
tar -xJf .dev/nm.tar.xz
if [ -d .gl ] && [ -z "${GPU_DRY:-}" ]; then for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig; fi
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$icd" ]; then export VK_DRIVER_FILES=$icd; break; fi
done
[ -f /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json ] && export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
PY=python3; python3 -c "import onnx, numpy" 2>/dev/null || PY=/usr/bin/python3
export CIRCUMPLEX_PYTHON=$PY
log "node $(node -v), VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset}, $(nproc) cores"
nvidia-smi -L 2>&1 | tee -a "$OUT/gpu.log"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee -a "$OUT/gpu.log"
(timeout 20 vulkaninfo --summary 2>&1 | head -40) > "$OUT/vulkaninfo.txt"

"$PY" -m training.encoders.skeleton fill --src .dev/skeleton --dst models/weights/standins > "$OUT/fill.log" 2>&1 || log "fill failed: $(tail -2 "$OUT/fill.log")"
log "stand-ins filled"
timeout 60 npx tsx bench/device/probe.ts > "$OUT/probe.json" 2>>"$OUT/probe.err"; log "probe rc=$? $(tr -d '\n ' < "$OUT/probe.json" | cut -c1-600)"

# The product on the GPU: run with --device auto and --device webgpu on the shipped WAV.
for dev in auto webgpu; do
  CIRCUMPLEX_LOG_LEVEL=info timeout 60 node bin/circumplex.mjs run --input test/fixtures/audio/speech.wav --device "$dev" --json > "$OUT/run-$dev.jsonl" 2> "$OUT/run-$dev.err"
  log "run --device $dev: rc=$? frames=$(grep -c '"type":"affect"' "$OUT/run-$dev.jsonl") providers: $(grep -o '"msg":"model [^"]*runs on [^"]*"' "$OUT/run-$dev.err" | tr '\n' ' ') stderr-lines=$(wc -l < "$OUT/run-$dev.err")"
done

if left; then
  timeout 120 "$PY" -m training.encoders.convert_fp16 --src models/weights/standins --dst models/weights/standins-fp16 --ids wav2vec2-msp-dim > "$OUT/fp16-convert.log" 2>&1
  log "fp16 convert rc=$?"
  timeout 120 npx tsx bench/fp16-deviation.ts --device webgpu --id wav2vec2-msp-dim --windows 8 > "$OUT/fp16-webgpu.json" 2> "$OUT/fp16-webgpu.err"
  log "fp16 webgpu rc=$? $(tr -d '\n ' < "$OUT/fp16-webgpu.json" | cut -c1-500)"
fi
if left; then
  timeout $(( ${GPU_BUDGET_S:-380} - $(el) )) npx tsx bench/run-bench.ts --sections encoders --encoders large,base --quick --device webgpu \
    --encoder-batches 1,4,16,32 --encoder-streams 32 --out "$OUT/bench" > "$OUT/bench-webgpu.txt" 2>&1
  log "encoders webgpu rc=$?"
fi
log "done"
