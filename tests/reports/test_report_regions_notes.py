"""The report's Regions section (a held-out review, regions5): a region empty in one class says why it has no
test and the run warns; region_deletion_correlation is shown with its chance level; test none is explained."""

import logging
import re

import numpy as np
import pandas as pd

from faithbench.reports.regions import region_tables as _region_tables, regions_html as _regions_html
from faithbench.stats.regions import region_class_tests
from tests.stats.test_region_empty_class import _table


def _board():
    return pd.DataFrame([{"dataset": "d", "model": "m", "metric": "region_deletion_correlation", "explainer": e,
                          "mean": mean, "ci_low": mean - 0.1, "ci_high": mean + 0.1, "n": 16, "chance": -0.8,
                          "p_vs_random": 0.01} for e, mean in (("sobel", 0.625), ("random", -0.825))])


def _cells(page: str, header: str) -> list[str]:
    """The cells of the first row of the table after ``header`` (a heading's text)."""
    table = page[page.index(header):]
    head = re.findall(r"<th[^>]*>(.*?)</th>", table[:table.index("</thead>")])
    row = re.findall(r"<td[^>]*>(.*?)</td>", table[table.index("<tbody>"):table.index("</tr>", table.index("<tbody>"))])
    return list(zip(head, row))


def test_region_deletion_correlation_shows_its_chance_column():
    page = _regions_html(_board(), region_class_tests(_table(np.random.default_rng(0))), None)
    cells = dict(_cells(page, "Region deletion correlation"))
    assert cells["chance"] == "-0.800" and cells["explainer"] == "sobel" and cells["mean"] == "0.625"
    assert "Read the mean against chance, ρ(region area, drop)" in page


def test_a_region_empty_in_a_class_shows_why_it_has_no_test():
    tests = region_class_tests(_table(np.random.default_rng(0)))
    page = _regions_html(_board(), tests, None)
    assert "region empty on every negative sample" in page and "Shapiro–Wilk needs 3" in page
    lesion = tests[tests["region"] == "lesion"]
    assert (lesion["test"] == "none").all() and not lesion["significant"].any()


def test_the_run_warns_of_a_region_empty_in_a_class(tmp_path, caplog):
    inputs = {"regions.csv": _table(np.random.default_rng(0)),
              "manifest.json": {"suite": {"regions": {"scores": ["share", "mean"], "alpha": 0.05}}}}
    written = []
    with caplog.at_level(logging.WARNING, logger="faithbench"):
        tests, _ = _region_tables(tmp_path, inputs, written)
    warned = [r.getMessage() for r in caplog.records if "region_tests.csv" in r.getMessage()]
    assert warned == ["region_tests.csv: region 'lesion' of d / m: region empty on every negative sample: its "
                      "scores there come from the mask, not the map, so no between-class test"]  # once, not per row
    written_tests = pd.read_csv(tmp_path / "region_tests.csv")
    assert written_tests.query("region == 'lesion'")["test"].eq("none").all()
    assert written_tests.query("region == 'lung'")["n_regions"].eq(2).all()
