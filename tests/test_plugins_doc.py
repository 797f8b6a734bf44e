"""docs/plugins.md works as written: its four plugin files, its entry points and its suite.

The code blocks are taken from the page itself (one source of truth), written as the package
``my_pkg`` with an installed-distribution record carrying the page's entry points, and found by
faithbench's registries the way a ``pip install`` of the package would be found.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from faithbench import registry
from faithbench.cli import main

PAGE = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", PAGE.read_text(), flags=re.S)


@pytest.fixture
def my_pkg(tmp_path, monkeypatch):
    """The page's package on sys.path, its entry points installed; the registries restored after."""
    pkg = tmp_path / "my_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    files = {}
    for code in blocks("python"):
        name = re.match(r"# my_pkg/(\w+)\.py\n", code).group(1)
        (pkg / f"{name}.py").write_text(code)
        files[name] = code
    assert sorted(files) == ["datasets", "explainers", "metrics", "models"]
    (toml,) = blocks("toml")
    groups = tomllib.loads(toml)["project"]["entry-points"]
    dist = tmp_path / "my_pkg-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my_pkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) + "\n" for group, eps in groups.items()))
    monkeypatch.syspath_prepend(str(tmp_path))
    saved = {}
    for kind in ("explainers", "metrics", "models", "datasets"):
        reg = getattr(registry, kind)
        saved[kind] = (dict(reg._entries), reg._entry_points_loaded)
        monkeypatch.setattr(reg, "_entry_points_loaded", False)
    yield groups
    for kind, (entries, loaded) in saved.items():
        reg = getattr(registry, kind)
        reg._entries.clear()
        reg._entries.update(entries)
        reg._entry_points_loaded = loaded
    for mod in [m for m in sys.modules if m == "my_pkg" or m.startswith("my_pkg.")]:
        del sys.modules[mod]


def test_entry_points_register_the_four_plugins(my_pkg):
    assert {g.split(".")[1] for g in my_pkg} == {"explainers", "metrics", "models", "datasets"}
    assert registry.explainers.origin("grad_x_input") == "entry-point:my_pkg"
    explainer = registry.explainers.get("grad_x_input")(scale=2.0)
    # logits [0, w.x]: d logit_1 / dx = w, so the map is scale * x * w summed over channels
    w = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.stack([torch.zeros(4), w.flatten()]))
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    torch.testing.assert_close(explainer(model, x, torch.tensor([1])), 2.0 * x[:, 0] * w)
    spec = explainer.spec()  # the cache identity: name, version, the shipping package's version, params
    assert {k: spec[k] for k in ("name", "version", "params")} == {"name": "grad_x_input", "version": "1",
                                                                  "params": {"scale": 2.0}}
    assert spec["package"]  # the installed distribution's version (or the module's source hash)

    assert registry.metrics.get("gini_sparseness").info.name == "gini_sparseness"  # imports my_pkg.metrics
    gini = sys.modules["my_pkg.metrics"].gini_sparseness
    one_hot = torch.zeros(1, 4, 4)
    one_hot[0, 1, 2] = 5.0
    assert gini(one_hot).item() == pytest.approx(15 / 16)  # (n - 1) / n
    assert gini(torch.ones(1, 4, 4)).item() == pytest.approx(0.0)
    # [1, 2, 3, 4]: (-3*1 - 1*2 + 1*3 + 3*4) / (4 * 10) = 0.25
    assert gini(torch.tensor([[1.0, 2.0, 3.0, 4.0]])).item() == pytest.approx(0.25)

    model = registry.models.get("tiny_cnn")(1, 2, (16, 16), width=4)
    assert model(torch.zeros(3, 1, 16, 16)).shape == (3, 2)
    data = registry.datasets.get("bright_square")(split="test", n=4, size=16)
    sample = data[1]
    assert sample.label == 1 and sample.masks["square"].sum() == 16
    assert sample.image[0][sample.masks["square"]].min() >= 1.0 > sample.image[0][~sample.masks["square"]].max()
    assert torch.equal(data[1].image, sample.image)  # deterministic


def test_the_page_suite_runs_with_the_plugins(my_pkg, tmp_path):
    (suite_text,) = blocks("yaml")
    suite = tmp_path / "my_plugins.yaml"
    suite.write_text(suite_text)
    out = tmp_path / "out"
    assert main(["run", str(suite), "--out", str(out), "--cache", str(tmp_path / "cache"), "--quiet"]) == 0
    results = pd.read_csv(out / "results.csv")
    assert set(results["explainer"]) == {"grad_x_input", "random"}
    assert set(results["metric"]) == {"gini_sparseness", "pointing_game"}
    mean = results.groupby(["explainer", "metric"])["value"].mean()
    n = yaml.safe_load(suite_text)["samples"]
    assert (results.groupby(["explainer", "metric"]).size() == n).all() and (results["label"] == 1).all()
    assert pd.read_csv(out / "models.csv")["accuracy"].item() > 0.9
    # gradient x input is concentrated on the planted square: sparser than random noise, and it
    # points at the square (chance: 16 / 256 px)
    assert mean["grad_x_input", "gini_sparseness"] > mean["random", "gini_sparseness"]
    assert mean["grad_x_input", "pointing_game"] >= 0.9 > 0.5 > mean["random", "pointing_game"]
    manifest = (out / "manifest.json").read_text()
    assert "entry-point:my_pkg" in manifest


@pytest.fixture
def local_files(tmp_path, monkeypatch):
    """The page's local-file examples (its ``py`` blocks, each named by its first line) in a folder that is
    the working directory and on sys.path; the registries and modules restored after."""
    names = []
    for code in blocks("py"):
        name = re.match(r"# (\w+)\.py", code).group(1)
        (tmp_path / f"{name}.py").write_text(code)
        names.append(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    saved = {kind: dict(getattr(registry, kind)._entries) for kind in ("explainers", "datasets")}
    yield names
    for kind, entries in saved.items():
        getattr(registry, kind)._entries.clear()
        getattr(registry, kind)._entries.update(entries)
    for name in names:
        sys.modules.pop(name, None)


def test_the_local_file_examples_run_as_written(local_files, tmp_path, monkeypatch):
    """A review: the page's local file used @explainers.register without saying where explainers comes from
    (faithbench.registry; faithbench.explainers has no such name), and its multi-label dataset was a fragment."""
    import runpy

    assert local_files == ["my_explainer", "my_script", "two_findings"]
    monkeypatch.setenv("FAITHBENCH_CACHE", str(tmp_path / "cache"))
    (tmp_path / "my_suite.yaml").write_text(yaml.safe_dump({
        "name": "mine", "samples": 4, "batch_size": 4,
        "datasets": [{"name": "phantom_cxr", "params": {"n": 32, "size": 32}}],
        "models": [{"name": "small_cnn", "params": {"width": 4}, "recipe": {"epochs": 1, "batch_size": 32}}],
        "explainers": ["my_saliency", "random"], "metrics": ["sparseness"]}))
    runpy.run_path("my_script.py", run_name="__main__")
    assert registry.explainers.origin("my_saliency") == "module:my_explainer"
    results = pd.read_csv(tmp_path / "reports" / "mine" / "results.csv")
    assert results.groupby("explainer").size().to_dict() == {"my_saliency": 4, "random": 4}
    # |d logit_1 / dx| of a linear model is |w|, the largest over the channels
    w = torch.tensor([[[1.0, -2.0], [0.5, 3.0]], [[-4.0, 0.0], [0.25, -1.0]]])
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(8, 2, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.stack([torch.zeros(8), w.flatten()]))
    explainer = registry.explainers.get("my_saliency")()
    saliency = explainer(model, torch.rand(3, 2, 2, 2), torch.tensor([1, 1, 1]))
    torch.testing.assert_close(saliency, torch.tensor([[4.0, 2.0], [0.5, 3.0]]).expand(3, 2, 2))

    import importlib

    from faithbench.datasets.base import check_samples

    importlib.import_module("two_findings")  # registers the multi-label dataset

    data = registry.datasets.get("two_findings")(split="test", n=8, size=16)
    samples = [data[i] for i in range(len(data))]
    check_samples(samples, data, "two_findings")  # the checks a run makes: ids, shapes, 0/1 labels over 2 classes
    assert [s.labels.tolist() for s in samples[:4]] == [[0, 0], [1, 0], [0, 1], [1, 1]]
    assert [s.label for s in samples[:4]] == [0, 0, 1, 0]  # the first positive class, 0 when none
    for s in samples:
        for k, name in enumerate(data.classes):
            assert int(s.masks[name].sum()) == 9 * int(s.labels[k])
    nodule = samples[1].image[0][samples[1].masks["nodule"]]
    assert nodule.min() >= 0.9 - 1e-6  # 0.5 + noise + 0.4
