"""A fuzzing review (clifuzz4 F5, F6): list elements of the wrong type and an empty layer name were
accepted (``exclude: [null]`` excluded nothing, ``layer: ''`` read the whole model's output), and some
refusals stated a wrong bound (``expected patch <= 32``, then 32 refused), followed a warning about the
same patch, or did not say what was got (``params: null``)."""

from __future__ import annotations

import pytest

from faithbench.configurable import ParameterError
from faithbench.registry import metrics


@pytest.mark.parametrize("metric, expected", [
    ("{name: region_deletion_correlation, params: {exclude: [null]}}",
     "metrics[0].params: region_deletion_correlation: parameter 'exclude' expects a list of mask names (str), got "
     "null in [None]"),
    ("{name: region_deletion_correlation, params: {exclude: [lesion, 0]}}",
     "metrics[0].params: region_deletion_correlation: parameter 'exclude' expects a list of mask names (str), got "
     "int 0 in ['lesion', 0]"),
    ("{name: region_deletion_correlation, params: {regions: [a, b, '']}}",
     "metrics[0].params: region_deletion_correlation: parameter 'regions' expects a list of mask names (str), got "
     "an empty string"),
    ("{name: relative_representation_stability, params: {layer: ''}}",
     "metrics[0].params: relative_representation_stability: parameter 'layer' expects a dotted module name, got an "
     "empty string (null reads the input of the last nn.Linear)"),
    ("{name: deletion_auc, params: {patch: 1000000000}}",
     "metrics[0].params: deletion_auc: parameter 'patch' = 1000000000 is larger than the image (32 x 32) of dataset "
     "'phantom_cxr'; expected patch <= 31"),
    ("{name: irof, params: {patch: 1000000000}}", "metrics[0].params: irof: parameter 'patch' = 1000000000 is larger "
     "than the image (32 x 32) of dataset 'phantom_cxr'; expected patch <= 31"),
    # a diff review: "< 32", then 31 refused again (a correlation needs 3 whole patches; 16 is the largest taken)
    ("{name: faithfulness_estimate, params: {patch: 1000}}", "metrics[0].params: faithfulness_estimate: parameter "
     "'patch' = 1000 is larger than the image (32 x 32) of dataset 'phantom_cxr'; expected patch <= 16"),
    ("{name: monotonicity_correlation, params: {patch: 17}}", "metrics[0].params: monotonicity_correlation: "),
    ("{name: relevance_mass, params: null}", "metrics[0].params: Input should be a valid dictionary, got null"),
    ("{name: relevance_mass, params: [1]}", "metrics[0].params: Input should be a valid dictionary, got list [1]"),
    ("{name: relevance_mass, params: x}", "metrics[0].params: Input should be a valid dictionary, got str 'x'"),
    ("[relevance_mass]", "metrics[0]: Input should be a valid dictionary, got list ['relevance_mass']"),
])
def test_refused_in_one_line_without_a_warning_first(validate_entry, metric, expected):
    rc, err, caught = validate_entry(metric=metric)
    assert (rc, err.count("\n")) == (2, 0) and err.startswith(expected), err
    assert "does not tile" not in err + " ".join(caught)  # no tiling advice for a refused patch


def test_the_stated_patch_bound_holds(validate_entry):
    """31 on 32 px validates (with the tiling warning, which a refused patch no longer gets), so "<= 31" is
    the bound deletion_auc's message states."""
    rc, err, caught = validate_entry(metric="{name: deletion_auc, params: {patch: 31}}")
    assert rc == 0 and "patch 31 does not tile" in err + " ".join(caught), err


def test_exclude_of_names_is_accepted_and_a_list_element_type_refused_on_construction():
    metric = metrics.get("region_deletion_correlation")(exclude=["lesion", "body"])
    assert metric.exclude == ["lesion", "body"]
    with pytest.raises(ParameterError, match=r"parameter 'exclude' expects a list of mask names \(str\), got float"):
        metrics.get("region_deletion_correlation")(exclude=[0.5, "a"])
    with pytest.raises(ParameterError, match=r"parameter 'layer' expects a dotted module name, got an empty string"):
        metrics.get("relative_representation_stability")(layer="")
