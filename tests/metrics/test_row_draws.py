"""Every random draw of a metric drawn per image (a follow-up of the per-image tie-breaks): random baselines,
subsets, squares, draws, input noise, smoothing noise and random_logit's other class came from ONE generator per
batch seeded by the cell's seed, so position i of every batch got the same draw and a sample's value depended on its
batch size, its position and ``--limit``. Now row i draws from ``ctx.generators(salt)[i]`` (seeded from the cell's
seed, the salt and image i's bytes): a sample's value is the same alone, in any batch and at any position."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from faithbench import create_metric
from faithbench.metrics.base import EvalContext, ForwardCounter
from faithbench.metrics.functional.faithfulness_extra import random_subsets, random_subsets_by_size
from faithbench.metrics.functional.faithfulness_regions import square_draws
from faithbench.metrics.functional.perturbation import SALT_BASELINE, deletion_curve, make_baseline, seeded
from faithbench.metrics.functional.randomization import random_logit, random_other_class
from faithbench.metrics.functional.robustness import gaussian_noise, uniform_noise
from faithbench.seeds import draw_rows, normal_draws, seeded_rows

NOISE = dict(baseline="noise")
SPECS = [("deletion_auc", dict(steps=8, **NOISE)), ("insertion_auc", dict(steps=8, baseline="uniform")),
         ("abpc", dict(steps=8, deletion_baseline="noise", insertion_baseline="uniform")),
         ("morf_aopc", dict(patch=2, **NOISE)), ("lerf_aopc", dict(patch=2, baseline="uniform")),
         ("region_deletion_correlation", dict(NOISE)),
         ("monotonicity", dict(patch=2, **NOISE)), ("irof", dict(patch=2, **NOISE)),
         ("selectivity", dict(patch=2, **NOISE)), ("faithfulness_estimate", dict(patch=2, **NOISE)),
         ("faithfulness_correlation", dict(runs=8, subset_size=20)),
         ("monotonicity_correlation", dict(patch=2, draws=3)),
         ("sensitivity_n", dict(patch=2, runs=5, fractions=[0.1, 0.3])),
         ("infidelity", dict(runs=6, patch=3)), ("infidelity", dict(runs=6, patch=3, squares="grid")),
         ("completeness", dict(NOISE)), ("non_sensitivity", dict(baseline="uniform")),
         ("max_sensitivity", dict(nr_samples=3, radius=0.2)), ("avg_sensitivity", dict(nr_samples=3, radius=0.2)),
         ("local_lipschitz", dict(nr_samples=3, std=0.1)),
         ("relative_input_stability", dict(nr_samples=3, radius=0.2, nan_if_prediction_changes=False)),
         ("relative_representation_stability", dict(nr_samples=3, radius=0.2, nan_if_prediction_changes=False,
                                                    layer="features", zeros="skip")),
         ("relative_output_stability", dict(nr_samples=3, radius=0.2, nan_if_prediction_changes=False)),
         ("smooth_mprt", dict(nr_samples=3, noise=0.3)), ("random_logit", {})]
OUTPUT = {"monotonicity": "curve"}  # its value, 0 or 1, is 0 for every draw here: its scores move
IDS = [f"{name}-{params.get('squares', '')}" if name == "infidelity" else name for name, params in SPECS]


class Head(nn.Module):
    """logit_k = Σ w_k * feats, per row: elementwise products summed per row, so a row's logits do not depend on its
    batch (a batched convolution's float32 sums can round differently by batch size, not the point here)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn((3, 3, 12, 12), generator=torch.Generator().manual_seed(0)))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return (feats[:, None] * self.w).flatten(2).sum(2)


class Model(nn.Module):
    """Three classes over the features (x, x^2, relu(x - 0.5)) of a 1 x 12 x 12 image: nonlinear in x."""

    def __init__(self) -> None:
        super().__init__()
        self.features, self.head = nn.Identity(), Head()
        self.arch_family = "cnn"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(torch.cat([x, x * x, torch.relu(x - 0.5)], dim=1)))


def explain(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The exact gradient of the target logit (per row, deterministic): w_0 + 2 x w_1 + [x > 0.5] w_2."""
    w = model.head.w.detach()[target]
    return (w[:, 0] + 2 * x[:, 0] * w[:, 1] + (x[:, 0] > 0.5) * w[:, 2]).float()


def _data() -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(11)
    x = torch.rand((6, 1, 12, 12), generator=g)
    sal = torch.rand((6, 12, 12), generator=g)
    regions = torch.zeros((3, 12, 12), dtype=torch.bool)
    regions[0, :4], regions[1, 4:8, :6], regions[2, 8:, 3:] = True, True, True
    masks = {name: regions[k].expand(6, 12, 12) for k, name in enumerate(("left", "middle", "right"))}
    return x, sal, masks


def _values(name: str, params: dict, *, batch: int = 6, order: torch.Tensor | None = None,
            seed: int = 3) -> torch.Tensor:
    """The metric's values (monotonicity: its curves) on :func:`_data` in batches of ``batch`` after reordering by
    ``order``, in the original order."""
    x, sal, masks = _data()
    order = torch.arange(len(x)) if order is None else order
    x, sal, masks = x[order], sal[order], {k: m[order] for k, m in masks.items()}
    metric, model = create_metric(name, **params), Model()
    out = []
    for i in range(0, len(x), batch):
        t = torch.ones(len(x[i: i + batch]), dtype=torch.long)
        ctx = EvalContext(model=model, x=x[i: i + batch], target=t, label=t, saliency=sal[i: i + batch],
                          masks={k: m[i: i + batch] for k, m in masks.items()}, predict=ForwardCounter(model),
                          explainer=explain, seed=seed)
        out.append(metric(ctx)[OUTPUT.get(name, "value")].double().cpu())
    return torch.cat(out)[order.argsort()]


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(), b.nan_to_num())


@pytest.mark.parametrize("name,params", SPECS, ids=IDS)
def test_value_does_not_depend_on_batch_or_position(name, params):
    """Each sample's value alone (batch 1) equals its value in batches of 6 and of 4 and in the batch reversed
    (before, the draws came from one generator per batch: these moved); the draw depends on the seed, and the same
    seed gives the same values."""
    alone = _values(name, params, batch=1)
    assert alone.isfinite().sum() >= 4  # the comparison is not one of NaNs
    assert _same(_values(name, params, batch=6), alone)
    assert _same(_values(name, params, batch=4), alone)
    assert _same(_values(name, params, order=torch.arange(5, -1, -1)), alone)
    assert _same(_values(name, params, seed=3), alone)  # repeatable
    assert not _same(_values(name, params, batch=1, seed=4), alone)  # drawn from the seed


def test_draw_rows_one_generator_is_the_batch_draw_and_rows_their_own():
    """One generator draws the whole batch bit for bit as before (the Quantus cross-checks feed it); B generators draw
    row i as the i-th generator's draw of one row, whatever the other rows."""
    x = torch.rand((3, 1, 4, 4), generator=torch.Generator().manual_seed(0))
    assert torch.equal(normal_draws((3, 2, 5), torch.Generator().manual_seed(7)),
                       torch.randn((3, 2, 5), generator=torch.Generator().manual_seed(7)))
    rows = normal_draws((3, 2, 5), seeded_rows(1, 9, x))
    for row, g in zip(rows, seeded_rows(1, 9, x)):
        assert torch.equal(row, torch.randn((2, 5), generator=g))
    assert torch.equal(normal_draws((2, 2, 5), seeded_rows(1, 9, x[1:])), rows[1:])  # a row alone: its own draw
    noisy = uniform_noise(x, 4, 0.1, seeded_rows(1, 9, x))
    assert noisy.shape == (4, 3, 1, 4, 4) and torch.equal(noisy[:, 2:], uniform_noise(x[2:], 4, 0.1,
                                                                                       seeded_rows(1, 9, x[2:])))
    one = uniform_noise(x, 4, 0.1, torch.Generator().manual_seed(5))
    assert torch.equal(one, x[None] + (torch.rand((4, 3, 1, 4, 4), generator=torch.Generator().manual_seed(5))
                                       * 2 - 1) * 0.1)
    assert torch.equal(gaussian_noise(x, 2, 0.1, seeded_rows(2, 9, x))[:, :1],
                       gaussian_noise(x[:1], 2, 0.1, seeded_rows(2, 9, x[:1])))
    with pytest.raises(ValueError, match="one generator per row, 3, got 2"):
        draw_rows(seeded_rows(1, 9, x[:2]), 3, lambda g, n: torch.rand(n, generator=g))
    assert draw_rows([], 0, lambda g, n: torch.rand((n, 2), generator=g)).shape == (0, 2)


def test_subsets_squares_and_classes_per_row():
    """random_subsets (and by size), square_draws and random_other_class: sample i's draw from the i-th generator is
    the draw of a batch of one; one generator keeps the batch draw."""
    x = torch.rand((4, 1, 6, 6), generator=torch.Generator().manual_seed(0))
    gens = lambda: seeded_rows(3, 101, x)  # noqa: E731 - fresh generators per call
    subsets = random_subsets(4, 5, 36, 7, gens())
    assert subsets.shape == (4, 5, 7) and torch.equal(subsets[3:], random_subsets(1, 5, 36, 7, gens()[3:]))
    assert all(len(set(s.tolist())) == 7 for s in subsets.flatten(0, 1))  # without replacement in a subset
    by_size = random_subsets_by_size(4, 5, 36, [2, 9], gens())
    alone = random_subsets_by_size(1, 5, 36, [2, 9], gens()[2:3])
    assert [s.shape for s in by_size] == [(4, 5, 2), (4, 5, 9)]
    assert torch.equal(by_size[0][2:3], alone[0]) and torch.equal(by_size[1][2:3], alone[1])
    old = torch.stack([torch.rand((4, 36), generator=g).topk(7, dim=-1).indices
                       for g in [torch.Generator().manual_seed(1)] for _ in range(5)], dim=1)
    assert torch.equal(random_subsets(4, 5, 36, 7, torch.Generator().manual_seed(1)), old)
    corners, sides = square_draws((6, 6), 3, 4, 8, gens())
    c1, s1 = square_draws((6, 6), 3, 1, 8, gens()[1])
    assert torch.equal(corners[1:2], c1) and torch.equal(sides[1:2], s1)
    assert ((corners + sides[..., None]) <= 6).all() and sides.min() >= 1 and sides.max() <= 3
    target = torch.tensor([0, 1, 2, 0])
    other = random_other_class(target, 3, gens())
    assert (other != target).all() and other[3] == random_other_class(target[3:], 3, gens()[3:])[0]


def test_pure_functions_reproduce_the_classes_with_random_draws():
    """The functional API draws per image too (``seeded_rows(seed, salt, x)``): deletion_curve with a noise baseline
    and random_logit equal the classes."""
    x, sal, _ = _data()
    model, target = Model(), torch.ones(6, dtype=torch.long)
    ctx = EvalContext(model=model, x=x, target=target, label=target, saliency=sal, masks={},
                      predict=ForwardCounter(model), explainer=explain, seed=5)
    curve, _ = deletion_curve(model, x, target, sal, steps=8, baseline="noise", seed=5)
    assert torch.equal(create_metric("deletion_auc", steps=8, baseline="noise")(ctx)["curve"], curve)
    value = random_logit(model, x, target, sal, explain, num_classes=3, seed=5)
    assert _same(create_metric("random_logit")(ctx)["value"], value)
    base = make_baseline(x, "noise", generator=seeded_rows(5, SALT_BASELINE, x))
    assert torch.equal(base[4:], make_baseline(x[4:], "noise", generator=seeded_rows(5, SALT_BASELINE, x[4:])))
    assert not torch.equal(base, make_baseline(x, "noise", generator=seeded(5, SALT_BASELINE)))  # not the batch's


def test_draw_rows_refuses_a_draw_of_another_number_of_rows():
    """A held-out review (plugins10 L2): a draw returning 2 rows per generator gave a (10, 3) tensor for 5 rows."""
    from faithbench.seeds import draw_rows

    gens = [torch.Generator().manual_seed(i) for i in range(5)]
    with pytest.raises(ValueError, match=r"expected draw\(g, n\) to return n rows along dim 0, got 10 for 5"):
        draw_rows(gens, 5, lambda g, n: torch.rand((2 * n, 3), generator=g))
    with pytest.raises(ValueError, match="got 10 for 5"):
        draw_rows(torch.Generator(), 5, lambda g, n: torch.rand((2 * n, 3), generator=g))
    assert draw_rows(gens, 5, lambda g, n: torch.rand((n, 3), generator=g)).shape == (5, 3)
    assert draw_rows(gens[:0], 0, lambda g, n: torch.rand((n, 3), generator=g)).shape == (0, 3)


def test_context_generators_equal_seeded_rows_and_hash_the_images_once():
    """EvalContext.generators keeps the rows' CRCs for the batch: the same generators as seeded_rows for any salt,
    bit for bit, and the images come to the host once, whatever the number of salts (morf_aopc's ranks and
    uniform baseline hashed them twice)."""
    from unittest import mock

    import faithbench.seeds as seeds
    from faithbench.seeds import seeded_rows

    model = nn.Linear(3, 2)
    x = torch.rand(5, 1, 8, 8)
    t = torch.zeros(5, dtype=torch.long)
    ctx = EvalContext(model=model, x=x, target=t, label=t, saliency=torch.rand(5, 8, 8), masks={},
                      predict=ForwardCounter(model), seed=7)
    with mock.patch("faithbench.metrics.base.row_crcs", wraps=seeds.row_crcs) as hashed:
        for salt in (0, 3, 11, 3):
            assert [g.initial_seed() for g in ctx.generators(salt)] == [g.initial_seed()
                                                                       for g in seeded_rows(7, salt, x)]
    assert hashed.call_count == 1
