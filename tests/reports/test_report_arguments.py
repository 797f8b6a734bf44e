"""``build_report`` checks its arguments as ``faithbench.run`` does: a TypeError or ValueError naming the
parameter, before it writes anything (a held-out review: ``control=3`` and a control absent from the run were
taken silently, dropping every significance test; ``progress="no"`` drew the bars; ``formats="md"`` was read as
``['m', 'd']``; ``build_report(42)`` said "expected str, bytes or os.PathLike object, not int")."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import faithbench
from faithbench.reports import build_report
from tests.reports.conftest import folder_files


@pytest.mark.parametrize("kwargs, error, message", [
    ({"out_dir": 42}, TypeError, "build_report: out_dir expects a run's folder (a str or a path), got int"),
    ({"control": 3}, TypeError, "build_report: control expects the label of one of the run's explainers (a str "
                                "such as 'random') or None for the run's own, got int"),
    ({"control": " "}, ValueError, "build_report: control: expected the label of one of the run's explainers, got "
                                   "an empty string"),
    ({"progress": "no"}, TypeError, "build_report: progress expects True or False, got str"),
    ({"formats": 3}, TypeError, "build_report: formats expects one of 'html', 'md', 'latex' or a list of them, got "
                                "int"),
    ({"formats": "pdf"}, ValueError, "build_report: formats: expected report formats among ['html', 'md', 'latex'], "
                                     "got ['pdf']"),
    ({"control": "randon"}, ValueError, "build_report: control 'randon' is no explainer of this run, so no explainer "
                                        "could be tested against it; did you mean 'random'? its explainers: "),
    ({"control": "sobel"}, ValueError, "build_report: control 'sobel' is no explainer of this run"),
])
def test_a_wrong_argument_is_refused_naming_the_parameter_before_anything_is_written(run, kwargs, error, message):
    before = folder_files(run)
    with pytest.raises(error, match=f"^{re.escape(message)}") as caught:
        build_report(**{"out_dir": run, **kwargs})
    assert "\n" not in str(caught.value) and folder_files(run) == before
    if kwargs.get("control") == "sobel":  # the explainers the run has, to pick from
        assert str(caught.value).endswith("its explainers: <script>alert(1)</script>, good, random, weak")


def test_formats_may_be_one_format_as_a_str(run):
    written = {p.name for p in build_report(run, formats="md", progress=False)}
    assert "leaderboard.md" in written and not {"index.html", "leaderboard.tex"} & written


def test_a_control_of_the_run_is_tested_against(run, names):
    build_report(run, control="good", formats=["md"], progress=np.True_)
    board = pd.read_csv(run / "leaderboard.csv")
    p = board[board["metric"] == names["up"]].set_index("explainer")["p_vs_random"]
    assert np.isnan(p["good"]) and p.drop("good").notna().all()  # every other explainer tested against "good"
    assert faithbench.build_report is build_report
