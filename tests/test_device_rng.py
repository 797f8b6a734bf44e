"""The caller's CUDA generators around a run and an explainer's call, checked without a GPU: torch.cuda's
state functions are replaced by recorders (review gpuread F3)."""

import pytest
import torch

import faithbench
from faithbench.device import caller_rng


class FakeCuda:
    """Records which CUDA generators were read, set and seeded; ``initialized``: whether CUDA has started."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, initialized: bool, count: int = 2) -> None:
        self.read: list[int] = []
        self.restored: list[int] = []
        self.seeded_all: list[int] = []
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "is_initialized", lambda: initialized)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
        monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device="cuda": self.read.append(int(device))
                            or torch.zeros(8, dtype=torch.uint8))
        monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device="cuda": self.restored.append(int(device)))
        monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: self.seeded_all.append(int(seed)))


def test_a_cuda_run_restores_the_cuda_generators_though_cuda_was_not_started(monkeypatch):
    """A fresh notebook: CUDA not initialised before the run, which starts and reseeds it."""
    cuda = FakeCuda(monkeypatch, initialized=False)
    with caller_rng("cuda"):
        pass
    assert (cuda.read, cuda.restored) == ([0, 1], [0, 1])
    with caller_rng("cuda:1"):
        pass
    assert cuda.restored == [0, 1, 0, 1]


def test_a_cpu_run_leaves_an_unstarted_cuda_alone(monkeypatch):
    cuda = FakeCuda(monkeypatch, initialized=False)
    before = torch.get_rng_state()
    with caller_rng("cpu"):
        torch.manual_seed(123)  # the run reseeds: the CPU's generator is restored
    assert (cuda.read, cuda.restored) == ([], [])
    assert torch.equal(torch.get_rng_state(), before)


def test_a_started_cuda_is_restored_whatever_the_run_device(monkeypatch):
    cuda = FakeCuda(monkeypatch, initialized=True, count=3)
    with caller_rng("cpu"):
        pass
    assert cuda.restored == [0, 1, 2]


def _model():
    torch.manual_seed(0)
    return faithbench.create_model("small_cnn", in_chans=1, num_classes=2, input_size=(16, 16), width=4).eval()


def test_an_explainer_restores_every_cuda_generator_it_seeds(monkeypatch):
    """reseed() seeds every GPU (torch.manual_seed); the call restored only x's device's, none for x on
    the CPU, so an explainer called on the CPU of a GPU machine left each GPU's stream at its seed."""
    model, x = _model(), torch.rand(2, 1, 16, 16)
    cuda = FakeCuda(monkeypatch, initialized=True)
    faithbench.create_explainer("saliency", seed=5)(model, x, torch.tensor([0, 1]))
    assert cuda.seeded_all and set(cuda.seeded_all) == {5}  # seeded: so each must be restored
    assert cuda.restored == [0, 1]


def test_an_explainer_queues_no_cuda_seed_before_cuda_starts(monkeypatch):
    """torch.manual_seed before CUDA starts queues a seed for every GPU that runs at CUDA's start, after the
    call: the notebook's own queued seed would be replaced by the explainer's."""
    model, x = _model(), torch.rand(2, 1, 16, 16)
    cuda = FakeCuda(monkeypatch, initialized=False)
    before = torch.get_rng_state()
    faithbench.create_explainer("saliency", seed=5)(model, x, torch.tensor([0, 1]))
    assert cuda.seeded_all == [] and cuda.restored == []
    assert torch.equal(torch.get_rng_state(), before)  # the CPU's is seeded and restored as before
