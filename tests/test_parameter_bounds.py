"""Numeric hyperparameters outside their range are refused on construction (so by ``faithbench
validate``, exit 2), with the range in a one-line message."""

import re
import textwrap

import pytest

from faithbench.cli import main
from faithbench.configurable import FRACTION, Bound, Configurable, ParameterError
from faithbench.registry import explainers, metrics


def test_bound_ranges_and_text():
    assert str(FRACTION) == "in (0, 1]" and FRACTION.holds(1) and not FRACTION.holds(0)
    assert str(Bound(0, 100, high_open=True)) == "in [0, 100)" and Bound(0, 100, high_open=True).holds(0)
    assert not Bound(0, 100, high_open=True).holds(100)
    assert str(Bound(1)) == ">= 1" and not Bound(1).holds(0.5)
    assert str(Bound(0, low_open=True)) == "> 0" and not Bound(0, low_open=True).holds(0.0)
    assert not Bound(0).holds(True) and not Bound(0).holds("1")
    # NaN compares false with every bound (so it passed a one-sided one); inf is above every lower bound
    for bound in (Bound(0, low_open=True), Bound(1), Bound(None, 5), FRACTION):
        assert not bound.holds(float("nan")) and not bound.holds(float("inf")) and not bound.holds(float("-inf"))


class _Plugin(Configurable):
    defaults = {"fractions": [0.5, 1.0], "draws": 3, "names": ["a"]}
    bounds = {"fractions": FRACTION, "draws": Bound(1)}


class _Child(_Plugin):
    defaults = {**_Plugin.defaults, "radius": 0.1}
    bounds = {"radius": Bound(0, low_open=True)}


def test_bounds_checked_for_scalars_lists_and_subclasses():
    assert _Child(fractions=[0.1], draws=1, radius=2).params["radius"] == 2
    with pytest.raises(ParameterError, match=r"_Child: parameter 'draws' must be >= 1, got 0"):
        _Child(draws=0)  # inherited bound
    with pytest.raises(ParameterError, match=r"'fractions' must be a non-empty list of numbers, each in \(0, 1\]"):
        _Plugin(fractions=[0.5, 1.5])
    with pytest.raises(ParameterError, match="non-empty list"):
        _Plugin(fractions=[])
    # a non-number in a list of numbers
    with pytest.raises(ParameterError, match=r"'fractions' expects a list of numbers \(default \[0.5, 1.0\]\), got"):
        _Plugin(fractions=[0.5, "a"])
    assert _Plugin(names=["x", 3]).params["names"] == ["x", 3]  # lists of other things: not checked


@pytest.mark.parametrize("registry, name, params, message", [
    (metrics, "monotonicity_correlation", {"draws": 0}, "'draws' must be >= 1, got 0"),
    (metrics, "sensitivity_n", {"fractions": [0.5, 2.0]}, r"'fractions' must be a non-empty list of numbers, each "
                                                          r"in \(0, 1\)"),
    # a subset of every feature is the same in every run: ρ is always NaN
    (metrics, "sensitivity_n", {"fractions": [0.5, 1.0]}, r"'fractions' must be a non-empty list of numbers, each "
                                                          r"in \(0, 1\), got \[0.5, 1.0\]"),
    (metrics, "sensitivity_n", {"runs": 2}, "'runs' must be >= 3, got 2"),  # 1 run: NaN; 2 runs: ±1
    (metrics, "infidelity", {"runs": 1}, "'runs' must be >= 2, got 1"),  # β fits one draw: 0 for every map
    (metrics, "efficient_mprt", {"n_bins": 1}, "'n_bins' must be >= 2, got 1"),  # one bin: H = 0, NaN
    (metrics, "road_morf", {"percentages": [10, 150]}, r"'percentages' must be a non-empty list of numbers, each "
                                                       r"in \[0, 100\)"),
    (metrics, "top_k_intersection", {"k": -5}, "'k' must be >= 0, got -5"),
    (metrics, "top_k_intersection", {"fraction": 2.0}, r"'fraction' must be in \(0, 1\], got 2.0"),
    (metrics, "relative_output_stability", {"eps_min": 0.0}, "'eps_min' must be > 0"),
    (metrics, "deletion_auc", {"steps": 0}, "'steps' must be >= 2"),
    (metrics, "faithfulness_correlation", {"runs": 2}, "'runs' must be >= 3, got 2"),  # 2 runs: ρ = ±1
    (explainers, "smoothgrad", {"n_samples": 0}, "'n_samples' must be >= 1, got 0"),
    (explainers, "integrated_gradients", {"n_steps": -1}, "'n_steps' must be >= 1"),
    # p = 1: constant maps
    (explainers, "rise", {"p": 0.0}, r"'p' must be in \[5.9604645e-08, 0.99999994\] \(p is compared"),
    (explainers, "occlusion", {"stride": 0}, "'stride' must be >= 1"),
    (explainers, "lime", {"kernel_width": 0.0}, "'kernel_width' must be > 0"),
    (explainers, "gradcam", {"min_grid": 0}, "'min_grid' must be >= 1"),
])
def test_plugin_bounds(registry, name, params, message):
    with pytest.raises(ParameterError, match=f"{name}: parameter {message}"):
        registry.get(name)(**params)


@pytest.mark.parametrize("registry, name, params", [
    (metrics, "max_sensitivity", {"radius": float("nan")}),  # ran: max-sensitivity 3.15 for saliency
    (metrics, "max_sensitivity", {"radius": float("inf")}),
    (metrics, "input_invariance", {"shift": float("nan")}),  # no bound: ran, 0 for every sample
    (metrics, "effective_complexity", {"eps": float("nan")}),  # ran: 0 for every map
    (metrics, "sensitivity_n", {"fractions": [0.5, float("nan")]}),
    (explainers, "smoothgrad", {"noise_level": float("nan")}),
    (explainers, "lime", {"kernel_width": float("inf")}),
])
def test_non_finite_parameters_are_refused(registry, name, params):
    key = next(iter(params))
    with pytest.raises(ParameterError, match=rf"{name}: parameter '{key}' (expects finite numbers|must)"):
        registry.get(name)(**params)


@pytest.mark.parametrize("registry, name, key", [
    (explainers, "gradcam", "relu"),  # was read as False: other values, exit 0
    (metrics, "deletion_auc", "steps"),  # was accepted by validate, then every cell failed
    (explainers, "integrated_gradients", "n_steps"),
    (metrics, "chexlocalize_iou", "val_samples"),  # was a TypeError out of validate (exit 1)
    (metrics, "region_deletion_correlation", "regions"),
])
def test_null_is_refused_where_the_default_is_not_null(registry, name, key):
    """A fuzzing review: a parameter left empty in YAML (``relu:``) is null, which every type check let pass."""
    default = registry.get(name).defaults[key]
    shown = re.escape(repr(default))
    with pytest.raises(ParameterError, match=rf"^{name}: parameter '{key}' expects .* \(default {shown}\), got null$"):
        registry.get(name)(**{key: None})


def test_null_is_taken_where_the_default_is_null():
    assert metrics.get("chexlocalize_hit")(gate=None).params["gate"] is None
    assert explainers.get("gradcam")(target_layer=None).params["target_layer"] is None


@pytest.mark.parametrize("name", ["sparseness", "focus", "deletion_auc"])
def test_an_unknown_postprocess_is_refused_on_construction(name):
    with pytest.raises(ParameterError, match=rf"{name}: parameter 'postprocess' must be one of none, abs, relu, "
                                             r"got 'square'"):
        metrics.get(name)(postprocess="square")
    assert metrics.get(name)(postprocess="relu").params["postprocess"] == "relu"


@pytest.mark.parametrize("entry, message", [
    ("{name: max_sensitivity, params: {radius: .nan}}", "max_sensitivity: parameter 'radius' expects finite numbers, "
                                                        "got nan"),
    ("{name: sparseness, params: {postprocess: square}}", "sparseness: parameter 'postprocess' must be one of none, "
                                                          "abs, relu, got 'square'"),
    ('{name: sensitivity_n, params: {fractions: [0.5, "a"]}}', "sensitivity_n: parameter 'fractions' expects a list "
                                                               "of numbers"),
    ("{name: monotonicity_correlation, params: {draws: 0}}", "monotonicity_correlation: parameter 'draws' must be "
                                                             ">= 1, got 0"),
])
def test_validate_refuses_an_out_of_range_parameter(tmp_path, capsys, entry, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(textwrap.dedent(f"""
        name: bad
        datasets: [phantom_cxr]
        models: [{{name: resnet18, recipe: default}}]
        explainers: [gradcam]
        metrics: [{entry}, pointing_game]
    """))
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err


@pytest.mark.parametrize("name, params, message", [
    # the run failed after training: captum's AssertionError, and a ValueError inside rise
    ("integrated_gradients", {"method": "simpsons"},
     "'method' expects one of riemann_left, riemann_right, riemann_middle, riemann_trapezoid, gausslegendre, "
     "got 'simpsons'"),
    ("rise", {"score": "prob"}, "'score' expects one of softmax, sigmoid, logit, got 'prob'"),
    ("temporal_occlusion", {"score": "prob"}, "'score' expects one of softmax, sigmoid, logit, got 'prob'"),
    ("attention", {"query": "token"}, "'query' expects one of auto, cls, mean, got 'token'"),
])
def test_string_choices_are_refused_on_construction(name, params, message):
    with pytest.raises(ParameterError, match=f"{name}: parameter {message}"):
        explainers.get(name)(**params)


def test_choices_merge_along_the_class_hierarchy_and_ig_methods_are_captums():
    from captum.attr._utils.approximation_methods import SUPPORTED_METHODS

    from faithbench.explainers.gradient import IG_METHODS

    assert sorted(IG_METHODS) == sorted(SUPPORTED_METHODS)  # captum's own list, nothing more or less

    class Parent(Configurable):
        defaults = {"mode": "a", "kind": "x"}
        choices = {"mode": ("a", "b")}

    class Child(Parent):
        choices = {"kind": ("x", "y")}

    assert Child(mode="b", kind="y").params == {"mode": "b", "kind": "y"}
    with pytest.raises(ParameterError, match="Child: parameter 'mode' expects one of a, b, got 'c'"):
        Child(mode="c")
    with pytest.raises(ParameterError, match="Child: parameter 'kind' expects one of x, y, got 'z'"):
        Child(kind="z")


def test_validate_refuses_a_choice_outside_the_list(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(textwrap.dedent("""
        name: bad
        datasets: [phantom_cxr]
        models: [{name: small_cnn, recipe: default}]
        explainers: [{name: integrated_gradients, params: {method: simpsons}}]
        metrics: [pointing_game]
    """))
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "explainers[0].params: integrated_gradients: parameter 'method'" in err


@pytest.mark.parametrize("name", ["sparseness", "complexity"])
def test_a_postprocess_that_leaves_negative_values_is_refused_on_construction(name):
    """A review: postprocess none validated, then every signed explainer's cell failed at run time."""
    with pytest.raises(ParameterError, match=rf"^{name}: parameter 'postprocess' must be abs or relu \(the metric "
                                             r"needs a non-negative map; 'none' leaves a signed map's negative "
                                             r"values\), got 'none'$"):
        metrics.get(name)(postprocess="none")
    import torch
    from types import SimpleNamespace

    s = torch.tensor([[[-3.0, 1.0], [0.0, 0.0]]])  # relu keeps one feature, abs two (1 and 3)
    ctx = SimpleNamespace(saliency=s)
    relu, absolute = (metrics.get(name)(postprocess=p) for p in ("relu", "abs"))
    expected = {"sparseness": (0.75, 0.625), "complexity": (0.0, 0.562335)}[name]
    assert relu.compute(ctx, relu.prepare(ctx)).value.tolist() == pytest.approx([expected[0]], abs=1e-6)
    assert absolute.compute(ctx, absolute.prepare(ctx)).value.tolist() == pytest.approx([expected[1]], abs=1e-6)
    assert metrics.get("effective_complexity")(postprocess="none").postprocess == "none"  # |s| of its own
