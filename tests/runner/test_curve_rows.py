"""A sample's curve reaches curves.parquet also where its value is undefined but some step is defined (a held-out
review: resnet18_3d's Grad-CAM MPRT curve of one volume had six defined steps, -0.517 ... -0.072, then NaN, and none
reached the file or the sanity plot, whose step-1 mean moved from -0.419 to -0.371)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch

from faithbench.runner.cell import CellResult, _append_rows


def _rows(values: list[float], curves: list[list[float]]) -> CellResult:
    cell = SimpleNamespace(dataset=SimpleNamespace(label="d"), model=SimpleNamespace(label="m"),
                           explainer=SimpleNamespace(label="gradcam"), seed=0)
    metric = SimpleNamespace(higher_is_better=False, category="randomisation")
    batch = SimpleNamespace(ids=[f"s{i}" for i in range(len(values))], label=torch.zeros(len(values), dtype=int))
    payload = {"value": values, "chance": None, "curve": curves, "fractions": [0.0, 0.5, 1.0]}
    result = CellResult(cell=cell)
    added = _append_rows(result, cell, SimpleNamespace(label="mprt_cascading"), metric, batch,
                         torch.zeros(len(values), dtype=int), payload)
    assert added == len(result.rows)
    return result


def test_an_undefined_value_keeps_its_curve_where_a_step_is_defined():
    nan = math.nan
    result = _rows([0.2, nan, nan], [[0.9, 0.5, 0.2], [-0.517, -0.072, nan], [nan, nan, nan]])
    assert [r["sample_id"] for r in result.rows] == ["s0"]  # a value only where it is defined
    points = {(p["sample_id"], p["step"]): p["score"] for p in result.curves}
    assert points[("s1", 0)] == -0.517 and points[("s1", 1)] == -0.072 and math.isnan(points[("s1", 2)])
    assert sorted({s for s, _ in points}) == ["s0", "s1"]  # an all-undefined curve adds nothing
    assert [points[("s0", k)] for k in range(3)] == [0.9, 0.5, 0.2]
