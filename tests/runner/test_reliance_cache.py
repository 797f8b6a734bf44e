"""The reliance rows (the model's drop without its planted evidence) come from the cache on a rerun
(a scale review: a fully cached rerun of 16 volumes of 64^3 recomputed them, 28 s, more than its cells)."""

import pandas as pd
import pytest
import torch

import faithbench
from faithbench.runner import group as group_module
from faithbench.store import Cache


def test_a_rerun_reads_the_reliance_rows_from_the_cache(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = faithbench.create_model("small_cnn", in_chans=1, num_classes=2, input_size=(32, 32), width=4)
    weights = tmp_path / "w.pt"
    torch.save(model.state_dict(), weights)
    suite = faithbench.load_suite({
        "name": "rel", "samples": 6, "batch_size": 4, "reliability": 0,
        "datasets": [{"name": "phantom_cxr", "params": {"n": 16, "size": 32}}],
        "models": [{"name": "small_cnn", "params": {"width": 4}, "weights": str(weights)}],
        "explainers": ["saliency"], "metrics": ["pointing_game"]})
    kw = {"cache": Cache(tmp_path / "c"), "progress": False, "log": lambda m: None, "report": False}
    faithbench.run(suite, out_dir=tmp_path / "a", **kw)
    first = pd.read_csv(tmp_path / "a" / "reliance.csv")
    assert len(first) and first["n"].sum() > 0

    def not_again(*args, **kwargs):
        raise AssertionError("sample_drops ran again on a cached rerun")

    monkeypatch.setattr(group_module, "sample_drops", not_again)
    faithbench.run(suite, out_dir=tmp_path / "b", **kw)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "b" / "reliance.csv"), first)
    with pytest.raises(AssertionError, match="ran again"):  # another sample count is another key
        faithbench.run(faithbench.load_suite({**suite.model_dump(exclude_unset=True), "samples": 5}),
                       out_dir=tmp_path / "c", **kw)
