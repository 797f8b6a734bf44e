"""Tie-breaks of the ranking metrics drawn per image (a follow-up of review local3d D1): deletion/insertion, abpc,
AOPC, monotonicity, IROF, selectivity, ROAD and the temporal curves drew one permutation per batch, so position i
of every batch shared its tie-break. A sample's value no longer depends on its batch, maps without ties score as
before bit for bit, and the pure functions still reproduce the classes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from faithbench import create_metric
from faithbench.metrics.base import EvalContext, ForwardCounter
from faithbench.metrics.faithfulness import DeletionAUC
from faithbench.metrics.functional.faithfulness_extra import Scorer
from faithbench.metrics.functional.faithfulness_regions import irof
from faithbench.metrics.functional.perturbation import (SALT_RANKS, aopc, auc, deletion_curve, feature_ranks,
                                                        make_baseline, perturbation_curve, seeded)
from faithbench.metrics.functional.temporal import temporal_deletion_auc
from faithbench.metrics.temporal import SALT_VISIT_RANKS
from faithbench.seeds import seeded_rows, uniform_keys

SPECS = [("deletion_auc", dict(steps=8)), ("insertion_auc", dict(steps=8)), ("abpc", dict(steps=8)),
         ("morf_aopc", dict(patch=2, baseline="zero")), ("lerf_aopc", dict(patch=2, baseline="zero")),
         ("monotonicity", dict(patch=2)), ("irof", dict(patch=2)), ("selectivity", dict(patch=2)),
         ("road_morf", dict(noise=0.0, score="prob")), ("road_lerf", dict(noise=0.0, score="prob")),
         ("temporal_deletion", {}), ("temporal_insertion", {})]
TEMPORAL = ("temporal_deletion", "temporal_insertion")

# the values of main before the change (ed36f97, git archive), on the untied maps of _data(tied=False), seed 3
OLD_UNTIED = {
    "deletion_auc": [0.4969594641562476, 0.021883525047654034, 0.2115524860088939, 0.11517469091849114,
                     0.319954875506956, 0.4163339773903015],
    "insertion_auc": [0.018680997386046286, 0.06739469953086692, 0.11984783456495562, 0.134708302247938,
                      0.09099972571433684, 0.26680251767599733],
    "abpc": [-0.47827846677020125, 0.04551117448321289, -0.09170465144393827, 0.019533611329446858,
             -0.22895514979261913, -0.14953145971430418],
    "morf_aopc": [-0.045832488171184016, -0.01540337056880732, -0.2032602138259361, -0.3238849264332309,
                  -0.012166031942605354, -0.2611823238813342],
    "lerf_aopc": [-0.09122475937831757, -0.03961694112041653, -0.08923070966037945, -0.04994997918836231,
                  -0.05067315988101479, -0.01711544612702637],
    "monotonicity": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    "irof": [-3.157487861528792, -11.722614210284943, -2.071732226520722, -11.96551274430222, 0.055229858043751356,
             -1.471271487135744],
    "selectivity": [0.04588036814321203, 0.012381428227234325, 0.24546138273350937, 0.35339728707888257,
                    0.32448654832201884, 0.4476552646955377],
    "road_morf": [0.08987124641982473, 0.012697562374254092, 0.37513220701519434, 0.12540185428498046,
                  0.3693633083281815, 0.30734775973524164],
    "road_lerf": [0.008407218683606894, 0.058456832905716606, 0.05997424029057161, 0.0822244882081869,
                  0.2001385020538589, 0.16593986663186658],
    "temporal_deletion": [0.07377404143458091, 0.1099460031853742, 0.21655580888899165, 0.24222712720568818,
                          0.29866295504499146, 0.47438682626617534],
    "temporal_insertion": [0.521400891659345, 0.07969678182852007, 0.3859538798993464, 0.15007633170585996,
                           0.22711495688844624, 0.6846966482203991],
}


class Model(nn.Module):
    """Three classes, each logit a weighted sum over the pixels of x, x^2 and relu(x - 0.5) (weights seeded, of x's
    shape): nonlinear in x, and each row's logits are elementwise products summed per row, so they do not depend on
    the batch (a batched convolution's float32 sums can round differently by batch size, not the point here)."""

    def __init__(self, dims: int = 2) -> None:
        super().__init__()
        shape = (1, 4, 6, 6) if dims == 3 else (1, 12, 12)
        self.w = nn.Parameter(torch.randn((3, *shape), generator=torch.Generator().manual_seed(0)))
        self.arch_family = "cnn"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = (x, x * x, torch.relu(x - 0.5))
        return torch.stack([(f * w).flatten(1).sum(1) for f, w in zip(feats, self.w)], dim=1)


def _ctx(model: nn.Module, x: torch.Tensor, saliency: torch.Tensor, seed: int) -> EvalContext:
    t = torch.ones(len(x), dtype=torch.long)
    return EvalContext(model=model, x=x, target=t, label=t, saliency=saliency, masks={}, predict=ForwardCounter(model),
                       seed=seed)


def _data(tied: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """6 images 1 x 12 x 12 with 4-level maps (tied) or uniform ones, and 6 sequences of 4 visits 6 x 6 whose
    visits are 0 or 1 everywhere (tied) or uniform."""
    g = torch.Generator().manual_seed(11)
    x = torch.rand((6, 1, 12, 12), generator=g)
    sal = torch.randint(0, 4, (6, 12, 12), generator=g).float() if tied else torch.rand((6, 12, 12), generator=g)
    xs = torch.rand((6, 1, 4, 6, 6), generator=g)
    ss = (torch.randint(0, 2, (6, 4, 1, 1), generator=g).float().expand(6, 4, 6, 6).contiguous() if tied
          else torch.rand((6, 4, 6, 6), generator=g))
    return x, sal, xs, ss


def _values(name: str, params: dict, *, tied: bool, batch: int = 6, order: torch.Tensor | None = None,
            seed: int = 3) -> torch.Tensor:
    """The metric's values on :func:`_data`, in batches of ``batch`` after reordering the samples by ``order``,
    returned in the original order."""
    x, sal, xs, ss = _data(tied)
    x, sal, dims = (xs, ss, 3) if name in TEMPORAL else (x, sal, 2)
    order = torch.arange(len(x)) if order is None else order
    x, sal = x[order], sal[order]
    metric, model = create_metric(name, **params), Model(dims)
    out = torch.cat([metric(_ctx(model, x[i: i + batch], sal[i: i + batch], seed))["value"]
                     for i in range(0, len(x), batch)])
    return out[order.argsort()]


@pytest.mark.parametrize("name,params", SPECS, ids=[s[0] for s in SPECS])
def test_tied_value_does_not_depend_on_batch_or_position(name, params):
    """Tied maps: each sample's value alone (batch 1) equals its value in batches of 6 and of 4, and in the batch
    reversed (on main, ed36f97, the permutation was drawn per batch: reversing the batch moved deletion_auc by up to
    0.100, morf_aopc 0.117, temporal_insertion 0.268 on these maps; monotonicity is 0 for every order here)."""
    alone = _values(name, params, tied=True, batch=1)
    assert torch.equal(_values(name, params, tied=True, batch=6), alone)
    assert torch.equal(_values(name, params, tied=True, batch=4), alone)
    assert torch.equal(_values(name, params, tied=True, order=torch.arange(5, -1, -1)), alone)


@pytest.mark.parametrize("name,params", SPECS, ids=[s[0] for s in SPECS])
def test_untied_values_as_before(name, params):
    """Maps without ties are ranked by value alone: the values of main before the change (pinned), and the same in
    any batch."""
    values = _values(name, params, tied=False)
    assert values.tolist() == pytest.approx(OLD_UNTIED[name], rel=1e-12, abs=1e-15)
    assert torch.equal(_values(name, params, tied=False, batch=1), values)


def test_untied_ranks_equal_the_one_generator_draw_bit_for_bit():
    """The class's curve on untied maps equals, bit for bit, the curve ranked by one generator for the batch (the
    draw of main): the ranking of distinct values does not read the permutation."""
    x, sal, _, _ = _data(tied=False)
    model = Model()
    out = DeletionAUC(steps=8)(_ctx(model, x, sal, 3))
    ranks = feature_ranks(sal, generator=seeded(3, SALT_RANKS))
    curve, fractions = perturbation_curve(model, x, torch.ones(6, dtype=torch.long), ranks,
                                          make_baseline(x, "zero"), steps=8, insertion=False)
    assert torch.equal(out["curve"], curve) and torch.equal(out["value"], auc(curve, fractions))


def test_constant_maps_delete_in_an_order_of_their_image():
    """All-zero maps: the deletion order follows the image. Two different images, each the first of its batch, get
    different orders (on main both got the draw of position 0); one image at positions 0 and 3 of a batch gets one
    order and one curve (on main, two)."""
    x = torch.rand((16, 1, 12, 12), generator=torch.Generator().manual_seed(2))
    sal, model, metric = torch.zeros(16, 12, 12), Model(), DeletionAUC(steps=8)
    firsts = []
    for i in range(16):
        ctx = _ctx(model, x[i: i + 1], sal[i: i + 1], 3)
        firsts.append(int((metric.ranks(ctx, sal[i: i + 1], patch=1) == 0).flatten().nonzero()))
    assert len(set(firsts)) >= 12  # 16 draws over 144 pixels: on main all 16 were one pixel
    batch = torch.cat([x[:3], x[:1], x[3:5]])
    ctx = _ctx(model, batch, sal[:6], 3)
    ranks = metric.ranks(ctx, sal[:6], patch=1)
    out = metric(ctx)
    assert torch.equal(ranks[0], ranks[3]) and not torch.equal(ranks[0], ranks[1])
    assert torch.equal(out["curve"][0], out["curve"][3])
    alone = _ctx(model, x[:1], sal[:1], 3)
    assert torch.equal(metric.ranks(alone, sal[:1], patch=1)[0], ranks[0])


def test_pure_functions_reproduce_the_classes_on_tied_maps():
    """The functional API draws the tie-breaks per image too (``seeded_rows(seed, salt, x)``, the formula of
    ``EvalContext.generators``): deletion_curve and aopc with ``seed``, irof and temporal_deletion_auc with the rows'
    generators equal the classes on tied maps."""
    x, sal, xs, ss = _data(tied=True)
    model, target = Model(), torch.ones(6, dtype=torch.long)
    ctx = _ctx(model, x, sal, 5)
    curve, _ = deletion_curve(model, x, target, sal, steps=8, seed=5)
    assert torch.equal(create_metric("deletion_auc", steps=8)(ctx)["curve"], curve)
    value = aopc(model, x, target, sal, order="lerf", patch=2, baseline="zero", seed=5)
    assert torch.equal(create_metric("lerf_aopc", patch=2, baseline="zero")(_ctx(model, x, sal, 5))["value"], value)
    value, _ = irof(Scorer(model, "prob", 256), x, target, sal, make_baseline(x, "mean"), patch=2,
                    generator=seeded_rows(5, SALT_RANKS, x))
    assert torch.equal(create_metric("irof", patch=2)(_ctx(model, x, sal, 5))["value"], value)
    model3 = Model(3)
    value = temporal_deletion_auc(model3, xs, target, ss, generator=seeded_rows(5, SALT_VISIT_RANKS, xs))
    assert torch.equal(create_metric("temporal_deletion")(_ctx(model3, xs, ss, 5))["value"], value)
    # the per-row generators are the context's
    gens, rows = ctx.generators(SALT_RANKS), seeded_rows(5, SALT_RANKS, x)
    assert [g.initial_seed() for g in gens] == [g.initial_seed() for g in rows]
    assert len({g.initial_seed() for g in rows}) == 6


def test_uniform_keys_fill_rows_as_torch_rand():
    """The per-row keys are filled in place (no stacked copy of a 64 x 224^2 batch) and equal, bit for bit, each
    generator's torch.rand of the row's shape; no rows, no keys."""
    x = torch.rand((3, 1, 4, 4), generator=torch.Generator().manual_seed(0))
    keys = uniform_keys((3, 2, 5, 6), seeded_rows(1, SALT_RANKS, x))
    for row, g in zip(keys, seeded_rows(1, SALT_RANKS, x)):
        assert torch.equal(row, torch.rand((2, 5, 6), generator=g))
    assert uniform_keys((0, 7), []).shape == (0, 7)


@pytest.mark.parametrize("name", ["road_morf", "road_lerf"])
def test_road_noise_does_not_depend_on_batch_or_position(name):
    """ROAD's imputation noise is drawn per image (version 7): with noise, a sample's value alone equals its value in
    a batch of 6, of 4 and in the batch reversed (version 6 seeded the noise by batch position: position i of every
    batch got the same noise, so these moved)."""
    params = dict(noise=0.05, score="prob", percentages=[20, 60])
    alone = _values(name, params, tied=False, batch=1)
    assert torch.equal(_values(name, params, tied=False, batch=6), alone)
    assert torch.equal(_values(name, params, tied=False, batch=4), alone)
    assert torch.equal(_values(name, params, tied=False, order=torch.arange(5, -1, -1)), alone)
    assert not torch.equal(_values(name, dict(params, noise=0.0), tied=False), alone)  # the noise is drawn at all
