"""The report's regions (held-out review report13): a regions.csv beside a suite without a regions: block is another
run's and is not shown (D2); the Regions section's tables mark a model at chance with †, as every other table (D3);
region_pairwise.csv's Holm family counts a failed explainer's pairs, as pairwise.csv does (D1)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from faithbench.reports import build_report
from faithbench.stats.paired import holm
from tests.reports.conftest import ALIAS, EXPLAINERS
from tests.stats.test_region_empty_class import _table

BLOCK = {"masks": ["lung", "heart"], "grid": None, "scores": ["share"], "alpha": 0.05, "postprocess": "relu"}


def _regions() -> pd.DataFrame:
    return _table(np.random.default_rng(0), explainers=tuple(EXPLAINERS)).assign(dataset=ALIAS, model="cnn")


def _manifest(run: Path, **entries) -> None:
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["suite"].update(entries.pop("suite", {}))
    manifest.update(entries)
    (run / "manifest.json").write_text(json.dumps(manifest))


def _section(page: str, anchor: str) -> str:
    match = re.search(rf'<section id="{anchor}">(.*?)</section>', page, flags=re.S)
    return match.group(1) if match else ""


def _models_at_chance(run: Path) -> None:
    models = pd.read_csv(run / "models.csv").assign(auc=0.52, auc_ci_low=0.41, auc_ci_high=0.63)
    models.to_csv(run / "models.csv", index=False)


# -- D2: a stray regions.csv -----------------------------------------------------------------------------------------

def test_a_regions_csv_of_another_run_is_ignored_and_stale_region_tables_removed(run, caplog):
    assert "regions" not in json.loads((run / "manifest.json").read_text())["suite"]
    _regions().to_csv(run / "regions.csv", index=False)  # copied from a run whose suite had a regions: block
    for name in ("region_tests.csv", "region_pairwise.csv"):
        (run / name).write_text("stale\n")
    with caplog.at_level(logging.WARNING, logger="faithbench"):
        written = build_report(run, formats="html", progress=False)
    assert not (run / "region_tests.csv").exists() and not (run / "region_pairwise.csv").exists()
    assert not any(p.name.startswith(("region_tests", "region_pairwise", "regions_")) for p in written)
    assert not list((run / "plots").glob("regions_*"))
    page = (run / "index.html").read_text()
    assert _section(page, "regions") == "" and 'href="#regions"' not in page
    warned = [r.getMessage() for r in caplog.records if "regions.csv ignored" in r.getMessage()]
    assert len(warned) == 1 and "has no regions: block" in warned[0]
    assert (run / "regions.csv").exists()  # an input: the report neither reads nor deletes it


def test_a_stray_regions_csv_that_does_not_parse_is_not_read(run):
    (run / "regions.csv").write_bytes(b'dataset,model\n"broken,x\n')
    build_report(run, formats="md", progress=False)  # no "cannot read regions.csv": it is not an input here
    assert not (run / "region_tests.csv").exists()


def test_with_a_regions_block_the_regions_csv_is_read(run):
    _manifest(run, suite={"regions": BLOCK})
    _regions().to_csv(run / "regions.csv", index=False)
    build_report(run, formats="html", progress=False)
    tests = pd.read_csv(run / "region_tests.csv")
    assert len(tests) == 3 * len(EXPLAINERS) and set(tests["region"]) == {"lesion", "lung", "heart"}
    assert "region_tests.csv" in _section((run / "index.html").read_text(), "regions")


# -- D3: † in the Regions section --------------------------------------------------------------------------------

def _rows(section: str, table_after: str) -> list[list[str]]:
    """The body rows (cells as text) of the first table after the text ``table_after``."""
    rest = section[section.index(table_after):]
    body = rest[rest.index("<tbody>"):rest.index("</tbody>")]
    return [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)]


@pytest.mark.parametrize("at_chance", [True, False])
def test_the_region_tables_of_a_model_at_chance_carry_the_dagger(run, at_chance):
    _manifest(run, suite={"regions": BLOCK})
    _regions().to_csv(run / "regions.csv", index=False)
    if at_chance:
        _models_at_chance(run)
    build_report(run, formats="html", progress=False)
    section = _section((run / "index.html").read_text(), "regions")
    tests = _rows(section, "region_tests.csv")
    pairs = _rows(section, "region_pairwise.csv</a>")
    assert len(tests) == 3 * len(EXPLAINERS) and len(pairs) == 6 * 2 * 3  # C(4, 2) pairs, 2 classes, 3 regions
    model = "cnn †" if at_chance else "cnn"
    assert {row[1] for row in tests} == {model} and {row[1] for row in pairs} == {model}
    assert ("† model at chance" in section) == at_chance
    board = pd.read_csv(run / "leaderboard.csv")
    assert board["model_at_chance"].all() == at_chance  # the leaderboard's own verdict, which the † follows
    assert (pd.read_csv(run / "region_tests.csv")["model"] == "cnn").all()  # the CSV keeps the plain name


def test_region_deletion_correlation_rows_of_a_model_at_chance_carry_the_dagger():
    from faithbench.reports.regions import regions_html
    from faithbench.stats.regions import region_class_tests

    board = pd.DataFrame([{"dataset": "d", "model": "m", "metric": "region_deletion_correlation", "explainer": e,
                           "mean": mean, "ci_low": mean - 0.1, "ci_high": mean + 0.1, "n": 16, "chance": -0.8,
                           "p_vs_random": p, "model_at_chance": True}
                          for e, mean, p in (("sobel", 0.575, 4.58e-05), ("random", -0.825, np.nan))])
    tests = region_class_tests(_table(np.random.default_rng(0)))
    page = regions_html(board, tests, None, {("d", "m")})
    rows = _rows(page, "Region deletion correlation")
    assert [row[:3] for row in rows] == [["d", "m †", "sobel"], ["d", "m †", "random"]]
    assert rows[0][-1] == "4.58e-05"  # the p stays, with the legend saying what it is worth
    assert page.count("† model at chance") == 2  # the tests' legend and this table's
    plain = regions_html(board.assign(model_at_chance=False), tests, None, set())
    assert "†" not in plain and [row[1] for row in _rows(plain, "Region deletion correlation")] == ["m", "m"]


# -- D1 end to end: the failed explainer of failures.csv -------------------------------------------------------------

def test_region_pairwise_counts_the_failed_explainer_of_failures_csv(run):
    regions = _regions()
    regions = regions[regions["explainer"] != "weak"]  # failed: no row
    _manifest(run, suite={"regions": BLOCK}, status="partial", failed_cells=1)
    regions.to_csv(run / "regions.csv", index=False)
    pd.DataFrame([{"cell": f"{ALIAS}/cnn/weak/seed0", "dataset": ALIAS, "model": "cnn", "explainer": "weak",
                   "seed": 0, "stage": "explain", "metric": "", "error_type": "RuntimeError", "message": "boom"}]
                 ).to_csv(run / "failures.csv", index=False)
    build_report(run, formats="md", progress=False)
    pairs = pd.read_csv(run / "region_pairwise.csv")
    assert len(pairs) == 3 * 2 * 3  # 3 explainers with rows: 3 pairs per region and class
    raised = 0
    for _, group in pairs.groupby(["region", "samples"]):
        expected = holm(group["p"].to_numpy(), m=6)  # C(4, 2): weak's 3 pairs planned
        np.testing.assert_allclose(group["p_holm"], expected, rtol=0, atol=0)
        raised += int((group["p_holm"] > holm(group["p"].to_numpy())).sum())  # m = 3 without weak
    assert raised > 0


# -- D4: no test, no verdict ------------------------------------------------------------------------------------------

def test_an_untested_region_has_no_significant_verdict(tmp_path):
    """test none (the lesion, empty on negatives; a class of 2 samples) leaves significant empty, not False, as the
    leaderboard's beats_random; tested regions keep True/False."""
    from faithbench.reports.regions import region_tables, regions_html

    regions = _table(np.random.default_rng(0), n_neg=10, n_pos=6)
    few = _table(np.random.default_rng(1), n_neg=4, n_pos=2).assign(model="few")
    inputs = {"regions.csv": pd.concat([regions, few]), "manifest.json": {"suite": {"regions": BLOCK}},
              "failures.csv": None}
    tests, _ = region_tables(tmp_path, inputs, [])
    assert str(tests["significant"].dtype) == "boolean"
    untested = tests["test"] == "none"
    assert untested.sum() == 2 + 3 * 2 and tests.loc[untested, "significant"].isna().all()  # lesion of m; all of few
    assert tests.loc[~untested, "significant"].notna().all()
    assert tests.loc[~untested, "significant"].tolist() == (tests.loc[~untested, "p_bonferroni"] < 0.05).tolist()
    written = pd.read_csv(tmp_path / "region_tests.csv", keep_default_na=False)
    assert (written.loc[written["test"] == "none", "significant"] == "").all()
    assert set(written.loc[written["test"] != "none", "significant"]) <= {"True", "False"}
    page_rows = _rows(regions_html(pd.DataFrame(), tests, None), "region_tests.csv")
    assert {r[10] for r in page_rows if r[5] == "none"} == {"–"}  # the HTML's empty cell
    assert {r[10] for r in page_rows if r[5] != "none"} <= {"True", "False"}
