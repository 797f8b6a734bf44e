#!/usr/bin/env bash
# CPU-vs-GPU agreement and timings (benchmarks/perf/gpu_check.py), on a machine with CUDA; < 10 min.
# Usage: bash benchmarks/perf/gpu_check.sh [WORK_DIR]   (after `make install`, or with faithbench installed)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
export HF_HUB_OFFLINE=1
timeout 600 "$PY" benchmarks/perf/gpu_check.py "${1:-/tmp/faithbench_gpu_check}"
