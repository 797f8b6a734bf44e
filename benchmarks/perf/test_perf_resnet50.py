"""A real-scale network: timm ResNet-50 (random init), 4 images 3x224x224 (pytest-benchmark; no
timing asserts).

Run: OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python -m pytest benchmarks/perf/test_perf_resnet50.py \
     -p no:cacheprovider -o addopts="" --benchmark-columns=median,rounds --benchmark-group-by=group
(``FAITHBENCH_PERF_ROUNDS``: rounds per bench, default 3; ``FAITHBENCH_PERF_WARMUP``: warm-up rounds,
default 1; ``FAITHBENCH_PERF_DEVICE``: ``cuda`` on a GPU.)

The work: Grad-CAM (``layer4``), integrated gradients (``N_STEPS`` Gauss-Legendre points, one
internal batch), then deletion (zero baseline) and insertion (blur baseline), ``STEPS`` steps, of
both maps. Three comparisons, each the ratio of medians printed by ``conftest.py``:

- *pipeline over floor*: ours (the registered explainers and metrics) against the bare
  forward/backward passes that work needs: one forward+backward of the 4 images (Grad-CAM), one of
  the 4 x N_STEPS interpolated images with the gradient w.r.t. the input (IG), and the
  2 maps x 2 curves x 4 images x (STEPS + 1) perturbed forwards in the same chunks (``CHUNK``).
- *per component against the reference library*: ours vs pytorch-grad-cam's ``GradCAM``, vs
  captum's ``IntegratedGradients``, and our deletion curves of both maps vs
  ``quantus.PixelFlipping`` (QUANTUS_STEPS steps: Quantus counts channel-features,
  3 x 224 x 224 / QUANTUS_STEPS per step, and needs that to divide 224 x 224; it makes QUANTUS_STEPS
  forwards per image, ours QUANTUS_STEPS + 1 with the unperturbed point).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import timm
import torch
from captum.attr import IntegratedGradients
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

import faithbench.config
from faithbench.metrics import DeletionAUC, InsertionAUC
from faithbench.metrics.base import EvalContext, ForwardCounter
from faithbench.metrics.functional import deletion_curve
from faithbench.registry import explainers

faithbench.config.ensure_plugins_loaded()

STEPS = 4  # deletion/insertion steps of the pipeline
QUANTUS_STEPS = 6  # Quantus needs 3 x 224 x 224 / steps to divide 224 x 224: a multiple of 3
N_STEPS = 4
CHUNK = 16  # perturbed images per forward (a CPU-sized chunk of 224 px images)
ROUNDS = int(os.environ.get("FAITHBENCH_PERF_ROUNDS", "3"))
WARMUP = int(os.environ.get("FAITHBENCH_PERF_WARMUP", "1"))
DEVICE = os.environ.get("FAITHBENCH_PERF_DEVICE", "cpu")


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = timm.create_model("resnet50", pretrained=False, num_classes=2).eval().to(DEVICE)
    model.arch_family = "cnn"
    x = torch.rand(4, 3, 224, 224, generator=torch.Generator().manual_seed(0)).to(DEVICE)
    with torch.no_grad():
        target = model(x).argmax(1)
    return model, x, target


def _sync():
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


def _explain(model, x, target):
    cam = explainers.get("gradcam")(target_layer="layer4")(model, x, target)
    ig = explainers.get("integrated_gradients")(n_steps=N_STEPS, internal_batch_size=4 * N_STEPS)(model, x, target)
    return cam, ig


@pytest.mark.benchmark(group="resnet50 pipeline")
def test_resnet50_ours(benchmark, setup):
    model, x, target = setup
    deletion, insertion = DeletionAUC(steps=STEPS, max_batch=CHUNK), InsertionAUC(steps=STEPS, max_batch=CHUNK)

    def run():
        for saliency in _explain(model, x, target):
            ctx = EvalContext(model=model, x=x, target=target, label=target, saliency=saliency, masks={},
                              predict=ForwardCounter(model, max_batch=CHUNK))
            deletion(ctx)
            insertion(ctx)
            assert ctx.predict.passes == 2 * 4 * (STEPS + 1)
        _sync()

    benchmark.pedantic(run, rounds=ROUNDS, warmup_rounds=WARMUP)


@pytest.mark.benchmark(group="resnet50 pipeline")
def test_resnet50_floor(benchmark, setup):
    model, x, target = setup
    alphas = torch.linspace(0, 1, N_STEPS, device=x.device)
    perturbed = x.repeat_interleave(2 * 2 * (STEPS + 1), dim=0)  # the metrics' images' worth of work

    def run():
        model.zero_grad(set_to_none=True)
        model(x).gather(1, target[:, None]).sum().backward()  # Grad-CAM: one forward + backward
        model.zero_grad(set_to_none=True)
        xs = (alphas.view(-1, 1, 1, 1, 1) * x).flatten(0, 1).requires_grad_(True)  # IG: N_STEPS x 4 images
        out = model(xs).gather(1, target.repeat(N_STEPS)[:, None]).sum()
        torch.autograd.grad(out, xs)
        with torch.inference_mode():  # deletion + insertion of both maps
            for start in range(0, len(perturbed), CHUNK):
                model(perturbed[start:start + CHUNK])
        _sync()

    benchmark.pedantic(run, rounds=ROUNDS, warmup_rounds=WARMUP)


@pytest.mark.benchmark(group="resnet50 gradcam")
def test_resnet50_ours_gradcam(benchmark, setup):
    model, x, target = setup
    explainer = explainers.get("gradcam")(target_layer="layer4")
    benchmark.pedantic(lambda: (explainer(model, x, target), _sync()), rounds=ROUNDS, warmup_rounds=WARMUP)


@pytest.mark.benchmark(group="resnet50 gradcam")
def test_resnet50_pytorch_grad_cam(benchmark, setup):
    model, x, target = setup
    targets = [ClassifierOutputTarget(int(t)) for t in target]

    def run():
        cam = GradCAM(model=model, target_layers=[model.layer4])
        try:
            cam(input_tensor=x, targets=targets)
        finally:
            cam.activations_and_grads.release()
        _sync()

    benchmark.pedantic(run, rounds=ROUNDS, warmup_rounds=WARMUP)


@pytest.mark.benchmark(group="resnet50 integrated gradients")
def test_resnet50_ours_ig(benchmark, setup):
    model, x, target = setup
    explainer = explainers.get("integrated_gradients")(n_steps=N_STEPS, internal_batch_size=4 * N_STEPS)
    benchmark.pedantic(lambda: (explainer(model, x, target), _sync()), rounds=ROUNDS, warmup_rounds=WARMUP)


@pytest.mark.benchmark(group="resnet50 integrated gradients")
def test_resnet50_captum_ig(benchmark, setup):
    model, x, target = setup

    def run():
        IntegratedGradients(model).attribute(x.clone().requires_grad_(True), baselines=torch.zeros_like(x),
                                             target=target, n_steps=N_STEPS, method="gausslegendre",
                                             internal_batch_size=4 * N_STEPS)
        _sync()

    benchmark.pedantic(run, rounds=ROUNDS, warmup_rounds=WARMUP)


@pytest.fixture(scope="module")
def maps(setup):
    model, x, target = setup
    return [s.to(x.device) for s in _explain(model, x, target)]


@pytest.mark.benchmark(group="resnet50 deletion")
def test_resnet50_ours_deletion(benchmark, setup, maps):
    model, x, target = setup
    predict = ForwardCounter(model, max_batch=CHUNK)

    def run():
        for saliency in maps:
            deletion_curve(predict, x, target, saliency, steps=QUANTUS_STEPS, baseline="zero", max_batch=CHUNK)
        _sync()

    benchmark.pedantic(run, rounds=ROUNDS, warmup_rounds=WARMUP)


@pytest.mark.benchmark(group="resnet50 deletion")
def test_resnet50_quantus_pixel_flipping(benchmark, setup, maps):
    quantus = pytest.importorskip("quantus")
    model, x, target = setup
    metric = quantus.PixelFlipping(features_in_step=3 * 224 * 224 // QUANTUS_STEPS, perturb_baseline=0.0,
                                   disable_warnings=True)
    xs, ys = x.cpu().numpy(), target.cpu().numpy()
    arrays = [s[:, None].cpu().numpy() for s in maps]

    def run():
        for a in arrays:
            curves = np.array(metric(model=model, x_batch=xs, y_batch=ys, a_batch=a, device=DEVICE))
            assert curves.shape == (4, QUANTUS_STEPS)
        _sync()

    benchmark.pedantic(run, rounds=ROUNDS, warmup_rounds=WARMUP)
