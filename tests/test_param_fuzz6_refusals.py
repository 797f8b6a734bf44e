"""A fuzzing review (paramfuzz6): values validate accepted and the run could not use. An int beyond int64 failed
every cell with OverflowError (F1); a float beyond float32's largest made NaN maps or failed (F5); ``steps`` of 1e12
asked for terabytes (F3); ``visit_pointing_game``'s tolerance had no upper bound (F2); ``rise``'s
``p`` 1e-12 and ``center_prior``'s ``sigma`` 1e-12 / 1e12 made constant maps (F4); a ``regions:`` block whose only
mask no dataset has gave empty tables (F6). Each is now refused by ``faithbench validate`` in one line."""

from __future__ import annotations

import pytest

import faithbench
from faithbench.cli import main

BIG = 2 ** 64


@pytest.mark.parametrize("metric, explainer, expected", [
    (f"{{name: deletion_auc, params: {{steps: {BIG}}}}}", "random", "metrics[0].params: deletion_auc: parameter "
     f"'steps' expects integers within int64 (-2**63 <= x < 2**63), got {BIG}"),
    (f"{{name: max_sensitivity, params: {{radius: {BIG}}}}}", "random", "metrics[0].params: max_sensitivity: "
     f"parameter 'radius' expects integers within int64 (-2**63 <= x < 2**63), got {BIG}"),
    (f"{{name: faithfulness_correlation, params: {{runs: {-BIG}}}}}", "random", "metrics[0].params: "
     "faithfulness_correlation: parameter 'runs' expects integers within int64"),
    ("relevance_mass", f"{{name: lrp, params: {{epsilon: {BIG}}}}}", "explainers[0].params: lrp: parameter "
     f"'epsilon' expects integers within int64 (-2**63 <= x < 2**63), got {BIG}"),
    ("relevance_mass", "{name: occlusion, params: {baseline: 1.0e+300}}", "explainers[0].params: occlusion: "
     "parameter 'baseline' expects numbers within float32's range (0 or 1.175494e-38 <= |x| <= 3.402823e+38), "
     "got 1e+300"),
    # a diff review: below float32's smallest normal a width is 0 in float32 (lime: sklearn's raw NaN weights)
    ("relevance_mass", "{name: lime, params: {kernel_width: 1.0e-300}}", "explainers[0].params: lime: parameter "
     "'kernel_width' expects numbers within float32's range (0 or 1.175494e-38 <= |x| <= 3.402823e+38), got 1e-300"),
    ("relevance_mass", "{name: gradient_shap, params: {noise_level: 1.0e+39}}", "explainers[0].params: "
     "gradient_shap: parameter 'noise_level' expects numbers within float32's range"),
    ("relevance_mass", "{name: lime, params: {alpha: -1.0e+300}}", "explainers[0].params: lime: parameter 'alpha' "
     "expects numbers within float32's range"),
    ("{name: deletion_auc, params: {steps: 1000000000000}}", "random", "metrics[0].params: deletion_auc: parameter "
     "'steps' = 1000000000000 is more than the 1024 pixels of the 32 x 32 images: beyond one step per pixel a step "
     "only repeats an image; expected steps <= 1024"),
    ("{name: insertion_auc, params: {steps: 1025}}", "random", "metrics[0].params: insertion_auc: parameter 'steps' "
     "= 1025 is more than the 1024 pixels"),
    ("{name: abpc, params: {steps: 1025}}", "random", "metrics[0].params: abpc: parameter 'steps' = 1025 is more"),
    ("relevance_mass", "{name: rise, params: {p: 1.0e-12}}", "explainers[0].params: rise: parameter 'p' must be in "
     "[5.9604645e-08, 0.99999994]"),
    ("relevance_mass", "{name: rise, params: {p: 0.999999999}}", "explainers[0].params: rise: parameter 'p' must be "
     "in [5.9604645e-08, 0.99999994]"),
    ("relevance_mass", "{name: center_prior, params: {sigma: 1.0e-12}}", "explainers[0].params: "
     "center_prior: parameter 'sigma' = 1e-12 makes the prior 0 (it underflows) at every pixel of the 32 x 32 "
     "input in float32: a constant map; expected a larger sigma (default 0.25)"),
    ("relevance_mass", "{name: center_prior, params: {sigma: 1.0e+12}}", "explainers[0].params: "
     "center_prior: parameter 'sigma' = 1e+12 makes the prior 1 at every pixel of the 32 x 32 input in float32: a "
     "constant map; expected a smaller sigma (default 0.25)"),
])
def test_refused_at_validate_in_one_line(validate_entry, metric, explainer, expected):
    rc, err, _ = validate_entry(metric=metric, explainer=explainer)
    assert (rc, err.count("\n")) == (2, 0) and err.startswith(expected), err


@pytest.mark.parametrize("metric, explainer", [
    ("{name: deletion_auc, params: {steps: 1024}}", "random"),  # one step per pixel: the bound itself
    ("{name: max_sensitivity, params: {draws_per_call: 9223372036854775807}}", "random"),  # 2**63 - 1: int64
    ("relevance_mass", "{name: occlusion, params: {baseline: 3.0e+38}}"),
    ("relevance_mass", "{name: rise, params: {p: 0.001}}"),
    ("relevance_mass", "{name: center_prior, params: {sigma: 0.02}}"),
    ("relevance_mass", "{name: center_prior, params: {sigma: 1000}}"),
])
def test_the_bounds_themselves_validate(validate_entry, metric, explainer):
    rc, err, _ = validate_entry(metric=metric, explainer=explainer)
    assert rc == 0, err


def test_the_center_prior_bound_is_where_the_float32_map_becomes_constant():
    """Just inside each bound the map still varies; just outside it is constant (0 or 1 everywhere)."""
    from faithbench.explainers.controls import center_gaussian

    prior = faithbench.create_explainer("center_prior", sigma=0.02)
    assert prior.check_input((1, 32, 32)) is None and center_gaussian((32, 32), 0.02).max() > 0
    assert faithbench.create_explainer("center_prior", sigma=0.001).check_input((1, 32, 32)) is not None
    assert float(center_gaussian((32, 32), 0.001).max()) == 0.0  # even sides: no pixel at the centre
    assert float(center_gaussian((31, 31), 0.001).max()) == 1.0  # odd: the centre pixel, not constant
    assert faithbench.create_explainer("center_prior", sigma=0.001).check_input((1, 31, 31)) is None


LONGITUDINAL = """name: t
datasets: [{name: phantom_longitudinal, params: {size: 32, n: 8}}]
models: [{name: temporal_mlp, params: {backbone: small_cnn}, recipe: {epochs: 1}}]
explainers: [random]
metrics: [{name: visit_pointing_game, params: {tolerance: TOL}}]
"""

REGIONS = """name: t
datasets: [{name: phantom_cxr, params: {size: 32, n: 8}}]
models: [{name: small_cnn, params: {width: 4}, recipe: {epochs: 1}}]
explainers: [random]
metrics: [relevance_mass]
regions: REGIONS
"""


def _validate(tmp_path, capsys, text: str) -> tuple[int, str]:
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    rc = main(["validate", str(path)])
    return rc, capsys.readouterr().err.strip().replace(f"faithbench: error: {path}: ", "")


@pytest.mark.parametrize("tolerance, refused", [(1000000000000, True), (44, True), (43, False), (1, False)])
def test_visit_pointing_game_tolerance_has_pointing_games_bound(tmp_path, capsys, tolerance, refused):
    """Per visit of 32 x 32 pixels: the largest distance is 31 sqrt(2) = 43.84, as pointing_game's on 32 x 32."""
    rc, err = _validate(tmp_path, capsys, LONGITUDINAL.replace("TOL", str(tolerance)))
    if refused:
        assert rc == 2 and err.startswith(f"metrics[0].params: visit_pointing_game: parameter 'tolerance' = "
                                          f"{tolerance:g} is above 43.84, the largest distance between two pixels of "
                                          "the 32 x 32 images"), err
        assert err.endswith("expected tolerance <= 43 (dataset 'phantom_longitudinal')"), err
    else:
        assert rc == 0, err


@pytest.mark.parametrize("regions, expected", [
    ("{masks: [bogus]}", 2),
    ("{masks: [bogus, lesoin]}", 2),
    ("{masks: [bogus, lesion]}", 0),  # lesion is left: the warning names bogus
    ("{masks: [bogus], grid: [2, 2]}", 0),  # the grid is left
])
def test_a_regions_block_with_nothing_left_is_refused(tmp_path, capsys, regions, expected):
    rc, err = _validate(tmp_path, capsys, REGIONS.replace("REGIONS", regions))
    assert rc == expected, err
    if expected == 2:
        assert err.count("\n") == 0 and err.startswith("regions.masks: no dataset has any of bogus"), err
        assert "so nothing would be left for the block; their masks: " in err and "lesion" in err, err


@pytest.mark.parametrize("sigma", [0.05, 0.25, 4.0])
def test_center_prior_on_a_2_by_2_input_says_no_sigma_helps(sigma):
    """A diff review: on 2 x 2 the prior is e^-1-like at every pixel for every sigma; the message said '1' and
    asked for a smaller sigma."""
    reason = faithbench.create_explainer("center_prior", sigma=sigma).check_input((1, 2, 2))
    assert reason == ("center_prior: the 2 x 2 input has every pixel as far from its centre, so the prior is constant "
                      "whatever sigma; expected an input with a centre pixel or more than 2 per side")
