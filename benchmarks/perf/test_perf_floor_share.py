"""Every perturbation metric's time against its own forward passes (pytest-benchmark; no timing asserts).

Run: OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python -m pytest benchmarks/perf/test_perf_floor_share.py \
     -p no:cacheprovider -o addopts="" --benchmark-columns=median,rounds

4 images 1 x 224 x 224 (repeated to 3 channels; ``FAITHBENCH_PERF_CHANNELS=3``: 3 x 224 x 224, an RGB
image as the metric sees it), a random-init timm resnet18 (``FAITHBENCH_PERF_ARCH``),
a smooth tie-free saliency (a 7 x 7 random map upsampled, as Grad-CAM's). For each metric that makes
forward passes, the metric runs through ``EvalContext`` with a ``ForwardCounter``, which times the
forward passes it makes (``predict.seconds``). Recorded per metric (``extra_info``, printed at the
end): ``passes``, the share of its time in those forwards, and ``over_floor`` = time / forward time,
the metric's cost over its forward floor (goal: <= 1.15). Parameters: the ``metrics`` suite's, with
fewer draws where the count only scales the forwards. ``FAITHBENCH_PERF_DEVICE`` (default cpu)
puts the network and the batch on that device (``benchmarks/perf/gpu_perf.sh``).
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import torch

from faithbench.metrics.base import EvalContext, ForwardCounter
from faithbench.registry import metrics

ARCH = os.environ.get("FAITHBENCH_PERF_ARCH", "resnet18")
DEVICE = os.environ.get("FAITHBENCH_PERF_DEVICE", "cpu")  # on a GPU the network synchronises after each forward
ROUNDS = int(os.environ.get("FAITHBENCH_PERF_ROUNDS", "3"))
CHANNELS = int(os.environ.get("FAITHBENCH_PERF_CHANNELS", "1"))
B = 4

PARAMS = {  # the metrics suite's settings, with 224-px patches where it uses 8 px at 64 px
    "faithfulness_correlation": {"runs": 8, "subset_size": 224},
    "faithfulness_estimate": {"patch": 28},
    "monotonicity": {"patch": 28, "steps": 16},
    "monotonicity_correlation": {"patch": 56, "draws": 2},
    "sensitivity_n": {"patch": 28, "runs": 4, "fractions": [0.1, 0.4]},
    "irof": {"patch": 56},
    "selectivity": {"patch": 56},
    "infidelity": {"patch": 28, "runs": 16},
    "road_morf": {"percentages": [20, 50, 80]},
    "road_lerf": {"percentages": [20, 50, 80]},
    "sufficiency": {"threshold": 0.9},
    "completeness": {},
    "non_sensitivity": {"patch": 56},
    "deletion_auc": {"steps": 16},
    "insertion_auc": {"steps": 16},
}


@pytest.fixture(scope="module")
def batch(gray):
    timm = pytest.importorskip("timm")
    import faithbench.config

    faithbench.config.ensure_plugins_loaded()
    torch.manual_seed(0)
    model = gray(timm.create_model(ARCH, pretrained=False, num_classes=10)).eval().to(DEVICE)
    x = torch.rand(B, CHANNELS, 224, 224).to(DEVICE)
    coarse = torch.rand(B, 1, 7, 7, generator=torch.Generator().manual_seed(1))
    saliency = torch.nn.functional.interpolate(coarse, size=(224, 224), mode="bilinear", align_corners=False)[:, 0]
    saliency = (saliency + 1e-6 * torch.rand(saliency.shape, generator=torch.Generator().manual_seed(2))).to(DEVICE)
    with torch.no_grad():
        target = model(x).argmax(1)
        model(x.repeat(16, 1, 1, 1))  # warm the allocator
    return model, x, saliency, target


@pytest.mark.benchmark(group="over_floor")
@pytest.mark.parametrize("name", sorted(PARAMS))
def test_over_floor(benchmark, batch, name):
    model, x, saliency, target = batch
    metric = metrics.get(name)(**PARAMS[name])
    shares, passes = [], []

    def run():
        ctx = EvalContext(model=model, x=x, target=target, label=target, saliency=saliency, masks={},
                          predict=ForwardCounter(model))
        start = time.perf_counter()
        metric(ctx)
        total = time.perf_counter() - start
        shares.append(ctx.predict.seconds / total)
        passes.append(ctx.predict.passes)

    benchmark.pedantic(run, rounds=ROUNDS, warmup_rounds=1)
    share = float(np.median(shares))
    benchmark.extra_info.update(passes=passes[-1], forward_share=round(share, 4), over_floor=round(1 / share, 3))
