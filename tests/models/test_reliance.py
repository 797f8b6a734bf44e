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


def test_reliance_is_measured_on_the_samples_the_run_explains():
    """With ``subset: positive`` the run explains the first n positive samples; reliance.csv used
    the first n of the split (negatives included) until a review noted it."""
    from faithbench.models.reliance import explained_indices

    ds = PhantomCXR("test", n=60, shortcut=0.9)
    positives = [i for i in range(60) if ds[i].label != 0]
    assert explained_indices(ds, 10) == list(range(10))
    assert explained_indices(ds, 10, "positive") == positives[:10] and positives[9] > 9  # beyond the first 10
    assert explained_indices(ds, 1000, "positive") == positives  # fewer when the split has fewer
    lesion = lambda idx: sum(bool(ds[i].masks["lesion"].any()) for i in idx)  # noqa: E731
    for subset, idx in (("all", range(10)), ("positive", positives[:10])):
        rows = {r["evidence"]: r for r in measure_reliance(RegionDetector(), ds, n=10, subset=subset)}
        assert rows["lesion"]["n"] == lesion(idx), subset
    assert lesion(positives[:10]) == 10 and lesion(range(10)) < 10  # every positive phantom has its lesion
