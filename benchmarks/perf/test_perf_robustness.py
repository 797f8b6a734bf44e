"""Max-sensitivity cost: ours vs Quantus doing the same work (pytest-benchmark; no timing asserts).

Run: OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python -m pytest benchmarks/perf/test_perf_robustness.py \
     -p no:cacheprovider -o addopts="" --benchmark-columns=median,mean,stddev,rounds

4 images 3x224x224, a random-init timm resnet18 (2 classes), the saliency explainer (captum
Saliency, max over channels), 10 draws of U(-0.2, 0.2) noise: both sides re-explain 40 perturbed
images with the same explainer and reduce ||a - a'|| / ||a|| by the maximum. Quantus 0.6.0's
MaxSensitivity calls its ``explain_func`` once per draw on NumPy arrays (4 images a call); ours
runs on the model's device with ``draws_per_call`` draws per explainer call (1: the same calls
as Quantus; 10: one call of 40 images). On a GPU (FAITHBENCH_PERF_DEVICE=cuda, or automatically
when one is visible) Quantus' per-draw round trips through NumPy are part of its cost.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import timm
import torch

import faithbench.config
from faithbench.metrics import MaxSensitivity
from faithbench.metrics.base import EvalContext, ForwardCounter
from faithbench.registry import explainers

faithbench.config.ensure_plugins_loaded()

DRAWS = 10
DEVICE = os.environ.get("FAITHBENCH_PERF_DEVICE", "cuda" if torch.cuda.is_available() else "cpu")


@pytest.fixture(scope="module")
def resnet_batch():
    torch.manual_seed(0)
    model = timm.create_model("resnet18", pretrained=False, num_classes=2).eval().to(DEVICE)
    x = torch.rand(4, 3, 224, 224, device=DEVICE)
    with torch.no_grad():
        target = model(x).argmax(1)
    explainer = explainers.get("saliency")(seed=0)
    saliency = explainer(model, x, target)
    return model, x, target, explainer, saliency


def _sync():
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


@pytest.mark.benchmark(group="robustness_vs_quantus")
@pytest.mark.parametrize("draws_per_call", [1, DRAWS])
def test_our_max_sensitivity(benchmark, resnet_batch, draws_per_call):
    model, x, target, explainer, saliency = resnet_batch
    metric = MaxSensitivity(nr_samples=DRAWS, radius=0.2, draws_per_call=draws_per_call)

    def run():
        ctx = EvalContext(model=model, x=x, target=target, label=target, saliency=saliency, masks={},
                          predict=ForwardCounter(model), explainer=explainer)
        value = metric(ctx).value
        _sync()
        assert value.shape == (4,) and ctx.predict.passes == 4 * DRAWS

    benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    benchmark.extra_info["device"] = DEVICE


@pytest.mark.benchmark(group="robustness_vs_quantus")
def test_quantus_max_sensitivity(benchmark, resnet_batch):
    quantus = pytest.importorskip("quantus")
    model, x, target, explainer, saliency = resnet_batch

    def explain(model, inputs, targets, **_kw):
        xs = torch.as_tensor(np.asarray(inputs), dtype=torch.float32, device=DEVICE)
        return explainer(model, xs, torch.as_tensor(np.asarray(targets), device=DEVICE)).cpu().numpy()

    metric = quantus.MaxSensitivity(nr_samples=DRAWS, lower_bound=0.2, disable_warnings=True)
    xs, ys, a = x.cpu().numpy(), target.cpu().numpy(), saliency[:, None].cpu().numpy()

    def run():
        values = np.array(metric(model=model, x_batch=xs, y_batch=ys, a_batch=a, explain_func=explain,
                                 device=DEVICE))
        assert values.shape == (4,)

    benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    benchmark.extra_info["device"] = DEVICE


@pytest.mark.benchmark(group="robustness_vs_quantus")
def test_bare_explanations(benchmark, resnet_batch):
    # the floor both sides must pay: 10 explainer calls of 4 prebuilt perturbed images each
    model, x, target, explainer, _ = resnet_batch
    noisy = [x + (torch.rand(x.shape, device=DEVICE) * 2 - 1) * 0.2 for _ in range(DRAWS)]

    def run():
        for xs in noisy:
            explainer(model, xs, target)
        _sync()

    benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    benchmark.extra_info["device"] = DEVICE
