#!/usr/bin/env bash
# Issue 14's GPU figures and GPU tests, prepared (a GPU machine is lent for minutes).
#   bash bench/gpu_issue14.sh [OUT_DIR] [STEP ...]   -> OUT_DIR/STEP.txt, one file per measurement
# Each step is bounded by `timeout` so that one slow step cannot eat the others' time. All steps
# together may take ~28 minutes: where one command may run 10 minutes, run them in groups, most
# wanted first, e.g.  gpu-tests decoding-3b filters  |  chat-3b  batching-3b embeddings  |  scene-export onnx-vs-torch
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-bench-gpu}}
mkdir -p "$OUT"
PY=${PY:-.venv/bin/python}
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
shift $(( $# > 0 ? 1 : 0 ))
WANTED=" $* "
run() {
  local name=$1 limit=$2; shift 2
  if [ "$WANTED" != "  " ] && [[ "$WANTED" != *" $name "* ]]; then return; fi
  echo "== $name"; timeout "$limit" "$PY" "$@" > "$OUT/$name.txt" 2>&1; echo "   rc=$? ($(tail -1 "$OUT/$name.txt"))"
}
run gpu-tests      300 -m pytest -q -p no:cacheprovider tests/core/test_filter_fused.py tests/core/test_filter_device.py \
    tests/core/test_refined_lee.py tests/core/test_decoding.py tests/core/test_evaluate_batch_fit.py tests/core/test_onnx.py
run chat-3b        240 bench/bench_vlm_stream.py --skip-cpu --cuda-tokens 128 --cuda-runs 5 --image 1024
run onnx-vs-torch  240 bench/bench_onnx.py --runs 3 --wide-layers 4 --device cuda
run filters        180 bench/bench_gpu_filters.py
run scene-export   300 bench/bench_pipeline.py --size 16384 --devices cpu,cuda
run embeddings      90 bench/bench_embeddings.py --n 20000 --runs 3
run batching       180 bench/bench_batching.py --samples 64 --batch 16 --runs 2
run batching-3b    240 bench/bench_batching.py --model 3b --chips 512 --batch auto --samples 256 --runs 1 --tokens 4
run decoding-3b    240 bench/bench_decoding.py --model 3b --device cuda --image 1024 --tokens 128 --runs 3
