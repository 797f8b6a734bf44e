#!/usr/bin/env bash
# Issue 15's speed criteria on a GPU (cut off at 450 s; not yet run on a GPU): each perturbation metric
# over its own forward passes, and ours against Quantus 0.6.0 doing the same work for
# faithfulness_correlation, road_morf (the smooth saliency: large holes), irof and max_sensitivity.
# 4 images 224 x 224, a random-init timm resnet50 (FAITHBENCH_PERF_ARCH to change), on cuda.
# Usage: bash benchmarks/perf/gpu_perf.sh   (after `make install`, or with faithbench installed)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
export HF_HUB_OFFLINE=1 FAITHBENCH_PERF_DEVICE="${FAITHBENCH_PERF_DEVICE:-cuda}"
export FAITHBENCH_PERF_ARCH="${FAITHBENCH_PERF_ARCH:-resnet50}" FAITHBENCH_PERF_ROUNDS="${FAITHBENCH_PERF_ROUNDS:-3}"
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu_perf.sh: no CUDA device visible')"
# the i.i.d.-saliency ROAD group is left out: Quantus' CPU sparse solves would take most of the time
timeout 450 "$PY" -m pytest benchmarks/perf/test_perf_floor_share.py benchmarks/perf/test_perf_faithfulness_extra.py \
    benchmarks/perf/test_perf_robustness.py -p no:cacheprovider -o addopts="" --benchmark-columns=median,rounds \
    --deselect benchmarks/perf/test_perf_faithfulness_extra.py::test_ours_road \
    --deselect benchmarks/perf/test_perf_faithfulness_extra.py::test_floor_road \
    --deselect benchmarks/perf/test_perf_faithfulness_extra.py::test_quantus_road
