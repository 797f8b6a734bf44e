import pytest
import torch
from torch import nn

from faithbench.datasets import PhantomCXR
from faithbench.models.reliance import can_intervene, measure_reliance


class RegionDetector(nn.Module):
    """Predicts class 1 from the mean brightness of a fixed corner square only (the marker)."""

    def forward(self, x):
        z = 40 * (x[:, 0, 4:9, 4:9].mean(dim=(1, 2)) - 0.5)
        return torch.stack([-z, z], dim=1)


def test_a_marker_reader_relies_on_the_marker_only():
    ds = PhantomCXR("test", n=60, shortcut=0.9)
    assert can_intervene(ds)
    rows = {r["evidence"]: r for r in measure_reliance(RegionDetector(), ds, n=60)}
    assert rows["marker"]["n"] > 10 and rows["lesion"]["n"] > 10
    # removing the marker flips every marked image; removing the lesion changes nothing
    assert rows["marker"]["flip_rate"] == 1.0 and rows["marker"]["mean_drop"] > 0.9
    assert rows["lesion"]["mean_drop"] == pytest.approx(0.0, abs=1e-6) and rows["lesion"]["flip_rate"] == 0.0
