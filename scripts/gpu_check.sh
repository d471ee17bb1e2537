#!/usr/bin/env bash
# Every GPU check of the torch/tensorrt engines in one run (< 5 minutes on one H200).
#
# On a GPU host with the project installed: bash scripts/gpu_check.sh 2>&1 | tee gpu.log
# Without a CUDA GPU it says so plainly and stops.
#
# 1. environment: torch, CUDA, GPU name, tensorrt;
# 2. the resnet50 stand-in (cached under $RAYBENCH_CACHE) and its TorchScript twin (.pt),
#    passed to the torch engine with --model (it runs .pt models only);
# 3. raw loop: the engine worker (dataset gather + torch engine, no Ray, no LoadGen) at the
#    H200x1 Offline and Server batch sizes -> samples/s;
# 4. `raybench run --engine torch --system H200x1` Offline and Server (PerformanceOnly,
#    $DURATION s) -> samples/s and the ratio to the raw loop (target >= 95 %), plus an
#    Offline AccuracyOnly run (top-1 against the stand-in's fp32 labels);
# 5. pytest -m gpu tests/gpu;
# 6. tensorrt: the same raw loop and Offline run wherever `import tensorrt` works.
# Knobs: PYTHON, DURATION (s, default 10), RAW_SECONDS (default 8), SERVER_FRACTION
# (Server target QPS as a fraction of the raw Server-batch rate, default 0.5).
# Dry run of the whole script on a CPU (torch engine on the CPU, system cpu):
#   GPU_CHECK_CPU=1 SYSTEM=cpu DURATION=2 RAW_SECONDS=2 bash scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
export RAYBENCH_CACHE=${RAYBENCH_CACHE:-/tmp/raybench-gpu-check/cache}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
WORK=${WORK:-/tmp/raybench-gpu-check}
DURATION=${DURATION:-10}
RAW_SECONDS=${RAW_SECONDS:-8}
SERVER_FRACTION=${SERVER_FRACTION:-0.5}
SYSTEM=${SYSTEM:-H200x1}
mkdir -p "$WORK"
t0=$(date +%s)
say() { printf '\n=== %s (t=%ss)\n' "$*" "$(( $(date +%s) - t0 ))"; }
raybench() { "$PY" -c 'import sys; from raybench.cli import main; sys.argv[0] = "raybench"; main()' "$@"; }

say "environment"
"$PY" - <<'PY'
import importlib.util, platform
print("python", platform.python_version())
try:
    import torch
    print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
    if torch.cuda.is_available():
        print("gpu", torch.cuda.get_device_name(0), f"{torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB")
except ImportError:
    print("torch not installed")
print("tensorrt", "importable" if importlib.util.find_spec("tensorrt") else "NOT importable")
PY
if [ "${GPU_CHECK_CPU:-0}" = 1 ]; then
  echo "GPU_CHECK_CPU=1: dry run on the CPU, system $SYSTEM"
elif ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "NO CUDA GPU: torch is missing or sees no CUDA device here; the GPU checks did not run."
  echo "Run this script on a GPU host."
  exit 0
fi

say "stand-in and TorchScript twin"
read -r ONNX_MODEL PT_MODEL DATA_DIR < <("$PY" - <<'PY'
from raybench.standins import cached_standin, torchscript_standin
s = cached_standin("resnet50")
print(s.model, torchscript_standin(s.model), s.data_dir)
PY
) || { echo "stand-in generation failed"; exit 1; }
[ -n "$DATA_DIR" ] || { echo "stand-in generation failed"; exit 1; }
echo "onnx $ONNX_MODEL  torchscript $PT_MODEL  data $DATA_DIR"
model_for() { [ "$1" = torch ] && echo "$PT_MODEL" || echo "$ONNX_MODEL"; }

# raw loop: ENGINE SCENARIO -> prints "RAW <engine> <scenario> <batch> <samples/s>"
raw_loop() {
"$PY" - "$1" "$2" "$RAW_SECONDS" "$SYSTEM" <<'PY'
import os, sys, time
from raybench.actors.engine import EngineActor, EngineSpec
from raybench.config.systems import load_system
from raybench.engines.base import EngineOptions
from raybench.standins import cached_standin, torchscript_standin
engine, scenario, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
h = load_system(sys.argv[4]).harness("resnet50", scenario)
s = cached_standin("resnet50")
model = torchscript_standin(s.model) if engine == "torch" else s.model
opts = EngineOptions(model=model, batch_size=h.batch_size, precision=h.precision,
                     copy_streams=h.copy_streams, inference_streams=h.inference_streams,
                     use_graphs=h.use_graphs,
                     device="cpu" if os.environ.get("GPU_CHECK_CPU") == "1" else "cuda")
t = time.perf_counter()
worker = EngineActor(EngineSpec(benchmark="resnet50", engine=engine, options=opts, data_dir=s.data_dir))
total = worker.dataset.total_count
worker.load_samples(range(total))
print(f"{engine} {scenario}: engine ready in {time.perf_counter() - t:.1f} s "
      f"(batch {h.batch_size}, {h.precision}, graphs {h.use_graphs}, streams {h.inference_streams})")
batches = [[(i + k) % total for k in range(h.batch_size)] for i in range(0, total, 97)]
for b in batches[:3]:
    worker.run(b, False)
done, n, t = 0, 0, time.perf_counter()
while time.perf_counter() - t < seconds:
    worker.run(batches[n % len(batches)], False)
    done += h.batch_size; n += 1
rate = done / (time.perf_counter() - t)
# the engine alone on one pre-gathered batch (no dataset gather), for reference
feeds = worker.dataset.feeds(batches[0])
e, m, t = worker.engine, 0, time.perf_counter()
while time.perf_counter() - t < seconds / 2:
    e.run(feeds); m += 1
print(f"{engine} {scenario}: engine alone {m * h.batch_size / (time.perf_counter() - t):,.0f} samples/s")
print(f"RAW {engine} {scenario} {h.batch_size} {rate:.1f}")
PY
}

# summary DIR -> prints "RUN <VALID|INVALID> <samples/s> p99=<ms> <metric name>=<metric>"
summary() {
"$PY" - "$1" <<'PY'
import sys
from pathlib import Path
from raybench.results.loadgen_log import parse_summary
s = parse_summary(Path(sys.argv[1]) / "mlperf_log_summary.txt")
sps = s.metric if s.scenario != "Server" else s.fields.get("result_completed_samples_per_sec")
p99 = s.percentiles.get("99.00", 0) / 1e6
print(f"RUN {'VALID' if s.valid else 'INVALID'} {float(sps):.1f} p99={p99:.3f}ms {s.metric_name}={s.metric}"
      + ("" if s.valid else "  (" + ", ".join(s.invalid_reasons) + ")"))
PY
}

ratio() { "$PY" -c "import sys; a, b = map(float, sys.argv[1:]); print(f'{100 * a / b:.1f} %', 'OK' if a >= 0.95 * b else 'BELOW 95 %')" "$1" "$2"; }

check_engine() {  # ENGINE
  local eng=$1 raw_off raw_srv line
  say "$eng: raw engine loop, Offline batch"
  line=$(raw_loop "$eng" Offline | tee /dev/stderr | grep '^RAW') || { echo "$eng raw loop FAILED"; return 1; }
  raw_off=$(echo "$line" | awk '{print $5}')
  say "$eng: raw engine loop, Server batch"
  line=$(raw_loop "$eng" Server | tee /dev/stderr | grep '^RAW') || { echo "$eng raw loop FAILED"; return 1; }
  raw_srv=$(echo "$line" | awk '{print $5}')

  say "$eng: raybench run Offline PerformanceOnly (${DURATION}s, target = raw rate)"
  raybench run --benchmark resnet50 --scenario Offline --mode PerformanceOnly --engine "$eng" \
    --system $SYSTEM --model "$(model_for "$eng")" --data-dir "$DATA_DIR" --duration "$DURATION" --target-qps "$raw_off" --output "$WORK/results-$eng" \
    || { echo "$eng Offline run FAILED"; return 1; }
  off=$(summary "$WORK/results-$eng/$SYSTEM/resnet50/Offline/performance/run_1"); echo "$off"
  off_sps=$(echo "$off" | awk '{print $3}')

  srv_qps=$("$PY" -c "print(round($raw_srv * $SERVER_FRACTION))")
  say "$eng: raybench run Server PerformanceOnly (${DURATION}s, target $srv_qps qps)"
  raybench run --benchmark resnet50 --scenario Server --mode PerformanceOnly --engine "$eng" \
    --system $SYSTEM --model "$(model_for "$eng")" --data-dir "$DATA_DIR" --duration "$DURATION" --target-qps "$srv_qps" --output "$WORK/results-$eng" \
    || { echo "$eng Server run FAILED"; return 1; }
  srv=$(summary "$WORK/results-$eng/$SYSTEM/resnet50/Server/performance/run_1"); echo "$srv"
  srv_sps=$(echo "$srv" | awk '{print $3}')

  say "$eng: raybench run Offline AccuracyOnly"
  raybench run --benchmark resnet50 --scenario Offline --mode AccuracyOnly --engine "$eng" \
    --system $SYSTEM --model "$(model_for "$eng")" --data-dir "$DATA_DIR" --output "$WORK/results-$eng" || echo "$eng accuracy run FAILED"

  say "$eng: FIGURES"
  echo "$eng Offline  raw $raw_off samples/s, raybench $off_sps samples/s, ratio $(ratio "$off_sps" "$raw_off")"
  echo "$eng Server   raw (batch loop) $raw_srv samples/s, raybench $srv_sps samples/s at target $srv_qps qps: $srv"
  echo "FIGURES $eng offline_raw=$raw_off offline_raybench=$off_sps server_raw=$raw_srv server_target=$srv_qps server_raybench=$srv_sps" >> "$WORK/figures.txt"
}

: > "$WORK/figures.txt"
check_engine torch

say "pytest -m gpu tests/gpu"
"$PY" -m pytest -q -m gpu tests/gpu -p no:cacheprovider 2>&1 | tail -15

say "tensorrt"
if "$PY" -c 'import tensorrt' 2>/dev/null; then
  check_engine tensorrt
else
  echo "tensorrt: NOT importable on this machine (no TensorRT wheels on the image), so the tensorrt engine was NOT checked."
fi

say "done"
cat "$WORK/figures.txt"
