"""A fuzzing review (clifuzz4) found settings accepted by ``faithbench validate`` under which no map changes
the value, so every explainer, the ``random`` control too, scored the same: effective_complexity ``eps: 1``
(0 for all), non_sensitivity ``eps: 1e9``, pointing_game ``tolerance: 1e9`` (every map hits),
top_k_intersection ``fraction: 1`` or ``k`` = N (|M| / N for all), chexlocalize ``threshold: 1`` (empty
segmentations) and ``gate: 1`` (every map gated). Each is refused by validate in one line (exit 2) and on
direct API use; the value just inside the limit is accepted and tells maps apart."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from faithbench.configurable import ParameterError
from faithbench.metrics.base import EvalContext, ForwardCounter
from faithbench.registry import metrics


@pytest.mark.parametrize("refused, accepted, expected", [
    ("{name: effective_complexity, params: {eps: 1.0}}", "{name: effective_complexity, params: {eps: 0.99}}",
     "metrics[0].params: effective_complexity: parameter 'eps' must be in [0, 1) (|s| / max |s| is at most 1, so at "
     "1 or more no feature counts and every explainer would score 0), got 1.0"),
    ("{name: non_sensitivity, params: {eps: 1000000000.0}}", "{name: non_sensitivity, params: {eps: 1.0}}",
     "metrics[0].params: non_sensitivity: parameter 'eps' = 1e+09 is above 1, the largest attribution a feature can "
     "have (patch 1 on 32 x 32, |s| / max |s| summed over it), so every feature counts as unattributed and every "
     "explainer would score the same; expected eps <= 1 (dataset 'phantom_cxr')"),
    ("{name: non_sensitivity, params: {eps: 4.5, patch: 2}}", "{name: non_sensitivity, params: {eps: 4.0, patch: 2}}",
     "metrics[0].params: non_sensitivity: parameter 'eps' = 4.5 is above 4, the largest attribution"),
    ("{name: pointing_game, params: {tolerance: 44}}", "{name: pointing_game, params: {tolerance: 43}}",
     "metrics[0].params: pointing_game: parameter 'tolerance' = 44 is above 43.84, the largest distance between two "
     "pixels of the 32 x 32 images, so every map would hit and every explainer would score the same; expected "
     "tolerance <= 43 (dataset 'phantom_cxr')"),
    ("{name: top_k_intersection, params: {fraction: 1.0}}", "{name: top_k_intersection, params: {fraction: 0.999}}",
     "metrics[0].params: top_k_intersection: fraction = 1 (k = round(fraction N)) takes all 1024 features per sample "
     "(32 x 32), so every explainer would score |M| / N; expected k < 1024, or a fraction with round(fraction N) "
     "< 1024 (dataset 'phantom_cxr')"),
    ("{name: top_k_intersection, params: {k: 1024}}", "{name: top_k_intersection, params: {k: 1023}}",
     "metrics[0].params: top_k_intersection: k = 1024 takes all 1024 features per sample"),
    ("{name: chexlocalize_iou, params: {threshold: 1}}", "{name: chexlocalize_iou, params: {threshold: 0.99}}",
     "metrics[0].params: chexlocalize_iou: parameter 'threshold' expects a float in [0, 1) (no min-max normalised map "
     "exceeds 1, so every segmentation would be empty and every explainer would score the same), got 1"),
    ("{name: chexlocalize_iou, params: {gate: 1.0, full_dataset: true}}",
     "{name: chexlocalize_iou, params: {gate: 0.99, full_dataset: true}}",
     "metrics[0].params: chexlocalize_iou: parameter 'gate' expects null, 'val' or a float in [0, 1) (a probability "
     "is never above 1, so at 1 every map would be gated and every explainer would score the same), got 1.0"),
    ("{name: chexlocalize_hit, params: {gate: 1, full_dataset: true}}",
     "{name: chexlocalize_hit, params: {gate: 0.5, full_dataset: true}}",
     "metrics[0].params: chexlocalize_hit: parameter 'gate' expects null, 'val' or a float in [0, 1) (a probability"),
])
def test_validate_refuses_a_map_independent_setting_in_one_line(validate_entry, refused, accepted, expected):
    rc, err, _ = validate_entry(metric=refused)
    assert (rc, err.count("\n")) == (2, 0) and err.startswith(expected), err
    assert validate_entry(metric=accepted)[0] == 0


def _ctx(spatial=(8, 8), saliency=None):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand((2, 1, *spatial), generator=gen)
    model = nn.Sequential(nn.Flatten(), nn.Linear(x[0].numel(), 2)).eval()
    target = torch.ones(2, dtype=torch.long)
    mask = torch.zeros((2, *spatial), dtype=torch.bool)
    mask[:, 0, 0] = True
    sal = torch.randn((2, *spatial), generator=gen) if saliency is None else saliency
    return EvalContext(model=model, x=x, target=target, label=target, saliency=sal, masks={"lesion": mask},
                       predict=ForwardCounter(model), classes=("a", "b"))


@pytest.mark.parametrize("name, refused, accepted, expected", [
    ("non_sensitivity", {"eps": 1.5}, {"eps": 1.0}, r"^non_sensitivity: parameter 'eps' = 1.5 is above 1, "),
    ("pointing_game", {"tolerance": 10}, {"tolerance": 9}, r"^pointing_game: parameter 'tolerance' = 10 is above 9.90"),
    ("top_k_intersection", {"k": 64}, {"k": 63}, r"^top_k_intersection: k = 64 takes all 64 features"),
    ("top_k_intersection", {"fraction": 0.995}, {"fraction": 0.98}, r"^top_k_intersection: fraction = 0.995"),
])
def test_a_map_independent_setting_is_refused_when_computed(name, refused, accepted, expected):
    ctx = _ctx()
    with pytest.raises(ValueError, match=expected):
        metrics.get(name)(**refused)(ctx)
    assert ctx.predict.passes == 0
    # just inside the limit two maps score differently: one peaked on the mask (0, 0), one at the far corner
    ramp = torch.arange(8.0)[:, None] + torch.arange(8.0)
    other = torch.ones(8, 8) if name == "non_sensitivity" else ramp  # its a_i all 1: none below eps 1
    values = [metrics.get(name)(**accepted)(_ctx(saliency=s.expand(2, 8, 8).clone()))["value"]
              for s in (14 - ramp, other)]
    assert not torch.equal(values[0], values[1])


@pytest.mark.parametrize("name, params", [
    ("effective_complexity", {"eps": 1}), ("effective_complexity", {"eps": 1e9}),
    ("chexlocalize_iou", {"threshold": 1.0}), ("chexlocalize_iou", {"gate": 1}), ("chexlocalize_hit", {"gate": 1.0}),
])
def test_a_map_independent_setting_is_refused_on_construction(name, params):
    with pytest.raises(ParameterError, match=rf"^{name}: parameter '{next(iter(params))}' "):
        metrics.get(name)(**params)
