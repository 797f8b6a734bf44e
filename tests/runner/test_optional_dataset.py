"""An ``optional`` dataset whose data cannot be had is skipped with its reason; others still run."""

import json
import urllib.error

import pandas as pd
import pytest

from faithbench.config import SuiteError, suite_from_dict
from faithbench.store import Cache
from faithbench.runner.run import run_suite


def _suite(root, optional=True, size=28):
    return {
        "name": "optional",
        "samples": 8,
        "batch_size": 8,
        "datasets": [
            {"name": "phantom_cxr", "params": {"n": 64, "size": 32}},
            {"name": "medmnist", "alias": "breast", "optional": optional,
             "params": {"flag": "breastmnist", "size": size, "root": str(root)}},
        ],
        "models": [{"name": "small_cnn", "params": {"width": 4}, "recipe": {"epochs": 1, "batch_size": 32}}],
        "explainers": ["saliency", "random"],
        "metrics": [{"name": "deletion_auc", "params": {"steps": 4}}],
    }


@pytest.fixture
def offline(monkeypatch):
    pytest.importorskip("medmnist")
    import torchvision.datasets.utils as tv_utils

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("no network (test)")

    monkeypatch.setattr(tv_utils, "download_url", refuse)  # never touch the network
    monkeypatch.delenv("FAITHBENCH_OFFLINE", raising=False)  # the download is attempted, and fails


def test_optional_dataset_without_its_data_is_skipped(tmp_path, offline):
    suite = suite_from_dict(_suite(tmp_path))  # tmp_path: a data root without medmnist/
    result = run_suite(suite, tmp_path / "out", cache=Cache(tmp_path / "cache"), progress=False,
                       log=lambda m: None)
    assert result.status == "ok"
    assert set(result.results["dataset"]) == {"phantom_cxr"}
    assert len(result.results) == 2 * 8  # 2 explainers x 8 samples of the dataset that exists
    skipped = pd.read_csv(tmp_path / "out" / "skipped.csv")
    row = skipped[skipped["cell"] == "breast"]
    assert len(row) == 1
    assert "optional dataset not available" in row["reason"].item()
    assert "breastmnist.npz is not in" in row["reason"].item()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert list(manifest["unavailable_datasets"]) == ["breast"]
    # the manifest keeps the suite as written, the skipped dataset included
    assert [d["alias"] for d in manifest["suite"]["datasets"]] == [None, "breast"]


def test_a_required_dataset_without_its_data_is_a_suite_error(tmp_path, offline):
    with pytest.raises(SuiteError, match=r"datasets\[1\]\.params: .*breastmnist\.npz is not in .*download failed"):
        suite_from_dict(_suite(tmp_path, optional=False))


def test_optional_does_not_excuse_wrong_parameters(tmp_path, offline):
    with pytest.raises(SuiteError, match=r"datasets\[1\]\.params: medmnist: expected size in"):
        suite_from_dict(_suite(tmp_path, size=30))


def test_validation_warns_that_an_optional_dataset_is_absent(tmp_path, offline):
    """A held-out walkthrough: validate said ok with no word on the optional dataset the run then skipped."""
    from faithbench.config import SuiteWarning, validate_plugins

    suite = suite_from_dict(_suite(tmp_path))
    with pytest.warns(SuiteWarning, match=r"datasets\[1\] 'breast' is optional and its data is not here, so the run "
                                          r"skips it: medmnist: breastmnist.npz is not in"):
        validate_plugins(suite, "s.yaml")


def test_validate_counts_only_the_cells_the_run_computes(tmp_path, offline, capsys):
    """A walkthrough review: validate counted the cells of an optional dataset it had said the run skips."""
    import yaml

    from faithbench.cli import main

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(_suite(tmp_path)))
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert ("2 datasets x 1 model x 2 explainers x 1 seed = 4 cells, 2 to run (optional 'breast' is skipped, its "
            "data not here: 2 cells), 1 metric") in out  # a review: the product said 4, the total 2


def test_validate_refuses_a_suite_whose_every_dataset_is_optional_and_absent(tmp_path, offline, capsys):
    """A fuzzing review: validate said "ok ... 0 to run" (exit 0), then the run trained nothing and stopped
    with "nothing computed" (exit 2); docs/suites.md promises the refusal where validation can tell."""
    import yaml

    from faithbench.cli import main

    suite = _suite(tmp_path)
    suite["datasets"] = suite["datasets"][1:]
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(suite))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.endswith(f"faithbench: error: {path}: every dataset is optional and its data is not here ('breast'), "
                        "so the run would compute nothing\n"), err
