"""Cost of faithfulness_correlation, road_morf and irof (pytest-benchmark; no timing asserts).

Run: OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python -m pytest \
     benchmarks/perf/test_perf_faithfulness_extra.py -p no:cacheprovider -o addopts="" \
     --benchmark-columns=median,mean,stddev,rounds

4 images 224 x 224, a random-init timm network (``FAITHBENCH_PERF_ARCH``, default resnet18;
resnet50 is the issue's target where the machine allows). The images have ONE channel and the
network repeats it to three: Quantus 0.6.0's ROAD and IROF fail on 3-channel images with a 2D map
(ROAD indexes the channel-broadcast map as pixels: IndexError; IROF builds a 1-channel mask for a
3-channel array: AssertionError), so every group uses the same 1-channel input. For each metric three benchmarks do the
same work: ours (the registered metric through ``EvalContext``), the forward floor (the bare
forward passes the metric must make, prebuilt images in the same chunks) and Quantus 0.6.0 (the
metric of the same name, same number of forwards). The conftest prints ours / floor and
ours / Quantus (medians). Small settings, overridable by environment:

- faithfulness_correlation: ``FAITHBENCH_PERF_RUNS`` random subsets (default 8) of 224 pixels;
- road_morf: percentages ``FAITHBENCH_PERF_ROAD`` (default "10,50,90"), noise 0.01 (Quantus:
  ``noisy_linear_imputation`` with scipy's sparse direct solver, per image), for the i.i.d. saliency
  (scattered holes) and a smooth one (a 7 x 7 map upsampled, as Grad-CAM's: the removed pixels form
  large holes, the hard case of the solver);
- irof: a grid of ``FAITHBENCH_PERF_PATCH`` px segments (default 56: 16 segments), fed to Quantus
  in place of SLIC so both remove the same segments, zero baseline.

``FAITHBENCH_PERF_DEVICE`` (default cpu) puts the network and the images on that device (Quantus
gets ``device=`` the same and round-trips through NumPy as it does); on a GPU the network
synchronises after each forward, so the forward floor and ``ForwardCounter.seconds`` hold the
kernels' time (``benchmarks/perf/gpu_perf.sh``).
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import torch

from faithbench.metrics import IROF, FaithfulnessCorrelation, ROADMoRF
from faithbench.metrics.base import EvalContext, ForwardCounter
from faithbench.metrics.functional.faithfulness_extra import Scorer, feature_ids

ARCH = os.environ.get("FAITHBENCH_PERF_ARCH", "resnet18")
RUNS = int(os.environ.get("FAITHBENCH_PERF_RUNS", "8"))
PERCENTAGES = [float(p) for p in os.environ.get("FAITHBENCH_PERF_ROAD", "10,50,90").split(",")]
PATCH = int(os.environ.get("FAITHBENCH_PERF_PATCH", "56"))
ROUNDS = int(os.environ.get("FAITHBENCH_PERF_ROUNDS", "3"))
# perturbed images per forward chunk (``max_batch``): on a CPU a large chunk of 224 px images runs
# slower per image than Quantus' batches of B; 4 (= B) makes both batch alike
CHUNK = int(os.environ.get("FAITHBENCH_PERF_CHUNK", "256"))
DEVICE = os.environ.get("FAITHBENCH_PERF_DEVICE", "cpu")
B = 4


@pytest.fixture(scope="module")
def batch(gray):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = gray(timm.create_model(ARCH, pretrained=False, num_classes=10)).eval().to(DEVICE)
    x = torch.rand(B, 1, 224, 224).to(DEVICE)
    saliency = torch.rand(B, 224, 224).to(DEVICE)  # continuous: no ties
    with torch.no_grad():
        target = model(x).argmax(1)
    # warm the allocator and the kernels for every chunk size once, so the first group measured
    # does not pay for it (measured here: without this the first group's forwards, ours and its
    # paired floor alike, ran about 2x slower than later groups')
    warm = ForwardCounter(model)
    for n in sorted({B, _chunk(x), B * RUNS % _chunk(x) or _chunk(x)}):
        warm(x.repeat(n, 1, 1, 1)[:n])
    return model, x, saliency, target


def _smooth(batch):
    """The batch with a Grad-CAM-like saliency: a 7 x 7 random map, bilinear to 224 (no ties)."""
    model, x, _, target = batch
    coarse = torch.rand(B, 1, 7, 7, generator=torch.Generator().manual_seed(1))
    smooth = torch.nn.functional.interpolate(coarse, size=(224, 224), mode="bilinear", align_corners=False)[:, 0]
    smooth = smooth + 1e-6 * torch.rand(smooth.shape, generator=torch.Generator().manual_seed(2))
    return model, x, smooth.to(DEVICE), target


def _ours(benchmark, batch, metric, expected_passes, floor_sizes):
    model, x, saliency, target = batch
    shares: list[float] = []
    floors: list[float] = []
    ours: list[float] = []
    floor = _floor_fn(batch, floor_sizes)

    def setup():  # untimed by pytest-benchmark: the paired floor, just before each round
        start = time.perf_counter()
        floor()
        floors.append(time.perf_counter() - start)

    def run():
        ctx = EvalContext(model=model, x=x, target=target, label=target, saliency=saliency, masks={},
                          predict=ForwardCounter(model, max_batch=CHUNK))
        start = time.perf_counter()
        metric(ctx)
        ours.append(time.perf_counter() - start)
        assert ctx.predict.passes == expected_passes
        shares.append(ctx.predict.seconds / ours[-1])

    benchmark.pedantic(run, setup=setup, rounds=ROUNDS, warmup_rounds=1)
    benchmark.extra_info["forward_share_median"] = round(float(np.median(shares)), 4)
    benchmark.extra_info["paired_floor_ratio"] = round(float(np.median(np.array(ours) / np.array(floors))), 4)


def _floor_fn(batch, sizes):
    model, x, _, _ = batch
    predict = ForwardCounter(model)
    images = x.repeat((max(sizes) + B - 1) // B, 1, 1, 1)[: max(sizes)]
    return lambda: [predict(images[:n]) for n in sizes]


def _floor(benchmark, batch, sizes):
    """The bare forwards: prebuilt images in chunks of ``sizes``."""
    benchmark.pedantic(_floor_fn(batch, sizes), rounds=ROUNDS, warmup_rounds=1)


def _chunks(total: int, size: int) -> list[int]:
    return [min(size, total - s) for s in range(0, total, size)]


def _chunk(x: torch.Tensor) -> int:
    return Scorer(lambda t: t, max_batch=CHUNK).chunk(x)


def _quantus(benchmark, batch, metric, rounds=ROUNDS):
    model, x, saliency, target = batch
    xs, ys, a = x.cpu().numpy(), target.cpu().numpy(), saliency[:, None].cpu().numpy()
    benchmark.pedantic(lambda: metric(model=model, x_batch=xs, y_batch=ys, a_batch=a, device=DEVICE),
                       rounds=rounds, warmup_rounds=1)


# --- faithfulness correlation ------------------------------------------------------------
@pytest.mark.benchmark(group="faithfulness_correlation")
def test_ours_faithfulness_correlation(benchmark, batch):
    _ours(benchmark, batch, FaithfulnessCorrelation(runs=RUNS, subset_size=224, max_batch=CHUNK), B * (RUNS + 1),
          [B] + _chunks(B * RUNS, _chunk(batch[1])))


@pytest.mark.benchmark(group="faithfulness_correlation")
def test_floor_faithfulness_correlation(benchmark, batch):
    _floor(benchmark, batch, [B] + _chunks(B * RUNS, _chunk(batch[1])))


@pytest.mark.benchmark(group="faithfulness_correlation")
def test_quantus_faithfulness_correlation(benchmark, batch):
    quantus = pytest.importorskip("quantus")
    _quantus(benchmark, batch, quantus.FaithfulnessCorrelation(nr_runs=RUNS, subset_size=224, perturb_baseline=0.0,
                                                               normalise=False, abs=False, return_aggregate=False,
                                                               disable_warnings=True))


# --- ROAD (MoRF) -------------------------------------------------------------------------
@pytest.mark.benchmark(group="road")
def test_ours_road(benchmark, batch):
    _ours(benchmark, batch, ROADMoRF(percentages=PERCENTAGES, max_batch=CHUNK), B * len(PERCENTAGES),
          _chunks(B * len(PERCENTAGES), _chunk(batch[1])))


@pytest.mark.benchmark(group="road")
def test_floor_road(benchmark, batch):
    _floor(benchmark, batch, _chunks(B * len(PERCENTAGES), _chunk(batch[1])))


@pytest.mark.benchmark(group="road")
def test_quantus_road(benchmark, batch):
    quantus = pytest.importorskip("quantus")
    _quantus(benchmark, batch, quantus.ROAD(percentages=PERCENTAGES, noise=0.01, normalise=False, abs=False,
                                            return_aggregate=False, disable_warnings=True))


@pytest.mark.benchmark(group="road_smooth")
def test_ours_road_smooth(benchmark, batch):
    _ours(benchmark, _smooth(batch), ROADMoRF(percentages=PERCENTAGES, max_batch=CHUNK), B * len(PERCENTAGES),
          _chunks(B * len(PERCENTAGES), _chunk(batch[1])))


@pytest.mark.benchmark(group="road_smooth")
def test_floor_road_smooth(benchmark, batch):
    _floor(benchmark, batch, _chunks(B * len(PERCENTAGES), _chunk(batch[1])))


@pytest.mark.benchmark(group="road_smooth")
def test_quantus_road_smooth(benchmark, batch):
    quantus = pytest.importorskip("quantus")
    _quantus(benchmark, _smooth(batch), quantus.ROAD(percentages=PERCENTAGES, noise=0.01, normalise=False,
                                                     abs=False, return_aggregate=False, disable_warnings=True))


# --- IROF --------------------------------------------------------------------------------
def _segments() -> int:
    return feature_ids((224, 224), PATCH)[1]


@pytest.mark.benchmark(group="irof")
def test_ours_irof(benchmark, batch):
    _ours(benchmark, batch, IROF(patch=PATCH, baseline="zero", max_batch=CHUNK), B * (_segments() + 1),
          _chunks(B * (_segments() + 1), _chunk(batch[1])))


@pytest.mark.benchmark(group="irof")
def test_floor_irof(benchmark, batch):
    _floor(benchmark, batch, _chunks(B * (_segments() + 1), _chunk(batch[1])))


@pytest.mark.benchmark(group="irof")
def test_quantus_irof(benchmark, batch, monkeypatch):
    quantus = pytest.importorskip("quantus")
    import quantus.metrics.faithfulness.irof as quantus_irof

    ids = feature_ids((224, 224), PATCH)[0].numpy()
    monkeypatch.setattr(quantus_irof.utils, "get_superpixel_segments", lambda img, segmentation_method: ids)
    monkeypatch.setattr(np, "trapz", np.trapezoid, raising=False)  # gone in numpy >= 2.4; Quantus calls it
    _quantus(benchmark, batch, quantus.IROF(perturb_baseline=0.0, normalise=False, abs=False, return_aggregate=False,
                                            disable_warnings=True))
