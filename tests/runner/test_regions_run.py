"""Region-based saliency end to end: regions.csv from the cell's saliency (no extra forward pass),
region_tests.csv, the heat map and the report section; cached like the scores."""

import pandas as pd
import pytest
import torch

from faithbench.config import SuiteError, suite_from_dict
from faithbench.datasets import PhantomCXR
from faithbench.explainers.controls import SobelExplainer
from faithbench.metrics.functional import region_scores, stack_regions
from faithbench.store import Cache
from faithbench.runner.run import run_suite
from faithbench.stats.regions import CLASS_TEST_COLUMNS

REGIONS = {
    "name": "tiny_regions",
    "samples": 16,
    "batch_size": 8,
    "datasets": [{"name": "phantom_cxr", "params": {"n": 64, "size": 32}}],
    "models": [{"name": "small_cnn", "params": {"width": 8}, "recipe": {"epochs": 1, "batch_size": 32}}],
    "explainers": ["gradcam", "random", {"name": "sobel", "alias": "<i>edge</i>"}],
    "metrics": [{"name": "deletion_auc", "params": {"steps": 4}}],
    "regions": {"masks": ["lung_lesion_side", "lung_contralateral", "heart", "kidney"], "grid": [1, 3]},
}
NAMES = ["lung_lesion_side", "lung_contralateral", "heart", "grid_r0_c0", "grid_r0_c1", "grid_r0_c2"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("regions")
    suite = suite_from_dict(REGIONS)
    first = run_suite(suite, root / "a", cache=Cache(root / "cache"), progress=False, log=lambda m: None)
    second = run_suite(suite, root / "b", cache=Cache(root / "cache"), progress=False, log=lambda m: None)
    return root, first, second


def test_regions_csv_rows_and_values(runs):
    root, first, _ = runs
    regions = pd.read_csv(root / "a" / "regions.csv")
    assert list(regions.columns) == ["dataset", "model", "explainer", "seed", "sample_id", "label", "target",
                                     "region", "mean", "sum", "max", "share", "area"]
    assert len(regions) == 3 * 16 * len(NAMES)
    assert list(dict.fromkeys(regions["region"])) == NAMES
    # the three strips tile the image: their shares sum to 1 for every map with positive mass
    strips = regions[regions["region"].str.startswith("grid_")].groupby(["explainer", "sample_id"])["share"]
    strips = strips.sum(min_count=1)
    assert strips.dropna().to_numpy() == pytest.approx(1.0)
    # sobel ignores the model: recompute a row from the dataset and the explainer by hand
    ds = PhantomCXR("test", n=64, size=32)
    sample = ds[3]
    sal = SobelExplainer(seed=0)(torch.nn.Identity(), sample.image[None], torch.tensor([0]))
    names, masks = stack_regions({k: v[None] for k, v in sample.masks.items()}, NAMES[:3], grid=[1, 3],
                                 batch_shape=tuple(sal.shape))
    expected = region_scores(sal.clamp(min=0), masks)
    got = regions[(regions["explainer"] == "<i>edge</i>") & (regions["sample_id"] == sample.id)].set_index("region")
    for j, name in enumerate(names):
        assert got.loc[name, "share"] == pytest.approx(float(expected["share"][0, j]))
        assert got.loc[name, "max"] == pytest.approx(float(expected["max"][0, j]))
    # a region the dataset lacks is skipped with the reason
    skipped = pd.read_csv(root / "a" / "skipped.csv")
    assert skipped["reason"].str.contains("no mask 'kidney'").sum() == 3
    # no forward pass for regions: the cost table has the explainer and the one metric only
    assert set(pd.read_csv(root / "a" / "cost.csv")["metric"].fillna("")) == {"", "deletion_auc"}


def test_region_tests_plot_and_report(runs):
    root, _, _ = runs
    out = root / "a"
    tests = pd.read_csv(out / "region_tests.csv")
    assert list(tests.columns) == CLASS_TEST_COLUMNS
    assert len(tests) == 3 * len(NAMES) and set(tests["score"]) == {"share"}
    assert set(tests["test"]) <= {"t", "mannwhitney", "none"}
    assert (tests["p_bonferroni"].dropna() >= tests["p"].dropna()).all()
    pairs = pd.read_csv(out / "region_pairwise.csv")
    assert len(pairs) == 3 * len(NAMES) * 2  # 3 explainer pairs x regions x 2 classes
    assert (out / "plots" / "regions_phantom_cxr_small_cnn.png").exists()
    page = (out / "index.html").read_text()
    assert 'id="regions"' in page and "region_tests.csv" in page
    assert "<i>edge</i>" not in page and "&lt;i&gt;edge&lt;/i&gt;" in page


def test_rerun_recomputes_nothing_and_is_identical(runs):
    root, first, second = runs
    assert first.computed["regions"] == 3 * 2  # 3 cells x 2 batches
    assert second.computed.get("regions", 0) == 0 and second.computed["saliency"] == 0
    assert (root / "a" / "regions.csv").read_bytes() == (root / "b" / "regions.csv").read_bytes()
    assert (root / "a" / "region_tests.csv").read_bytes() == (root / "b" / "region_tests.csv").read_bytes()


@pytest.mark.parametrize("regions, message", [
    ({"grid": [0, 3]}, "regions.grid"),
    ({"scores": ["share"]}, "expected 'masks'"),
    ({"masks": ["heart"], "score": "share"}, "unknown key 'score'"),
    ({"masks": ["heart"], "scores": ["median"]}, "regions.scores"),
])
def test_bad_regions_block(regions, message):
    with pytest.raises(SuiteError, match=message):
        suite_from_dict({**REGIONS, "regions": regions})


def test_single_score_is_a_list():
    suite = suite_from_dict({**REGIONS, "regions": {"masks": "all", "scores": "max"}})
    assert suite.regions.scores == ["max"] and suite.regions.masks == "all" and suite.regions.postprocess == "relu"
