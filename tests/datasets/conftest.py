"""Fixtures for loaders of real data: tests that need a file skip with the reason when the data
root (``$FAITHBENCH_DATA``, e.g. shared/data) is unset or lacks it. Nothing is downloaded."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def real_data() -> Callable[[str], Path]:
    """``real_data("medmnist/pneumoniamnist.npz")`` -> the data root, or skip naming the file."""

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
