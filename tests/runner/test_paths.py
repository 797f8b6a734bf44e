"""Labels and names from a suite become file names: they cannot write outside the output folder."""

import uuid
from pathlib import Path

import pandas as pd
import yaml

from faithbench.cli import main

SUITE = {
    "name": "paths",
    "samples": 8,
    "batch_size": 8,
    "datasets": [{"name": "phantom_cxr", "alias": "../../escape_ds", "params": {"n": 32, "size": 32}}],
    "models": [{"name": "small_cnn", "alias": "../../../escape_model", "params": {"width": 4},
                "recipe": {"epochs": 1, "batch_size": 32}}],
    "explainers": [{"name": "random", "alias": "../escape_explainer"}, "sobel"],
    "metrics": [{"name": "deletion_auc", "alias": "../../escape_metric", "params": {"steps": 4}}],
}


def _files(root):
    return {p for p in root.rglob("*") if p.is_file()}


def test_aliases_cannot_escape_the_output_folder(tmp_path):
    absolute = f"/tmp/faithbench_escape_{uuid.uuid4().hex}"
    suite = {**SUITE, "explainers": [*SUITE["explainers"], {"name": "saliency", "alias": absolute}]}
    work = tmp_path / "a" / "b" / "c"
    work.mkdir(parents=True)
    (work / "suite.yaml").write_text(yaml.safe_dump(suite))
    out, cache = work / "out", tmp_path / "cache"
    before = _files(tmp_path)
    assert main(["run", str(work / "suite.yaml"), "--out", str(out), "--cache", str(cache), "--quiet"]) == 0
    new = _files(tmp_path) - before
    assert new and all(out in p.parents or cache in p.parents for p in new), sorted(
        str(p) for p in new if out not in p.parents and cache not in p.parents)
    assert not any(p.name.startswith("faithbench_escape_") for p in Path("/tmp").iterdir())
    # the labels themselves are kept, unchanged, in the tables
    results = pd.read_csv(out / "results.csv")
    assert set(results["explainer"]) == {"../escape_explainer", "sobel", absolute}
    assert set(results["dataset"]) == {"../../escape_ds"} and set(results["metric"]) == {"../../escape_metric"}


def test_a_suite_name_cannot_escape_the_default_output_folder(tmp_path, monkeypatch, capsys):
    work = tmp_path / "x" / "y"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    suite = {**SUITE, "name": "../../escape_suite", "explainers": ["random"]}
    (work / "suite.yaml").write_text(yaml.safe_dump(suite))
    assert main(["run", "suite.yaml", "--cache", str(tmp_path / "cache"), "--quiet"]) == 0
    printed = Path(capsys.readouterr().out.strip())
    assert printed.parent == (work / "reports").resolve() and printed.name == "_.._escape_suite"
    assert (printed / "results.csv").exists()
    assert not (tmp_path / "escape_suite").exists() and not (tmp_path / "x" / "escape_suite").exists()
