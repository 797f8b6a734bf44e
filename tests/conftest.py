"""Shared fixtures. Tests never reach a hub (HF_HUB_OFFLINE) or download data (FAITHBENCH_OFFLINE), and
use a private cache."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("FAITHBENCH_OFFLINE", "1")  # a missing data file is an error, never a download
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import faithbench.config  # noqa: E402

faithbench.config.ensure_plugins_loaded()


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAITHBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


class LinearLogit(nn.Module):
    """Two-class model with logits [0, sum(w * x)]: its true attribution is known."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone().float())
        self.arch_family = "cnn"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x * self.w).flatten(1).sum(1)
        return torch.stack([torch.zeros_like(z), z], dim=1)


ONE_ENTRY_SUITE = """name: t
datasets: [{name: phantom_cxr, params: {size: 32, n: 8}}]
models: [{name: small_cnn, params: {width: 4}, recipe: {epochs: 1}}]
explainers: [EXPLAINER]
metrics: [METRIC]
"""


@pytest.fixture
def validate_entry(tmp_path: Path, capsys: pytest.CaptureFixture) -> Callable[..., tuple[int, str, list[str]]]:
    """``validate_entry(metric=..., explainer=...)``: ``faithbench validate`` of a suite of phantom_cxr (32 px,
    8 images), small_cnn and one metric entry (default ``relevance_mass``) and one explainer entry (default
    ``random``), each a YAML flow string; -> (exit code, stderr without its ``faithbench: error: PATH: ``
    prefix, the messages of the warnings raised)."""
    from faithbench.cli import main

    def validate(*, metric: str = "relevance_mass", explainer: str = "random") -> tuple[int, str, list[str]]:
        path = tmp_path / "suite.yaml"
        path.write_text(ONE_ENTRY_SUITE.replace("EXPLAINER", explainer).replace("METRIC", metric))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rc = main(["validate", str(path)])
        err = capsys.readouterr().err.strip().replace(f"faithbench: error: {path}: ", "")
        return rc, err, [str(w.message) for w in caught]

    return validate


@pytest.fixture
def linear_logit() -> type[LinearLogit]:
    return LinearLogit


@pytest.fixture
def real_data() -> Callable[[str], Path]:
    """Real data from the data root; nothing is downloaded.

    ``real_data("medmnist/pneumoniamnist.npz")`` -> the data root, or skip naming the file."""

    def need(*relative: str) -> Path:
        value = os.environ.get("FAITHBENCH_DATA", "")
        if not value:
            pytest.skip("FAITHBENCH_DATA is unset: no real data root (set it to shared/data)")
        root = Path(value)
        for rel in relative:
            if not (root / rel).exists():
                pytest.skip(f"{root / rel} is absent from the data root")
        return root

    return need
