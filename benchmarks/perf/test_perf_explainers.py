"""Explainer wrappers vs the libraries they wrap (pytest-benchmark; no timing asserts).

Run: OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python -m pytest benchmarks/perf/test_perf_explainers.py \
     -p no:cacheprovider -o addopts="" --benchmark-columns=median,rounds --benchmark-group-by=group

Each group times our registered explainer and the library's own call on the same model and inputs
(a timm ResNet-18, 16 images 1x64x64): the wrapper's overhead is the ratio of the medians. The
batching benches record how many forward calls RISE and Score-CAM make (``extra_info``).
"""

from __future__ import annotations

import pytest
import timm
import torch
from captum.attr import IntegratedGradients, Saliency
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

import faithbench.config
from faithbench.registry import explainers

faithbench.config.ensure_plugins_loaded()


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = timm.create_model("resnet18", pretrained=False, in_chans=1, num_classes=2).eval()
    model.arch_family = "cnn"
    x = torch.rand(16, 1, 64, 64)
    target = torch.tensor([0, 1] * 8)
    return model, x, target


def _library_call(name, model, x, target):
    if name == "gradcam":
        targets = [ClassifierOutputTarget(int(t)) for t in target]

        def run():
            cam = GradCAM(model=model, target_layers=[model.layer3])
            try:
                cam(input_tensor=x, targets=targets)
            finally:
                cam.activations_and_grads.release()
        return run
    if name == "saliency":
        return lambda: Saliency(model).attribute(x.clone().requires_grad_(True), target=target, abs=True)
    return lambda: IntegratedGradients(model).attribute(x.clone().requires_grad_(True), baselines=torch.zeros_like(x),
                                                        target=target, n_steps=16, method="gausslegendre",
                                                        internal_batch_size=256)


OURS = {"gradcam": {"target_layer": "layer3"}, "saliency": {}, "integrated_gradients": {"n_steps": 16}}
ROUNDS = {"gradcam": 15, "saliency": 15, "integrated_gradients": 7}


@pytest.mark.parametrize("name", list(OURS))
def test_ours(benchmark, setup, name):
    model, x, target = setup
    explainer = explainers.get(name)(**OURS[name])
    benchmark.group = name
    benchmark.pedantic(lambda: explainer(model, x, target), rounds=ROUNDS[name], warmup_rounds=2)


@pytest.mark.parametrize("name", list(OURS))
def test_library(benchmark, setup, name):
    model, x, target = setup
    benchmark.group = name
    benchmark.pedantic(_library_call(name, model, x, target), rounds=ROUNDS[name], warmup_rounds=2)


def _count_calls(model):
    calls = {"calls": 0, "images": 0}

    def hook(_m, args):
        calls["calls"] += 1
        calls["images"] += int(args[0].shape[0])

    return calls, model.register_forward_pre_hook(hook)


@pytest.mark.benchmark(group="batching")
@pytest.mark.parametrize("name, params", [("rise", {"n_masks": 256, "batch_size": 64}),
                                          ("scorecam", {"batch_size": 64})])
def test_batched_forward_passes(benchmark, setup, name, params):
    model, x, target = setup
    try:
        explainer = explainers.get(name)(**params)
    except Exception as exc:  # parameter names are the explainer's own
        pytest.skip(f"{name}: {exc}")
    calls, handle = _count_calls(model)
    try:
        benchmark.pedantic(lambda: explainer(model, x[:2], target[:2]), rounds=3, warmup_rounds=0)
    finally:
        handle.remove()
    benchmark.extra_info.update({"forward_calls_per_round": calls["calls"] / 3,
                                 "images_per_round": calls["images"] / 3})
    assert calls["images"] / calls["calls"] > 8  # many images per forward call, not one


@pytest.mark.benchmark(group="interleaved")
@pytest.mark.parametrize("name", list(OURS))
def test_wrapper_overhead_interleaved(benchmark, setup, name):
    """Ours and the library's call alternate in one loop, so machine noise hits both alike;
    ``extra_info['ours_over_library']`` is the ratio of the medians."""
    import time

    model, x, target = setup
    explainer = explainers.get(name)(**OURS[name])
    ours, library = (lambda: explainer(model, x, target)), _library_call(name, model, x, target)
    times: dict[str, list[float]] = {"ours": [], "library": []}

    def run():
        for key, fn in (("ours", ours), ("library", library)):
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)

    benchmark.pedantic(run, rounds=9 if name != "integrated_gradients" else 5, warmup_rounds=1)
    median = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    benchmark.extra_info["ours_over_library"] = round(median["ours"] / median["library"], 4)
