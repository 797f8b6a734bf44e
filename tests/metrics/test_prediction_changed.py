"""The robustness metrics' "did the prediction change" check (``nan_if_prediction_changes``). On a
multi-label model, a row per (image, explained class k), a perturbed copy x' changed when the decision on
class k did, [logit_k(x') > 0] != [logit_k(x) > 0] (a held-out review: the argmax of the K independent
sigmoid logits never read the explained class); on a single-label model, the argmax, as before."""

import math

import torch
from torch import nn

from faithbench.metrics import AvgSensitivity, RelativeOutputStability
from faithbench.metrics.functional import prediction_changed, relative_output_stability, sensitivity
from faithbench.scores import decision_changed
from faithbench.seeds import seeded_rows
from tests.metrics.conftest import make_ctx

SALT_NOISE = 21  # faithbench.metrics.robustness.SALT_NOISE, restated: the test reproduces the metric's noise


def _old_rule(logits, perturbed_logits):
    return perturbed_logits.argmax(-1) != logits.argmax(-1)[None]


def test_decision_changed_reads_the_explained_class_on_multilabel():
    logits = torch.tensor([[3.0, 2.0, -1.0], [3.0, 2.0, -1.0]])  # rows: class 0, class 1 of one image
    target = torch.tensor([0, 1])
    # copy 0: the top class moves from 0 to 1, both stay present; copy 1: class 1 turns absent, 0 stays top
    perturbed = torch.tensor([[[3.0, 4.0, -1.0]] * 2, [[3.0, -0.5, -1.0]] * 2])
    assert decision_changed(logits, perturbed, target).tolist() == [[False, False], [False, True]]
    assert _old_rule(logits, perturbed).tolist() == [[True, True], [False, False]]  # the old rule, for contrast
    assert prediction_changed(logits, perturbed, target).tolist() == [[False, False], [False, True]]


def test_decision_changed_single_label_is_the_argmax_bit_for_bit():
    g = torch.Generator().manual_seed(0)
    logits, perturbed = torch.randn(64, 5, generator=g), torch.randn(7, 64, 5, generator=g)
    assert torch.equal(decision_changed(logits, perturbed), _old_rule(logits, perturbed))
    assert torch.equal(prediction_changed(logits, perturbed), _old_rule(logits, perturbed))


class Switch(nn.Module):
    """Three logits: 3 (class 0, always present), 2 + 1000 (p - 0.5) with p the top-left pixel (class 1), -1.
    At p = 0.5 the top class is 0 and class 1 is present; U(-0.02, 0.02) noise makes class 1 the top one
    where p > 0.501, and class 1 absent where p < 0.498: two disjoint sets of copies."""

    def forward(self, x):
        p = x[:, 0, 0, 0]
        return torch.stack([torch.full_like(p, 3.0), 2 + 1000 * (p - 0.5), torch.full_like(p, -1.0)], -1)


def _image_map(model, x, target):  # deterministic: the image itself, so each copy's sensitivity differs
    return x[:, 0] * 1.0


def _setup(multilabel: bool, nr_samples: int = 16, seed: int = 3):
    x = 0.4 + 0.01 * torch.arange(16.0).reshape(1, 1, 4, 4).repeat(2, 1, 1, 1)
    x[:, 0, 0, 0] = 0.5
    target = torch.tensor([0, 1])
    kw = {"ids": ["a", "a"], "multilabel": True} if multilabel else {}
    ctx = make_ctx(Switch(), x, _image_map(None, x, target), target=target, explainer=_image_map, seed=seed, **kw)
    # each image's noise from its own generator (the metrics' versions 3 and 5): the two rows of one image share it
    u = torch.cat([torch.rand((nr_samples, 1, *x.shape[1:]), generator=g) for g in seeded_rows(seed, SALT_NOISE, x)],
                  dim=1)
    x_perturbed = x[None] + (u * 2 - 1) * 0.02
    logits = Switch()(x)
    perturbed_logits = Switch()(x_perturbed.reshape(-1, 1, 4, 4)).reshape(nr_samples, 2, 3)
    return ctx, x_perturbed, logits, perturbed_logits


def test_avg_sensitivity_multilabel_keeps_copies_whose_class_k_decision_holds():
    ctx, x_perturbed, logits, perturbed_logits = _setup(multilabel=True)
    p = x_perturbed[:, :, 0, 0, 0]
    keep = torch.stack([torch.ones(16, dtype=torch.bool), p[:, 1] >= 0.498], 1)  # class 0 never flips
    top_moved = perturbed_logits.argmax(-1) != 0
    assert top_moved[:, 0].any() and (~keep[:, 1]).any()  # the crafted noise hits both cases
    assert not (top_moved & ~keep).any()  # and they are disjoint: the old rule left out other copies
    values = sensitivity(ctx.x[:, 0], x_perturbed[:, :, 0]).double()
    expected = [values[keep[:, b], b].mean().item() for b in range(2)]
    old = [values[~top_moved[:, b], b].mean().item() for b in range(2)]
    got = AvgSensitivity(nr_samples=16, nan_if_prediction_changes=True)(ctx).value
    assert torch.allclose(got.double(), torch.tensor(expected, dtype=torch.float64), rtol=1e-5), (got, expected)
    assert abs(expected[0] - old[0]) > 1e-4 and abs(expected[1] - old[1]) > 1e-4
    # row (a, 0): all 16 copies count, though the top class moved on some of them
    assert math.isclose(got[0].item(), values[:, 0].mean().item(), rel_tol=1e-5)


def test_relative_output_stability_default_multilabel_reads_class_k():
    ctx, x_perturbed, logits, perturbed_logits = _setup(multilabel=True)
    ros = relative_output_stability(logits, perturbed_logits, ctx.saliency, x_perturbed[:, :, 0], eps_min=1e-6,
                                    zeros="nan").double()
    changed = (perturbed_logits[:, [0, 1], [0, 1]] > 0) != (logits[[0, 1], [0, 1]] > 0)[None]
    expected = torch.where(~changed, ros, torch.full_like(ros, -torch.inf)).amax(0)
    got = RelativeOutputStability(nr_samples=16)(ctx).value  # nan_if_prediction_changes: true by default
    assert torch.allclose(got.double(), expected, rtol=1e-5), (got, expected)
    assert math.isclose(got[0].item(), ros[:, 0].max().item(), rel_tol=1e-5)  # no copy of row (a, 0) left out


def test_single_label_values_keep_the_argmax_rule():
    ctx, x_perturbed, logits, perturbed_logits = _setup(multilabel=False)
    old = _old_rule(logits, perturbed_logits)
    assert old.any() and not old.all()
    values = sensitivity(ctx.x[:, 0], x_perturbed[:, :, 0]).double()
    expected = torch.stack([values[~old[:, b], b].mean() for b in range(2)])
    got = AvgSensitivity(nr_samples=16, nan_if_prediction_changes=True)(ctx).value
    assert torch.allclose(got.double(), expected, rtol=1e-6), (got, expected)
