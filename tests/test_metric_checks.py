"""Validation checks each metric against the datasets and models it runs on (faithbench.metric_checks):
a limit that depends on the image size or the network is an error of `faithbench validate` naming the
file, metrics[i] and the parameter; a metric that cannot apply to a dataset warns and the run skips it."""

from __future__ import annotations

import textwrap
import warnings

import pytest
from torch import nn

from faithbench.config import SuiteError, SuiteWarning, load_suite, suite_from_dict
from faithbench.configurable import ParameterError
from faithbench.metrics.base import Metric
from faithbench.registry import metrics

# phantom_cxr at size 32: 32 x 32 = 1024 features, width W = 32 (continuity: at most 2W + 1 = 65 steps)
BASE = """name: t
datasets: [{name: phantom_cxr, params: {size: 32, n: 8}}]
models: [{name: small_cnn, params: {width: 4}, recipe: {epochs: 1}}]
explainers: [random]
metrics: [METRIC]
"""


def _load(tmp_path, metric):
    path = tmp_path / "suite.yaml"
    path.write_text(BASE.replace("METRIC", metric))
    return load_suite(path)


@pytest.mark.parametrize("metric, expected", [
    ("{name: top_k_intersection, params: {k: 100000000}}",
     r"suite.yaml: metrics\[0\].params: top_k_intersection: k = 100000000 is more than the 1024 features per "
     r"sample \(32 x 32\).*\(dataset 'phantom_cxr'\)$"),
    ("{name: faithfulness_correlation, params: {subset_size: 100000}}",
     r"suite.yaml: metrics\[0\].params: faithfulness_correlation: parameter 'subset_size' = 100000 is not below "
     r"the 1024 features"),
    ("{name: faithfulness_correlation, params: {subset_size: 1024}}",
     r"metrics\[0\].params: faithfulness_correlation: parameter 'subset_size' = 1024 is not below"),
    ("{name: continuity, params: {steps: 100}}",
     r"suite.yaml: metrics\[0\].params: continuity: parameter 'steps' = 100 is more than the 2W \+ 1 = 65 "
     r"shifts of the image width W = 32"),
    ("{name: sensitivity_n, params: {patch: 16, fractions: [0.9]}}",
     r"suite.yaml: metrics\[0\].params: sensitivity_n: fraction 0.9 of the 4 whole features \(patch 16 on 32 x 32\)"),
    ("{name: relative_representation_stability, params: {layer: nosuchlayer}}",
     r"suite.yaml: metrics\[0\].params: relative_representation_stability: parameter 'layer' = 'nosuchlayer' is "
     r"not a module of the model; its top-level modules: features, .*\(model 'small_cnn', dataset 'phantom_cxr'\)$"),
    ("{name: relative_representation_stability, params: {layer: 3}}",
     r"suite.yaml: metrics\[0\].params: relative_representation_stability: parameter 'layer' expects a module "
     r"name \(str\) or null, got int 3"),
    ("class_sensitivity",
     r"suite.yaml: metrics\[0\].params: class_sensitivity: parameter 'others' is 'positive' .* single-label; "
     r"set others: all"),
    ("{name: deletion_auc, params: {patch: 1000000000000}}",  # a fuzzing review: the run failed every cell
     r"suite.yaml: metrics\[0\].params: deletion_auc: parameter 'patch' = 1000000000000 is larger than the image "
     r"\(32 x 32\) of dataset 'phantom_cxr'; expected patch <= 31$"),  # 32 leaves one feature: refused
    ("{name: infidelity, params: {patch: 32, runs: 2, squares: grid}}",  # a review: validate said ok, cells failed
     r"suite.yaml: metrics\[0\].params: infidelity: patch = 32 gives 1 feature on the 32 x 32 input, so every map "
     r"would score 0; set patch below 32 \(the largest side\), or scaling: false \(dataset 'phantom_cxr'\)$"),
    ("{name: sensitivity_n, params: {patch: 1000000000000}}",  # was an allocation error out of its own check
     r"metrics\[0\].params: sensitivity_n: parameter 'patch' = 1000000000000 is larger than the image \(32 x 32\)"),
    ("{name: consistency, params: {grid: 33}}",  # a review: cells repeated on a volume 2 voxels deep
     r"suite.yaml: metrics\[0\].params: consistency: parameter 'grid' = 33 is more than the smallest image side 32 "
     r"\(shape \(32, 32\)\); set grid <= 32"),
    # a fuzzing review: one feature, so every explainer scored the same (deletion) or NaN (faithfulness_estimate)
    ("{name: deletion_auc, params: {patch: 32}}",
     r"suite.yaml: metrics\[0\].params: deletion_auc: parameter 'patch' = 32 gives 1 feature on the 32 x 32 images, "
     r"so every explainer would score the same; expected patch < 32 \(dataset 'phantom_cxr'\)$"),
    ("{name: faithfulness_estimate, params: {patch: 32}}",
     r"faithfulness_estimate: parameter 'patch' = 32 leaves 1 whole feature"),
    ("{name: sufficiency, params: {threshold: 0}}", r"sufficiency: parameter 'threshold' must be in \(0, 1\)"),
    ("{name: region_deletion_correlation, params: {regions: [heart, heart, spine]}}",
     r"region_deletion_correlation: parameter 'regions' repeats 'heart'; expected distinct names"),
    ("{name: region_deletion_correlation, params: {regions: [heart, spine]}}",
     r"parameter 'regions' names 2 regions; expected at least 3"),
    # a review: listed in metrics: it ignored the suite's block, and a listed one's scores were never written
    ("regions", r"suite.yaml: metrics\[0\] 'regions': region scores come from the suite's regions: block \(masks, "
                r"grid, postprocess; docs/statistics.md\), not from metrics:; move its settings there$"),
    ("{name: regions, params: {masks: [heart]}}", r"metrics\[0\] 'regions': region scores come from the suite's"),
    ("{name: avg_sensitivity, alias: sparseness}",
     r"suite.yaml: metrics\[0\].alias: 'sparseness' is the name of another metric"),
])
def test_limits_of_data_and_model_refused_at_validation(tmp_path, metric, expected):
    with pytest.raises(SuiteError, match=expected):
        _load(tmp_path, metric)


@pytest.mark.parametrize("metric, extra, expected", [
    ("focus", "batch_size: 3", r"suite.yaml: metrics\[0\] 'focus': focus compares each sample with the others of "
                               r"its batch and needs 4 samples in a batch; batch_size is 3$"),
    ("sufficiency", "samples: 1", r"metrics\[0\] 'sufficiency': sufficiency compares .* needs 2 samples in a "
                                  r"batch; samples is 1$"),
    ("consistency", "batch_size: 1", r"consistency compares .* needs 2 samples in a batch; batch_size is 1$"),
])
def test_a_metric_comparing_a_sample_with_its_batch_needs_a_batch(tmp_path, metric, extra, expected):
    """A fuzzing review: with batch_size 1 the run trained, explained and scored, then had no row."""
    path = tmp_path / "suite.yaml"
    path.write_text(BASE.replace("METRIC", metric) + extra + "\n")
    with pytest.raises(SuiteError, match=expected):
        load_suite(path)
    path.write_text(BASE.replace("METRIC", metric) + "batch_size: 4\nsamples: 4\n")
    assert load_suite(path).batch_size == 4


@pytest.mark.parametrize("metric", [
    "{name: top_k_intersection, params: {k: 1023}}",  # 1024 takes every pixel: refused as a same-score setting
    "{name: faithfulness_correlation, params: {subset_size: 1023}}",
    "{name: continuity, params: {steps: 65}}",
    "{name: consistency, params: {grid: 32}}",
    "{name: relative_representation_stability, params: {layer: features}}",
    "{name: relative_representation_stability, params: {layer: head}}",
    "relative_representation_stability",
    "{name: class_sensitivity, params: {others: all}}",
    "{name: sparseness, alias: sparseness}",
    "{name: avg_sensitivity, alias: avg_sens}",
])
def test_values_within_the_limits_validate(tmp_path, metric):
    with warnings.catch_warnings():
        warnings.simplefilter("error", SuiteWarning)
        _load(tmp_path, metric)


_ONE_FEATURE = (r"suite.yaml: metrics\[0\].params: {}: parameter 'patch' = 32 gives 1 feature on the 32 x 32 images, "
                r"so every explainer would score the same; expected patch < 32 \(dataset 'phantom_cxr'\)$")


@pytest.mark.parametrize("metric, expected", [
    # a fuzzing review: three explainers tied at 0.5504 with deletion_auc steps: 1, ranked 1/2/3
    ("{name: deletion_auc, params: {steps: 1}}",
     r"suite.yaml: metrics\[0\].params: deletion_auc: parameter 'steps' must be >= 2 \(with 1 step the curve is "
     r"its two end points, nothing and every feature replaced, which no map changes, so every explainer would "
     r"score the same\), got 1$"),
    ("{name: insertion_auc, params: {steps: 1}}", r"insertion_auc: parameter 'steps' must be >= 2 \(with 1 step"),
    ("{name: abpc, params: {steps: 1}}", r"abpc: parameter 'steps' must be >= 2 \(with 1 step"),
    ("{name: monotonicity, params: {steps: 1}}",
     r"monotonicity: parameter 'steps' must be >= 2 \(with 1 step the curve is one point, every feature restored, "
     r"so every map scores 1\), got 1$"),
    ("{name: sufficiency, params: {threshold: 2.0}}",
     r"sufficiency: parameter 'threshold' must be in \(0, 1\) \(distances are divided by the batch's largest, so "
     r"a threshold of 1 or more makes every other sample a neighbour and every explainer would score the same"),
    ("{name: sufficiency, params: {threshold: 1}}", r"sufficiency: parameter 'threshold' must be in \(0, 1\)"),
    ("{name: consistency, params: {grid: 1}}",
     r"consistency: parameter 'grid' must be >= 2 \(with 1 cell .* every value would be NaN\), got 1$"),
    ("{name: road_morf, params: {percentages: [0]}}",
     r"suite.yaml: metrics\[0\].params: road_morf: parameter 'percentages' = \[0\] removes no pixel of the 1024 of "
     r"32 x 32 images, so every explainer would score the same; expected a percentage that removes one "
     r"\(p >= 100 / 1024\) \(dataset 'phantom_cxr'\)$"),
    *[(f"{{name: {name}, params: {{patch: 32}}}}", _ONE_FEATURE.format(name))
      for name in ("insertion_auc", "abpc", "morf_aopc", "lerf_aopc", "monotonicity", "irof", "selectivity",
                   "non_sensitivity")],
])
def test_settings_that_make_every_explainer_score_the_same_are_refused(tmp_path, metric, expected):
    """Held-out reviews: these validated (steps: 1, a threshold >= 1, grid 1) or were refused by validate only
    (one feature), while every map got the same value (or NaN); the metric refuses them when computed too
    (tests/metrics/test_degenerate_settings.py)."""
    with pytest.raises(SuiteError, match=expected):
        _load(tmp_path, metric)


@pytest.mark.parametrize("metric, expected", [
    # a review: every explainer, the random control too, scored 1 (exit 0)
    ("{name: input_invariance, params: {shift: 0.0}}",
     "metrics[0].params: input_invariance: parameter 'shift' must not be 0 (x + 0 is x and the shifted model is the "
     "model, so every explainer, the random control too, would score 1), got 0.0"),
    # a held-out review: 1e-7 passed input x gradient, which must fail (exit 0)
    ("{name: input_invariance, params: {shift: 0.0000001}}",  # (-1.0000001 for the valid suite below)
     "metrics[0].params: input_invariance: parameter 'shift' must be above max(atol, 1.2e-07) = 0.0001 in magnitude "
     "(a smaller shift of inputs in [0, 1] moves input x gradient's map by no more than atol allows, so it would "
     "pass as invariant), got 1e-07"),
    # a review: validate said ok, then every signed explainer's cell failed at run time (exit 3)
    ("{name: sparseness, params: {postprocess: none}}",
     "metrics[0].params: sparseness: parameter 'postprocess' must be abs or relu (the metric needs a non-negative "
     "map; 'none' leaves a signed map's negative values), got 'none'"),
    ("{name: complexity, params: {postprocess: none}}",
     "metrics[0].params: complexity: parameter 'postprocess' must be abs or relu"),
])
def test_validate_refuses_a_degenerate_or_signed_setting_in_one_line(tmp_path, capsys, metric, expected):
    from faithbench.cli import main

    path = tmp_path / "suite.yaml"
    path.write_text(BASE.replace("METRIC", metric))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"faithbench: error: {path}: {expected}")
    path.write_text(BASE.replace("METRIC", metric.replace("0.0", "-1.0").replace("none", "relu")))
    assert main(["validate", str(path)]) == 0


def test_validate_refuses_one_step_in_one_line_with_exit_code_2(tmp_path, capsys):
    from faithbench.cli import main

    path = tmp_path / "suite.yaml"
    path.write_text(BASE.replace("METRIC", "{name: deletion_auc, params: {steps: 1}}"))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("faithbench: error: ")
    assert f"{path}: metrics[0].params: deletion_auc: parameter 'steps' must be >= 2 (with 1 step" in err
    path.write_text(BASE.replace("METRIC", "{name: deletion_auc, params: {steps: 2}}"))
    assert main(["validate", str(path)]) == 0


def test_a_limit_is_not_checked_where_the_metric_is_skipped(tmp_path):
    # no 'marker' mask on phantom_cxr: the run skips the metric there, so its k is not checked (a warning only)
    with pytest.warns(SuiteWarning, match="needs mask 'marker'"):
        _load(tmp_path, "{name: top_k_intersection, params: {k: 100000000, mask: marker}}, deletion_auc")


@pytest.mark.parametrize("subset", ["all", "positive"])
def test_focus_under_subset_positive_on_two_classes_warns(tmp_path, subset):
    """A review: Focus needs a second class in each batch; subset: positive on a two-class dataset leaves
    it none (every value NaN) and validate said ok."""
    path = tmp_path / "suite.yaml"
    path.write_text(BASE.replace("METRIC", "focus, deletion_auc") + f"subset: {subset}\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_suite(path)
    said = [str(w.message) for w in caught if issubclass(w.category, SuiteWarning)]
    expected = [f"{path}: metrics[0] 'focus' needs samples of another class in each batch; with subset: positive, "
                "every explained sample of the two-class dataset 'phantom_cxr' is of class 1, so its every value "
                "there is NaN (set subset: all)"]
    assert said == (expected if subset == "positive" else [])


@pytest.mark.parametrize("name", ["temporal_deletion", "temporal_insertion", "visit_pointing", "visit_pointing_game",
                                  "visit_relevance_mass"])
def test_temporal_metric_on_2d_data_warns_like_a_missing_mask(tmp_path, name):
    """A review: visit_pointing (which needs mask 'change') said so on 2D images, which points at the wrong
    fix; the sequence reason comes first, as in the run's skipped.csv, and alone."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _load(tmp_path, f"{name}, deletion_auc")
    said = [str(w.message) for w in caught if issubclass(w.category, SuiteWarning) and name in str(w.message)]
    assert said == [f"{tmp_path / 'suite.yaml'}: metrics[0] '{name}' does not apply to dataset 'phantom_cxr': a "
                    "temporal metric needs sequences of visits (T, H, W) from a longitudinal dataset; the dataset "
                    "is 2D; the run skips it there"]


def test_visit_pointing_on_a_volume_warns_that_it_is_no_sequence(tmp_path):
    """A review: on phantom_organ3d (3D, no mask 'valid') visit_pointing said it needs mask 'change'."""
    path = tmp_path / "suite.yaml"
    path.write_text(BASE.replace("phantom_cxr, params: {size: 32, n: 8}", "phantom_organ3d, params: {size: 24, n: 8}")
                    .replace("METRIC", "visit_pointing, deletion_auc"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_suite(path)
    said = [str(w.message) for w in caught if "visit_pointing" in str(w.message)]
    assert len(said) == 1 and "the dataset is 3D without it (a volume?); the run skips it there" in said[0]
    assert "needs mask 'change'" not in said[0]


def test_a_missing_mask_is_still_named_where_it_is_the_reason(tmp_path):
    with pytest.warns(SuiteWarning, match=r"metrics\[0\] 'pointing_game' needs mask 'marker', which dataset "
                                          r"'phantom_cxr' lacks \(its masks: "):
        _load(tmp_path, "{name: pointing_game, params: {mask: marker}}, deletion_auc")


def test_a_metric_meant_for_a_variant_of_the_dataset_is_skipped_without_a_warning(tmp_path):
    """A walkthrough: the quick demo warned on every run that its own mass_on_marker skips the plain phantom
    (it is meant for the shortcut variant); a review of the mend: a metric skipped on another dataset (no
    mask there) must still warn."""
    suite = tmp_path / "suite.yaml"
    suite.write_text(textwrap.dedent("""
        name: variants
        datasets: [{name: phantom_cxr, params: {n: 16, size: 32}},
                   {name: phantom_cxr, alias: shortcut, params: {n: 16, size: 32, shortcut: 0.9}},
                   {name: phantom_organ3d, params: {n: 16, size: 24}}]
        models: [{name: small_cnn, recipe: default}]
        explainers: [saliency, random]
        metrics: [{name: relevance_mass, alias: mass_on_marker, params: {mask: marker}}, deletion_auc]
    """))
    with pytest.warns(SuiteWarning) as caught:
        load_suite(suite)
    skips = [str(w.message) for w in caught if "mass_on_marker" in str(w.message)]
    assert len(skips) == 1 and "which dataset 'phantom_organ3d' lacks" in skips[0]


@pytest.mark.parametrize("metric, reason", [
    ("temporal_deletion", "a temporal metric needs sequences of visits"),
    ("{name: pointing_game, params: {mask: marker}}, {name: relevance_mass, params: {mask: marker}}", "marker"),
])
def test_a_suite_in_which_no_metric_applies_is_refused(tmp_path, metric, reason):
    # the run would train and explain, then exit 2 with no result row: validate says so first
    with pytest.warns(SuiteWarning), pytest.raises(SuiteError) as caught:
        _load(tmp_path, metric)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'suite.yaml'}: metrics: none applies to any dataset, so the run would "
                              "compute nothing (metrics[0] ")
    assert "on dataset 'phantom_cxr': " in message and reason in message


def test_temporal_applicability_by_dimension():
    for name in ("temporal_deletion", "temporal_insertion", "visit_pointing", "visit_pointing_game",
                 "visit_relevance_mass"):
        metric = metrics.get(name)()
        masks = {"change", "lesion", "valid"}
        assert metric.applicability(masks, 2)[0] is not None, name
        assert metric.applicability(masks, 3)[0] is None, name
        # a 3D volume (phantom_organ3d's masks) is not a sequence of visits
        assert "with the mask 'valid'" in metric.applicability(masks - {"valid"}, 3)[0], name
    # on 2D images "not a sequence" comes first (a missing 'change' pointed at the wrong fix, a review); on
    # sequences the missing mask is the reason
    assert "the dataset is 2D" in metrics.get("visit_pointing")().applicability({"lesion"}, 2)[0]
    assert "no mask 'change'" in metrics.get("visit_pointing")().applicability({"lesion", "valid"}, 3)[0]


def test_unknown_top_level_key_is_named_with_a_hint():
    data = {"name": "t", "datasets": ["phantom_cxr"], "models": [{"name": "small_cnn", "recipe": "default"}],
            "explainers": ["random"], "metric": ["sparseness"]}
    with pytest.raises(SuiteError, match=r"^<suite>: metric: unknown key 'metric'; did you mean 'metrics'\?$"):
        suite_from_dict(data)


# -- the hooks on their own ------------------------------------------------------------------------------
def test_rrs_layer_must_be_a_string():
    with pytest.raises(ParameterError, match=r"parameter 'layer' expects a module name \(str\) or null, got int 3"):
        metrics.get("relative_representation_stability")(layer=3)
    assert metrics.get("relative_representation_stability")(layer=None).layer is None


def test_rrs_check_model():
    rrs = metrics.get("relative_representation_stability")
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2))
    assert rrs().check_model(net) is None and rrs(layer="1").check_model(net) is None
    assert "'layer' = 'x' is not a module" in rrs(layer="x").check_model(net)
    assert "no nn.Linear" in rrs().check_model(nn.Sequential(nn.Conv2d(1, 2, 3)))


def test_hooks_check_nothing_by_default():
    class Plain(Metric):
        pass

    plain = Plain()
    assert plain.check_dataset((8, 8), multilabel=False) is None and plain.check_model(nn.Linear(1, 1)) is None


def test_a_plugin_hook_that_fails_is_one_line_not_a_traceback():
    from faithbench.config import suite_from_dict, validate_plugins
    from faithbench.metrics.base import Metric, MetricOutput
    from faithbench.types import Category, MetricInfo

    class Legacy(Metric):
        info = MetricInfo("legacy_hook", higher_is_better=True, category=Category.COMPLEXITY)

        def check_dataset(self, dataset):  # an older helper of the same name, another signature
            return None

        def compute(self, ctx, saliency):
            return MetricOutput(value=saliency.flatten(1).abs().mean(1))

    metrics.register("legacy_hook")(Legacy)
    try:
        with pytest.raises(SuiteError, match=r"^<suite>: metrics\[0\].params: legacy_hook: check_dataset failed: "
                                             r"TypeError: .*multilabel.* \(dataset 'phantom_cxr'\)$"):
            suite = suite_from_dict({"name": "t", "datasets": [{"name": "phantom_cxr", "params": {"size": 32, "n": 8}}],
                                     "models": [{"name": "small_cnn", "params": {"width": 4},
                                                 "recipe": {"epochs": 1}}],
                                     "explainers": ["random"], "metrics": ["legacy_hook"]})
            validate_plugins(suite, "<suite>")
    finally:
        metrics.unregister("legacy_hook")


def test_masks_are_read_from_the_runs_first_batch(tmp_path):
    """A held-out review: a volume dataset gives only the masks of the regions each volume holds, so
    sample 0 without a lesion made validate refuse a lesion metric the run computes (it decides on
    the masks of its first batch, collated)."""
    from faithbench.datasets import PhantomCXR
    from faithbench.registry import datasets
    from faithbench.types import Sample

    class LesionFromSampleOne(PhantomCXR):
        def __getitem__(self, i):
            sample = super().__getitem__(i)
            masks = {k: v for k, v in sample.masks.items() if k != "lesion" or i > 0}
            return Sample(sample.id, sample.image, sample.label, masks)

    datasets.register("test_lesion_from_one")(LesionFromSampleOne)
    try:
        text = BASE.replace("phantom_cxr", "test_lesion_from_one")
        path = tmp_path / "suite.yaml"
        path.write_text(text.replace("METRIC", "pointing_game"))
        with warnings.catch_warnings():
            warnings.simplefilter("error", SuiteWarning)  # nor a warning: the first batch has the mask
            load_suite(path)
        path.write_text("batch_size: 1\n" + text.replace("METRIC", "pointing_game"))
        with pytest.warns(SuiteWarning, match="needs mask 'lesion'"), pytest.raises(SuiteError, match="none applies"):
            load_suite(path)  # a first batch of sample 0 alone: the run would skip it
    finally:
        datasets.unregister("test_lesion_from_one")


@pytest.mark.parametrize("params, expected", [
    ("{gate: 0.7}", ["a gate without full_dataset: true empties maps of samples with the finding only"]),
    ("{gate: 0.3, full_dataset: true}", ["gate 0.3 gates nothing on the two-class dataset(s) phantom_cxr"]),
    ("{gate: 0.3}", ["a gate without", "gate 0.3 gates nothing"]),
    ("{gate: 0.7, full_dataset: true}", []),
    ("{gate: val, full_dataset: true}", []),
    ("{full_dataset: true}", []),
])
@pytest.mark.parametrize("name", ["chexlocalize_hit", "chexlocalize_iou"])
def test_a_gate_that_can_only_lower_the_score_or_gates_nothing_warns(tmp_path, name, params, expected):
    """A review: gate 0.7 without full_dataset gated 228 of 312 lesion maps (hit rate 0.615 -> 0.385) and validate
    said ok; the docs call both cases pointless (phantom_cxr: two classes, target: predicted by default)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _load(tmp_path, f"{{name: {name}, params: {params}}}, deletion_auc")
    said = [str(w.message) for w in caught if issubclass(w.category, SuiteWarning) and "gate" in str(w.message)]
    assert len(said) == len(expected) and all(e in s for e, s in zip(expected, said)), said
    assert all(s.startswith(f"{tmp_path / 'suite.yaml'}: metrics[0] '{name}': ") for s in said)


@pytest.mark.parametrize("params, expected", [
    ({"masks": 5}, r"regions: parameter 'masks' expects a list of mask names or 'all', got 5"),
    ({"grid": 5}, r"regions: parameter 'grid' expects \[rows, cols\] or \[depth, rows, cols\] of integers >= 1, got 5"),
])
def test_the_region_metric_built_directly_checks_its_parameters(params, expected):
    with pytest.raises(ParameterError, match=expected):
        metrics.get("regions")(**params)


def test_region_deletion_correlation_on_fewer_than_3_regions_warns_and_is_skipped(tmp_path):
    """A review: with fewer than 3 masks outside ``exclude`` every value was NaN and validate said ok; it warns
    now and the run skips the metric there (phantom_cxr's masks outside this exclude: lung_left, lung_right)."""
    exclude = "[lesion, marker, body, heart, spine, lung_lesion_side, lung_contralateral, target]"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _load(tmp_path, f"{{name: region_deletion_correlation, params: {{exclude: {exclude}}}}}, deletion_auc")
    said = [str(w.message) for w in caught if "region_deletion_correlation" in str(w.message)]
    assert said == [f"{tmp_path / 'suite.yaml'}: metrics[0] 'region_deletion_correlation' does not apply to dataset "
                    "'phantom_cxr': 2 of the dataset's masks are regions (lung_left, lung_right; the others are in "
                    "'exclude'): a rank correlation needs at least 3; the run skips it there"]
    metric = metrics.get("region_deletion_correlation")()
    assert metric.applicability({"heart", "spine", "lung_left", "lesion"}, 2) == (None, [])  # 3 regions: runs


def test_focus_on_a_multilabel_dataset_counts_images_not_rows(tmp_path):
    """A review: with target {classes: [nodule, cavity]} each image takes 2 rows, so batch_size 4 held 2 images,
    validate said ok and the run ended with nothing computed; focus needs 4 images (a 2 x 2 mosaic)."""
    path = tmp_path / "suite.yaml"
    path.write_text(BASE.replace("phantom_cxr, params: {size: 32, n: 8}", "phantom_cxr_multilabel, params: {size: 32}")
                    .replace("METRIC", "focus") + "target: {classes: [nodule, cavity]}\nbatch_size: 4\n")
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    assert str(err.value).endswith(
        "metrics[0] 'focus': focus compares each image with other images of its batch and needs 4 in a batch; "
        "batch_size 4 holds 2 of this multi-label dataset, each explained for its 2 classes (target samples: all); "
        "expected batch_size >= 8")
    path.write_text(path.read_text().replace("batch_size: 4", "batch_size: 8"))
    load_suite(path)
    path.write_text(path.read_text().replace("{classes: [nodule, cavity]}", "{classes: [nodule]}")
                    .replace("batch_size: 8", "batch_size: 4"))
    load_suite(path)  # one class: a row per image
