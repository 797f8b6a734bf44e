"""Samples stream through the runner: peak memory does not grow with the number of samples."""

import re
from pathlib import Path

import pytest
import torch

from faithbench.config import suite_from_dict
from faithbench.datasets.base import BaseDataset
from faithbench.registry import datasets
from faithbench.store import Cache
from faithbench.runner.run import run_suite
from faithbench.types import Sample

SIDE = 32  # one volume: 1 x 32^3 float32 = 128 KiB, its mask 32 KiB


class Volumes(BaseDataset):
    """Cheap deterministic 3D volumes with a bright cube as the lesion (a dataset-like input)."""

    classes = ("normal", "lesion")
    spatial_dims = 3

    def __init__(self, split="test", *, n_train: int = 16, n_test: int = 400):
        super().__init__(split, n_train=n_train, n_test=n_test)
        self.n = n_test if split == "test" else n_train

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        gen = torch.Generator().manual_seed(hash(self.split) % 1000 * 100_000 + i)
        image = torch.rand((1, SIDE, SIDE, SIDE), generator=gen) * 0.2
        mask = torch.zeros((SIDE, SIDE, SIDE), dtype=torch.bool)
        label = i % 2
        if label:
            z, y, x = (int(v) for v in torch.randint(0, SIDE - 8, (3,), generator=gen))
            mask[z:z + 8, y:y + 8, x:x + 8] = True
            image[0][mask] += 0.8
        return Sample(f"{self.split}-{i:04d}", image, label, {"lesion": mask})


def _rss_kib(field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: VmHWM := VmRSS
    except OSError:
        return False
    return True


@pytest.fixture
def volumes():
    datasets.register("test_volumes")(Volumes)
    try:
        yield
    finally:
        datasets.unregister("test_volumes")


def suite(samples: int):
    return suite_from_dict({
        "name": f"stream{samples}",
        "samples": samples,
        "batch_size": 10,
        "target": "label",
        "datasets": ["test_volumes"],
        "models": [{"name": "small_cnn", "params": {"width": 4}, "recipe": {"epochs": 1, "batch_size": 16}}],
        "explainers": ["random", "sobel"],
        "metrics": ["pointing_game", "relevance_mass"],
    })


def test_peak_memory_does_not_grow_with_samples(tmp_path, volumes):
    if not Path("/proc/self/status").exists() or not _reset_peak():
        pytest.skip("needs Linux /proc/self/clear_refs to measure the peak resident memory")
    cache = Cache(tmp_path / "cache")
    # warm-up: trains and evaluates the checkpoint (cached), imports and initialises everything
    run_suite(suite(2), tmp_path / "warm", cache=cache, progress=False, log=lambda m: None)
    peaks = {}
    for samples in (50, 400):
        _reset_peak()
        start = _rss_kib("VmRSS")
        # the cells only: plots of the report grow with the rows they draw, by design
        result = run_suite(suite(samples), tmp_path / f"out{samples}", cache=cache, progress=False,
                           log=lambda m: None, report=False)
        peaks[samples] = _rss_kib("VmHWM") - start
        assert len(result.results.query("metric == 'pointing_game'")) == samples  # the positives, both explainers
    # 400 volumes held at once would add up to 64 MiB (images and masks; measured: +20 MiB over 50
    # samples, the allocator reusing freed memory); streaming holds one batch (measured: +0 MiB).
    # The slack absorbs allocator noise when the peaks are a few MiB.
    # Since the runner renovation (run_group) two CI runs under heavy load saw the 400-sample peak at
    # +9 to +20 MiB over a +2 to +6 MiB 50-sample peak; reruns on a quieter machine measured
    # {50: +8.4, 400: +11.0} MiB twice, and {50: +36.5, 400: +40.3} with glibc's mmap threshold
    # pinned (MALLOC_MMAP_THRESHOLD_=65536): the growth follows the allocator, not the samples. The
    # slack is 16 MiB: still far below the +64 MiB of 400 volumes held at once.
    assert peaks[400] <= 1.5 * peaks[50] + 16 * 1024, peaks
