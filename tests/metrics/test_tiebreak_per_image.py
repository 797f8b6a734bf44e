"""Tie-breaks drawn per image (a held-out review, local3d D1/D2): a constant map scores at chance over the samples
of a run, a sample's value does not depend on its batch, and the pure functions' default draw is seeded."""

from __future__ import annotations

import math

import pytest
import torch

from faithbench.metrics import PointingGame, RelevanceRank, TopKIntersection
from faithbench.metrics.base import EvalContext
from faithbench.metrics.chexlocalize import CheXlocalizeHit
from faithbench.metrics.functional import iou_top_k, pointing_game, relevance_rank, top_k_intersection
from faithbench.metrics.functional.chexlocalize import chexlocalize_hit
from faithbench.metrics.functional.temporal import visit_pointing_game
from faithbench.metrics.localization import IoUTop10
from faithbench.seeds import image_seed, row_generators, uniform_keys

SHAPE = (8, 16, 16)


def _organs(n: int, seed: int = 0) -> torch.Tensor:
    """``n`` boxes of 4 x 6 x 6 jittered by +-3 voxels around the volume's centre (area 144 / 2048 = 0.0703),
    as organ masks: every mask covers the centre's neighbourhood, none the corners."""
    g = torch.Generator().manual_seed(seed)
    masks = torch.zeros(n, *SHAPE, dtype=torch.bool)
    for i, (dz, dy, dx) in enumerate(torch.randint(-2, 3, (n, 3), generator=g).tolist()):
        masks[i, 2 + dz: 6 + dz, 5 + dy: 11 + dy, 5 + dx: 11 + dx] = True
    return masks


def _images(n: int, seed: int = 1) -> torch.Tensor:
    return torch.rand((n, 1, *SHAPE), generator=torch.Generator().manual_seed(seed))


def _batched(metric, x: torch.Tensor, saliency: torch.Tensor, masks: torch.Tensor, *, batch: int, seed: int,
             make_ctx, model) -> torch.Tensor:
    """The metric over ``x`` in batches of ``batch``, each batch's context seeded ``seed`` (as the runner's cell)."""
    out = []
    for i in range(0, len(x), batch):
        sl = slice(i, i + batch)
        ctx = make_ctx(model, x[sl], saliency[sl], masks={"lesion": masks[sl]}, seed=seed)
        out.append(metric(ctx)["value"])
    return torch.cat(out)


@pytest.mark.parametrize("metric", [PointingGame(), CheXlocalizeHit()], ids=["pointing_game", "chexlocalize_hit"])
def test_constant_maps_score_at_chance_in_every_run(metric, make_ctx, linear_logit):
    """300 all-zero maps against organ masks, batch size 1, seeds 0-3: every run's mean hit within 4 SE of the
    mean area fraction (0.0703). With one generator per batch every sample picked the same voxel, so a run
    scored 0 (the voxel outside the centre) or far above chance (inside); the review saw 0.0 to 0.75."""
    n = 300
    x, masks = _images(n), _organs(n)
    saliency = torch.zeros(n, *SHAPE)
    model = linear_logit(torch.ones(1, 1, *SHAPE))
    chance = masks.flatten(1).float().mean().item()
    assert chance == pytest.approx(144 / 2048)
    se = math.sqrt(chance * (1 - chance) / n)
    for seed in range(4):
        mean = _batched(metric, x, saliency, masks, batch=1, seed=seed, make_ctx=make_ctx, model=model).mean().item()
        assert abs(mean - chance) < 4 * se, (seed, mean, chance)


@pytest.mark.parametrize("metric", [PointingGame(), RelevanceRank(), IoUTop10(), TopKIntersection(fraction=0.05),
                                    CheXlocalizeHit()],
                         ids=["pointing_game", "relevance_rank", "iou_top10", "top_k_intersection", "chexlocalize_hit"])
def test_value_does_not_depend_on_batch_or_position(metric, make_ctx, linear_logit):
    """Maps tied in blocks (4 levels): each sample's value alone (batch size 1) equals its value in a batch of 12,
    and in that batch reversed."""
    n = 12
    x, masks = _images(n, seed=3), _organs(n, seed=4)
    saliency = torch.randint(0, 4, (n, *SHAPE), generator=torch.Generator().manual_seed(5)).float()
    model = linear_logit(torch.ones(1, 1, *SHAPE))
    alone = _batched(metric, x, saliency, masks, batch=1, seed=7, make_ctx=make_ctx, model=model)
    together = _batched(metric, x, saliency, masks, batch=n, seed=7, make_ctx=make_ctx, model=model)
    rev = torch.arange(n - 1, -1, -1)
    reversed_ = _batched(metric, x[rev], saliency[rev], masks[rev], batch=n, seed=7, make_ctx=make_ctx, model=model)
    assert torch.equal(alone, together)
    assert torch.equal(reversed_[rev], together)


def test_untied_maps_do_not_depend_on_the_draw():
    """A map without ties has one answer: the per-row draws, one batch draw and the default give it alike."""
    n = 16
    masks = _organs(n, seed=2)
    saliency = torch.rand((n, *SHAPE), generator=torch.Generator().manual_seed(9))
    per_row = row_generators(3, _images(n))
    one = torch.Generator().manual_seed(11)
    for fn in (pointing_game, relevance_rank, lambda s, m, generator=None: iou_top_k(s, m, percent=10,
                                                                                     generator=generator),
               lambda s, m, generator=None: top_k_intersection(s, m, 50, generator=generator)):
        default = fn(saliency, masks)
        assert torch.equal(fn(saliency, masks, generator=per_row), default)
        assert torch.equal(fn(saliency, masks, generator=one), default)
    top = saliency.flatten(1).argmax(1)
    assert torch.equal(pointing_game(saliency, masks), masks.flatten(1).gather(1, top[:, None])[:, 0].float())


def test_pure_functions_default_is_seeded_and_per_row():
    """Review D2: three calls on the same tied maps gave three results (torch's global generator). Now the default
    seeds each row from 0 and its map and mask: the same value on every call, whatever the global generator's
    state, and a row alone gives what it gives in the batch."""
    saliency = torch.zeros(4, *SHAPE)
    masks = _organs(4, seed=6)
    masks[:, :4] = True  # half of each volume, and the organ box: ties land in it about half the time
    calls = []
    for state in (0, 1, 2):
        torch.manual_seed(state)
        calls.append((pointing_game(saliency, masks), relevance_rank(saliency, masks),
                      chexlocalize_hit(saliency, masks), top_k_intersection(saliency, masks, 100)))
    for later in calls[1:]:
        for a, b in zip(calls[0], later):
            assert torch.equal(a, b)
    for i in range(4):
        assert torch.equal(pointing_game(saliency[i:i + 1], masks[i:i + 1]), calls[0][0][i:i + 1])
        assert torch.equal(relevance_rank(saliency[i:i + 1], masks[i:i + 1]), calls[0][1][i:i + 1])


def test_pure_default_constant_maps_at_chance():
    """The default draw, seeded per row from (map, mask): 400 all-zero maps against 400 different organ masks
    hit at the mean area fraction (within 4 SE), not all at one voxel."""
    n = 400
    masks = _organs(n, seed=8)
    chance = masks.flatten(1).float().mean().item()
    mean = pointing_game(torch.zeros(n, *SHAPE), masks).mean().item()
    assert abs(mean - chance) < 4 * math.sqrt(chance * (1 - chance) / n)


def test_row_generators_and_uniform_keys():
    """A row's generator is seeded by image_seed of its bytes (the explainers' helper): the same row gets the same
    draw in any batch; one generator still draws the whole batch at once (as before: explicit generators keep
    their values)."""
    x = _images(3)
    gens = row_generators(5, x)
    alone = row_generators(5, x[2:])
    assert torch.equal(uniform_keys((3, 7), gens)[2], uniform_keys((1, 7), alone)[0])
    assert torch.equal(torch.rand(7, generator=torch.Generator().manual_seed(image_seed(5, x[0]))),
                       uniform_keys((3, 7), row_generators(5, x))[0])
    assert torch.equal(uniform_keys((3, 7), torch.Generator().manual_seed(1)),
                       torch.rand((3, 7), generator=torch.Generator().manual_seed(1)))
    with pytest.raises(ValueError, match="expected one generator per row, 3, got 2"):
        uniform_keys((3, 7), gens[:2])


def test_visit_pointing_game_per_sequence():
    """Per-visit pointing game with a generator per sequence: a sequence alone equals it in a batch."""
    b, t = 6, 3
    saliency = torch.zeros(b, t, 8, 8)
    masks = torch.zeros(b, t, 8, 8, dtype=torch.bool)
    masks[:, :, 2:6, 2:6] = True
    x = torch.rand((b, 1, t, 8, 8), generator=torch.Generator().manual_seed(0))
    batch, _ = visit_pointing_game(saliency, masks, generator=row_generators(1, x))
    for i in range(b):
        one, _ = visit_pointing_game(saliency[i:i + 1], masks[i:i + 1], generator=row_generators(1, x[i:i + 1]))
        assert torch.equal(one, batch[i:i + 1])


def test_eval_context_generators_follow_the_image(make_ctx, linear_logit):
    x = _images(4)
    model = linear_logit(torch.ones(1, 1, *SHAPE))
    ctx: EvalContext = make_ctx(model, x, torch.zeros(4, *SHAPE), seed=3)
    moved: EvalContext = make_ctx(model, x[[3, 2, 1, 0]], torch.zeros(4, *SHAPE), seed=3)
    draws = uniform_keys((4, 5), ctx.generators(9))
    assert torch.equal(uniform_keys((4, 5), moved.generators(9)), draws[[3, 2, 1, 0]])
    assert not torch.equal(uniform_keys((4, 5), make_ctx(model, x, torch.zeros(4, *SHAPE), seed=4).generators(9)),
                           draws)


def test_chexlocalize_iou_chance_is_a_ratio_of_expectations_below_the_mean_iou():
    """Review local3d D3, the figures the docs quote: k = 50 voxels, |M| = 20 on 8 x 16 x 16, the chance 0.00702 is
    below the exact expected IoU 0.00712 (|A ∩ M| hypergeometric); k = |M| = 1 gives 1 / (2N - 1), half of 1 / N."""
    from scipy.stats import hypergeom

    from faithbench.metrics.functional.chexlocalize import random_iou_chance

    def sets(k: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        seg, mask = torch.zeros(1, 2048, dtype=torch.bool), torch.zeros(1, 2048, dtype=torch.bool)
        seg[0, :k], mask[0, 100:100 + size] = True, True
        return seg.reshape(1, *SHAPE), mask.reshape(1, *SHAPE)

    chance = random_iou_chance(*sets(50, 20)).item()
    inter = torch.arange(21, dtype=torch.float64)
    exact = (torch.from_numpy(hypergeom(2048, 20, 50).pmf(inter.numpy())) * inter / (70 - inter)).sum().item()
    assert chance == pytest.approx(0.0070244, abs=1e-7)
    assert exact == pytest.approx(0.0071242, abs=1e-7)
    assert random_iou_chance(*sets(1, 1)).item() == pytest.approx(1 / 4095, rel=1e-6)
