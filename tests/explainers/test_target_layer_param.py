"""``target_layer`` is checked where the explainer is made, for the Python API as for a suite (a held-out
review: ``create_explainer("gradcam", target_layer="")`` was taken as the default layer, silently, while
``faithbench validate`` refused the same value in a suite)."""

from __future__ import annotations

import re

import pytest

import faithbench
from faithbench.configurable import ParameterError
from faithbench.registry import explainers

LAYERED = sorted(name for name in explainers.names() if "target_layer" in explainers.get(name).defaults)


def test_the_layered_explainers_are_found():
    assert {"gradcam", "scorecam", "fullgrad", "guided_gradcam"} <= set(LAYERED)


@pytest.mark.parametrize("name", LAYERED)
@pytest.mark.parametrize(("value", "got"), [("", "an empty string"), ("  ", "an empty string"), (4, "int 4"),
                                            (["layer4"], "list ['layer4']")])
def test_a_blank_or_non_string_target_layer_is_refused(name, value, got):
    with pytest.raises(ParameterError, match=rf"^{name}: parameter 'target_layer' expects a dotted module name "
                                             rf"\(e.g. 'layer4'\) or null for the default, got {re.escape(got)}$"):
        faithbench.create_explainer(name, target_layer=value)


@pytest.mark.parametrize("value", [None, "layer4", "features.-1"])
def test_a_module_name_or_null_is_taken(value):
    assert faithbench.create_explainer("gradcam", target_layer=value).target_layer == value
