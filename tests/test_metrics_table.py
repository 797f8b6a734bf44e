"""The metric table of the README and of docs/metrics.md: the same rows, every registered metric
named once, with the registry's category and direction."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from faithbench import config
from faithbench.registry import metrics

ROOT = Path(__file__).resolve().parent.parent


def table(path: Path) -> list[list[str]]:
    """The rows of the page's table whose header starts ``| name | category``, as cells."""
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| name | category"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def test_readme_and_docs_hold_the_same_table():
    # the same rows; the README's links into docs/ start with docs/ (they resolve from the root)
    readme = [[re.sub(r"\]\(docs/", "](", cell) for cell in row] for row in table(ROOT / "README.md")]
    assert readme == [list(row) for row in table(ROOT / "docs" / "metrics.md")]
    assert not re.search(r"\]\((?!docs/|https?:|#)[\w./-]+\.md", (ROOT / "README.md").read_text()), \
        "a README link into docs/ without the docs/ prefix"


@pytest.mark.parametrize("page", ["README.md", "docs/metrics.md"])
def test_every_metric_is_in_the_table_with_its_category_and_direction(page):
    config.ensure_plugins_loaded()
    seen: dict[str, tuple[str, str]] = {}
    for name_cell, category, direction, defaults, paper in table(ROOT / page):
        assert defaults and paper, f"{name_cell}: empty defaults or paper"
        for name in re.findall(r"`(\w+)`", name_cell):
            assert name not in seen, f"{name} is named twice"
            seen[name] = (category, direction)
    registered = {name: metrics.get(name).info for name in metrics.names()}
    assert sorted(seen) == sorted(registered)
    for name, info in registered.items():
        assert seen[name] == (info.category.value, "↑" if info.higher_is_better else "↓"), name


def test_the_metrics_suite_runs_every_metric_that_applies_to_single_label_2d_images():
    from faithbench.registry import datasets

    config.ensure_plugins_loaded()
    suite = config.load_suite("metrics")
    assert suite.regions is not None  # the `regions` metric, which runs through the suite's regions: block
    listed = {spec.name for spec in suite.metrics} | {"regions"}
    data = datasets.get("phantom_cxr")("test", n=8)
    masks, shape = set(data[0].masks), tuple(data.spatial_shape)
    applies = {"regions"}
    for name in set(metrics.names()) - {"regions"}:
        metric = metrics.get(name)()
        if metric.applicability(masks, len(shape))[0] is None and metric.check_dataset(shape) is None:
            applies.add(name)
    # class_sensitivity's default (others: positive) needs multi-label data; others: all does not
    assert metrics.get("class_sensitivity")(others="all").check_dataset(shape) is None
    assert "class_sensitivity" not in applies and "others: all" in _entry(suite, "class_sensitivity")
    applies.add("class_sensitivity")
    assert listed == applies, (sorted(applies - listed), sorted(listed - applies))
    assert len(applies) == 53 and "temporal_deletion" not in applies


def _entry(suite, name: str) -> str:
    spec = next(spec for spec in suite.metrics if spec.name == name)
    return ", ".join(f"{k}: {v}" for k, v in spec.params.items())
