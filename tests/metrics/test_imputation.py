"""The ROAD imputation solver: both preconditioners reach the exact solution, the hole test is exact."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.linalg
import torch
import torch.nn.functional as F

from faithbench.metrics.functional.imputation import large_holes, linear_imputation
from faithbench.metrics.functional.multigrid import imputation_stencil


def _exact(x: torch.Tensor, removed: torch.Tensor) -> np.ndarray:
    """A direct sparse solve of  W_i u_i - Σ_{j removed} w_ij u_j = Σ_{j kept} w_ij x_j  (float64)."""
    shape = removed.shape
    stencil = imputation_stencil(len(shape))
    index = -np.ones(shape, dtype=np.int64)
    where = np.argwhere(removed.numpy())
    index[tuple(where.T)] = np.arange(len(where))
    values = x.double().numpy()
    out = values.copy()
    rows, cols, data = [], [], []
    rhs = np.zeros((len(where), values.shape[0]))
    for k, pos in enumerate(where):
        total = 0.0
        for offset, w in stencil:
            q = pos + np.array(offset)
            if np.any(q < 0) or np.any(q >= shape):
                continue
            total += w
            j = index[tuple(q)]
            if j >= 0:
                rows.append(k), cols.append(j), data.append(-w)
            else:
                rhs[k] += w * values[(slice(None), *q)]
        rows.append(k), cols.append(k), data.append(total)
    matrix = scipy.sparse.csc_matrix((data, (rows, cols)), shape=(len(where), len(where)))
    solution = scipy.sparse.linalg.spsolve(matrix, rhs).reshape(len(where), -1)
    out[(slice(None), *where.T)] = solution.T
    return out


def _blob(shape: tuple[int, ...], centre: tuple[float, ...], share: float) -> torch.Tensor:
    grids = torch.meshgrid(*[torch.arange(s, dtype=torch.float64) for s in shape], indexing="ij")
    distance = sum((g - c) ** 2 for g, c in zip(grids, centre))
    return distance <= torch.quantile(distance.flatten(), share)


@pytest.mark.parametrize("preconditioner", ["jacobi", "multigrid", "auto"])
@pytest.mark.parametrize("shape", [(40, 37), (14, 17, 12)])
def test_both_solvers_reach_the_direct_solution(preconditioner, shape):
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(4, 2, *shape, generator=gen)
    removed = torch.stack([_blob(shape, tuple(s / 3 for s in shape), 0.9),  # one large hole
                           _blob(shape, tuple(s / 2 for s in shape), 0.5),
                           torch.rand(shape, generator=gen) < 0.9,  # scattered
                           torch.rand(shape, generator=gen) < 0.3])
    ours = linear_imputation(x, removed, preconditioner=preconditioner)
    for i in range(4):
        exact = _exact(x[i], removed[i])
        assert np.abs(ours[i].numpy() - exact).max() < 1e-4, (preconditioner, i)
    assert torch.equal(ours[~removed[:, None].expand_as(x)], x[~removed[:, None].expand_as(x)])  # kept untouched


def test_large_holes_matches_a_dilation():
    gen = torch.Generator().manual_seed(0)
    for shape in [(6, 40, 37), (6, 20, 18, 15)]:
        pool = F.max_pool2d if len(shape) == 3 else F.max_pool3d
        for share in (0.5, 0.9, 0.97, 0.995):
            removed = torch.rand(shape, generator=gen) < share
            for radius in (1, 3, 8):
                near = pool((~removed)[:, None].float(), 2 * radius + 1, stride=1, padding=radius)[:, 0]
                expected = ((near == 0) & removed).flatten(1).any(1)
                assert torch.equal(large_holes(removed, radius), expected)


def test_auto_picks_multigrid_only_for_large_holes():
    blob = _blob((64, 64), (32.0, 32.0), 0.9)
    scattered = torch.rand(64, 64, generator=torch.Generator().manual_seed(0)) < 0.9
    assert large_holes(torch.stack([blob, scattered])).tolist() == [True, False]


def test_unknown_preconditioner_is_refused():
    with pytest.raises(ValueError, match="preconditioner"):
        linear_imputation(torch.rand(1, 1, 4, 4), torch.zeros(1, 4, 4, dtype=torch.bool), preconditioner="lu")


@pytest.mark.parametrize("preconditioner", ["jacobi", "multigrid"])
def test_a_single_kept_pixel_fills_the_image_and_nothing_kept_stays_finite(preconditioner):
    """The exact solution with one kept pixel is that pixel's value everywhere; with nothing kept
    the system is singular (the coarsest grid falls back to the pseudo-inverse) and the answer is
    its minimum-norm solution, zero."""
    x = torch.rand(2, 2, 40, 40, generator=torch.Generator().manual_seed(3))
    removed = torch.ones(2, 40, 40, dtype=torch.bool)
    removed[1, 5, 30] = False
    out = linear_imputation(x, removed, preconditioner=preconditioner)
    assert torch.equal(out[0], torch.zeros_like(out[0]))
    assert (out[1] - x[1, :, 5, 30, None, None]).abs().max() < 2e-3


def test_a_system_s_result_does_not_depend_on_the_rest_of_its_batch(monkeypatch):
    """Each system stops at its own convergence and takes the pseudo-inverse on the coarsest grid
    only if it is singular itself, so the result of an image is the same whether it is solved
    alone, with others (one of them singular: nothing kept) or in CPU chunks, up to the rounding
    of batched dot products (< 1e-6 here; when all systems stopped together, up to 2e-5)."""
    import faithbench.metrics.functional.imputation as imputation

    shape = (48, 44)
    gen = torch.Generator().manual_seed(5)
    x = torch.rand(5, 2, *shape, generator=gen)
    removed = torch.stack([_blob(shape, (16.0, 20.0), 0.9), _blob(shape, (30.0, 10.0), 0.4),
                           torch.ones(shape, dtype=torch.bool),  # singular: nothing kept
                           torch.rand(shape, generator=gen) < 0.6, torch.rand(shape, generator=gen) < 0.95])
    for preconditioner in ("auto", "multigrid", "jacobi"):
        together = linear_imputation(x, removed, preconditioner=preconditioner)
        for i in range(5):
            alone = linear_imputation(x[i:i + 1], removed[i:i + 1], preconditioner=preconditioner)
            torch.testing.assert_close(together[i:i + 1], alone, rtol=0, atol=2e-6)
        monkeypatch.setattr(imputation, "CPU_CHUNK_CELLS", 2 * x[0].numel())  # chunks of 2, 2, 1
        chunked = linear_imputation(x, removed, preconditioner=preconditioner)
        torch.testing.assert_close(chunked, together, rtol=0, atol=2e-6)
        monkeypatch.undo()


@pytest.mark.parametrize("shape", [(2, 1000), (1, 40, 40)])
def test_multigrid_on_grids_with_a_side_that_coarsens_to_one(shape):
    """A thin 2D grid or a volume of few slices: some coarse grid has a side of 1 (no neighbour
    across it), the flat-shift operator must not reach past its end; float64, against the direct
    solve (tolerance 1e-10)."""
    gen = torch.Generator().manual_seed(6)
    x = torch.rand(2, 1, *shape, generator=gen, dtype=torch.float64)
    removed = torch.stack([_blob(shape, tuple(s / 3 for s in shape), 0.9), torch.rand(shape, generator=gen) < 0.9])
    ours = linear_imputation(x, removed, preconditioner="multigrid", tol=1e-10)
    for i in range(2):
        assert np.abs(ours[i].numpy() - _exact(x[i], removed[i])).max() < 1e-8, i


def test_a_singular_system_on_the_dense_grid_leaves_its_batch_mate_alone():
    """A grid small enough to be the dense grid itself, float64: one image with nothing kept (its
    Cholesky factor has a zero pivot), one with a kept pixel; the first comes out zero, the second
    as the direct solve. A one-cell image, removed, comes out zero too (it has no neighbour)."""
    x = torch.rand(2, 1, 1, 5, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    removed = torch.ones(2, 1, 5, dtype=torch.bool)
    removed[1, 0, 2] = False
    for preconditioner in ("multigrid", "auto"):
        out = linear_imputation(x, removed, preconditioner=preconditioner, tol=1e-10)
        assert torch.equal(out[0], torch.zeros_like(out[0]))
        assert np.abs(out[1].numpy() - _exact(x[1], removed[1])).max() < 1e-8
    for preconditioner in ("jacobi", "multigrid", "auto"):  # a one-cell image, removed: no neighbour at all
        for spatial in [(1, 1), (1, 1, 1)]:
            one = linear_imputation(torch.rand(1, 2, *spatial), torch.ones(1, *spatial, dtype=torch.bool),
                                    preconditioner=preconditioner)
            assert torch.equal(one, torch.zeros_like(one)), (preconditioner, spatial)


@pytest.mark.parametrize("spatial", [(9, 7), (8, 10), (1, 5), (2, 3), (5, 7, 6)])
def test_stencil_and_grid_transfers_match_their_definitions(spatial):
    """The pad-free stencil equals a zero-padded convolution with the stencil's weights; the block
    sum P^T equals average pooling of the zero-padded grid times 2^d; the copy to blocks P equals
    nearest-neighbour upsampling, cropped, and is its adjoint (<P^T r, e> = <r, P e>); the first
    coarse operator built from the mask's parity planes equals the Galerkin product of the fine
    coefficient fields."""
    from faithbench.metrics.functional.multigrid import (FineGrid, coarsen, neighbour_sum, prolong_add, sum_pool,
                                                         twelve_stencil_sum)

    dims = len(spatial)
    gen = torch.Generator().manual_seed(4)
    v = torch.rand(3, 2, *spatial, generator=gen, dtype=torch.float64)
    kernel = torch.zeros((3,) * dims, dtype=torch.float64)
    for offset, weight in imputation_stencil(dims):
        kernel[tuple(1 + o for o in offset)] = weight
    conv = F.conv2d if dims == 2 else F.conv3d
    expected = conv(v.flatten(0, 1)[:, None], kernel[None, None], padding=1).view_as(v)
    torch.testing.assert_close(neighbour_sum(v, imputation_stencil(dims)), expected, rtol=0, atol=1e-14)
    if dims == 2:
        torch.testing.assert_close(twelve_stencil_sum(v), 12 * expected, rtol=0, atol=1e-13)

    pool = F.avg_pool2d if dims == 2 else F.avg_pool3d
    padded = F.pad(v, [p for s in reversed(spatial) for p in (0, s % 2)])
    summed = sum_pool(v)
    torch.testing.assert_close(summed, pool(padded, 2) * 2**dims, rtol=0, atol=1e-14)
    e = torch.rand(summed.shape, generator=gen, dtype=torch.float64)
    prolonged = prolong_add(torch.zeros_like(v), torch.ones_like(v[:, :1]), e, 1.0)
    nearest = F.interpolate(e, scale_factor=2, mode="nearest")[(..., *[slice(0, s) for s in spatial])]
    torch.testing.assert_close(prolonged, nearest, rtol=0, atol=0)
    torch.testing.assert_close((summed * e).sum(), (v * prolonged).sum(), rtol=1e-13, atol=0)

    fine = FineGrid((torch.rand(3, 1, *spatial, generator=gen) < 0.6).double())
    direct, galerkin = fine.coarsened(), coarsen(fine.coefficients())
    assert direct.keys() == galerkin.keys()
    for offset in direct:
        torch.testing.assert_close(direct[offset], galerkin[offset], rtol=0, atol=1e-14)
    for coefs in (direct, coarsen(direct)):  # zero where the neighbour is outside (the flat shifts rely on it)
        size = coefs[(0,) * dims].shape[2:]
        for offset, field in coefs.items():
            inside = torch.zeros(size, dtype=torch.bool)
            inside[tuple(slice(max(0, -o), s - max(0, o)) for o, s in zip(offset, size))] = True
            assert not field[..., ~inside].any(), offset
