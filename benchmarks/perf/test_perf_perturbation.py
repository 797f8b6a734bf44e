"""Perturbation engine cost (pytest-benchmark; no timing asserts).

Run: OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python -m pytest benchmarks/perf -p no:cacheprovider \
     -o addopts="" --benchmark-columns=median,mean,stddev,rounds

(a) overhead: deletion + insertion of 16 images 1x64x64, 50 steps (2 x 16 x 51 = 1632 perturbed
    images, one shared ranking, blur baseline) vs the bare forward passes of 1632 prebuilt images
    in the same chunks (256). Target ratio <= 1.15. ``extra_info`` records the share of our time
    spent inside the forward passes, a measure that the shared machine's noise does not move.
(b) vs Quantus: our deletion curve vs quantus.PixelFlipping on 4 images 3x224x224, 48 steps
    each (Quantus: 3136 channel-features per step, about 1045 pixels x 3 channels, as it broadcasts
    a 2D map over channels and needs a divisor of 224 x 224; ours: 1045 pixels per step plus the
    unperturbed point, so ours runs 49 batches to Quantus' 48).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from torch import nn

from faithbench.metrics import DeletionAUC, InsertionAUC
from faithbench.metrics.base import EvalContext, ForwardCounter
from faithbench.metrics.functional import deletion_curve

CHUNK = 256


class SmallCNN(nn.Module):
    def __init__(self, channels: int = 1, classes: int = 2, stride: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 16, 3, stride=stride, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, stride=stride, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4))
        self.fc = nn.Linear(32 * 16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).flatten(1))


@pytest.fixture(scope="module")
def small_batch():
    torch.manual_seed(0)
    model = SmallCNN().eval()
    x = torch.rand(16, 1, 64, 64)
    saliency = torch.rand(16, 64, 64)
    target = torch.zeros(16, dtype=torch.long)
    return model, x, saliency, target


@pytest.mark.benchmark(group="overhead")
def test_deletion_insertion(benchmark, small_batch):
    model, x, saliency, target = small_batch

    def run():
        ctx = EvalContext(model=model, x=x, target=target, label=target, saliency=saliency, masks={},
                          predict=ForwardCounter(model, max_batch=CHUNK))
        start = time.perf_counter()
        DeletionAUC(steps=50, max_batch=CHUNK)(ctx)
        InsertionAUC(steps=50, max_batch=CHUNK)(ctx)
        assert ctx.predict.passes == 2 * 16 * 51
        shares.append(ctx.predict.seconds / (time.perf_counter() - start))

    shares: list[float] = []
    benchmark.pedantic(run, rounds=7, warmup_rounds=1)
    benchmark.extra_info["total_over_forward_median"] = round(1 / float(np.median(shares)), 4)


@pytest.mark.benchmark(group="overhead")
def test_bare_forward(benchmark, small_batch):
    model, x, _, _ = small_batch
    images = x.repeat_interleave(2 * 51, dim=0)  # the same 1632 images' worth of work
    predict = ForwardCounter(model, max_batch=CHUNK)

    def run():
        for start in range(0, len(images), CHUNK):
            predict(images[start:start + CHUNK])

    benchmark.pedantic(run, rounds=7, warmup_rounds=1)


@pytest.fixture(scope="module")
def large_batch():
    torch.manual_seed(0)
    model = SmallCNN(channels=3, stride=2).eval()
    x = torch.rand(4, 3, 224, 224)
    saliency = torch.rand(4, 224, 224)
    with torch.no_grad():
        target = model(x).argmax(1)
    return model, x, saliency, target


@pytest.mark.benchmark(group="vs_quantus")
@pytest.mark.parametrize("chunk", [CHUNK, 16])
def test_our_deletion_224(benchmark, large_batch, chunk):
    # on a CPU a 256-image chunk of 224 x 224 images overflows the caches and the model itself runs
    # slower per image than in Quantus' 4-image batches; 16 shows the engine at a CPU-sized chunk
    model, x, saliency, target = large_batch
    predict = ForwardCounter(model, max_batch=chunk)
    benchmark.pedantic(lambda: deletion_curve(predict, x, target, saliency, steps=48, baseline="zero",
                                              max_batch=chunk), rounds=3, warmup_rounds=1)


@pytest.mark.benchmark(group="vs_quantus")
def test_quantus_pixel_flipping_224(benchmark, large_batch):
    quantus = pytest.importorskip("quantus")
    model, x, saliency, target = large_batch
    metric = quantus.PixelFlipping(features_in_step=3136, perturb_baseline=0.0, disable_warnings=True)
    xs, ys, a = x.numpy(), target.numpy(), saliency[:, None].numpy()

    def run():
        curves = np.array(metric(model=model, x_batch=xs, y_batch=ys, a_batch=a, device="cpu"))
        assert curves.shape == (4, 48)

    benchmark.pedantic(run, rounds=3, warmup_rounds=1)
