"""The linear system of ROAD's noisy linear imputation (Rong et al. 2022), solved on x's device.

A removed pixel/voxel i takes the weighted mean of its in-image neighbours j (removed or not):
W_i u_i - Σ_{j removed} w_ij u_j = Σ_{j kept} w_ij x_j, with W_i = Σ_j w_ij. The matrix is
symmetric positive definite whenever some pixel is kept, so conjugate gradients (CG) apply; its
condition grows with the square of the largest hole (the farthest removed pixel from a kept one):

- small holes (the removed pixels scattered, as for a noisy gradient map): CG with the Jacobi
  preconditioner converges in a few dozen iterations (43 for 90 % of a 224² image removed at random);
- large holes (a smooth map, e.g. Grad-CAM, removes whole blobs): Jacobi-CG needed ~510 iterations
  (90 % removed in a Gaussian blob, 224²), so these systems get CG preconditioned by one V-cycle of
  aggregation multigrid: 2^d blocks, Galerkin coarse operators A_c = P^T A P (P: piecewise constant),
  two damped-Jacobi sweeps before and after (ω = ``JACOBI_DAMPING`` = 0.85: every grid's operator
  is diagonally dominant with non-positive off-diagonals, Galerkin coarsening by a non-negative P
  keeps that, so λ(D^-1 A) <= 2 and any ω < 1 keeps the V-cycle symmetric positive definite; on six
  test problems, 2D and 3D, 0.85 took up to one V-cycle fewer than 0.7 and 1.0 up to one fewer
  than 0.85, only in 3D; measured λ_max 1.5 / 1.29 on the fine 2D / 3D grid, 1.57-1.94 on the
  coarser ones), the coarse correction scaled by 1.8 (unsmoothed aggregation under-corrects;
  1.5-1.8 gave the fewest iterations in 2D and 3D), down to a grid of at most ``DENSE_MAX``
  cells, which is solved exactly by a dense inverse computed once. Measured on
  the shared CPU, 12 systems of 224²: 10 iterations, 7x less time than Jacobi-CG (15.0 s -> 2.2 s
  under load); on scattered holes the V-cycle costs more than it saves (1.4 s vs 1.1 s), hence the
  split. The exact coarsest solve (instead of 30 Jacobi sweeps on a 4 x 4 grid) and the separable
  2D stencil cut the tensor operations of a solve 3.6x (20605 -> 5750 dispatched operations, 12
  systems of 224², smooth-map holes; each one a kernel launch on a GPU) and its CPU time to 0.63x
  (2D) and 0.86x (3D, 4 systems of 64³) of the previous version (paired medians of 5, one thread).
  Then by cheaper operations more than fewer (2723 instead of 3131 per solve, views not counted):
  in-place updates, the fine grid's Jacobi sweep and residual fused (10 operations instead of 12),
  shifted adds into overlapping windows instead of padded copies, block sums by strided adds
  instead of ``avg_pool``, nearest-neighbour upsampling by ``interpolate``, dot products by
  ``einsum``: the CPU time went to 0.66-0.77x in 2D (0.61-0.79x for scattered holes) and
  0.81-0.86x in 3D (paired runs, medians of 7, one thread); the results equal the previous ones
  up to float rounding (below 1e-13 in float64).
  Then (ROAD version 4): the 2D stencil in four passes with integer weights (12 N), the first
  coarse operator straight from the mask's parity planes (0.36x the time of building it from the
  fine coefficient fields), coarse operators applied by shifts of the flattened grid, scratch
  tensors reused for the temporaries of the sweeps and residuals, and CPU chunks (below). Solve time
  against version 3, paired runs, medians of 5, one thread: 0.72x (12 systems of 224², smooth-map
  holes), 0.88x (scattered holes), 0.79x (12 images of 3 x 224²), 0.84x (6 systems of 64³);
  ROAD over its forwards (``benchmarks/perf/test_perf_floor_share.py``, resnet18, 4 images,
  three runs each, alternated with version 3): 1.28-1.31x instead of 1.31-1.37x on one channel,
  1.62-1.75x instead of 1.74-1.84x on three.
  Tried and left (12 systems of 224², smooth-map holes, one thread): a better first guess saves
  little, the iterations reduce the residual by about 0.3 each whatever the start (9 from
  ``pyramid_fill``; 6-8 from the exact solution's 2x-16x block means, interpolated); bilinear
  instead of piecewise-constant transfers, Galerkin, took 15-21 iterations instead of 9 (its coarse
  operators get positive off-diagonals, λ_max(D^-1 A) 2.1-2.8 > 2 / ω, and damped or l1-Jacobi
  smoothing does not make up for it). In a two-grid analysis of a 40 x 40 image with 60 % removed in
  blobs (exact coarse solve, two sweeps each side) the spectrum of B A was [0.90, 1.40] for this
  aggregation with the 1.8 scale, [0.22, 1.0] for masked bilinear and [0.96, 1.0] for smoothed
  aggregation, whose coarse operator has a 25-point stencil (24 shifted products per coarse apply
  instead of 8) and whose transfers each add a fine-grid stencil pass. W-cycles below the fine grid
  (two coarse cycles per coarse level) took 5 iterations instead of 9 in the same time (medians of
  5: 0.158 vs 0.151 s): the coarse work doubled at every level. ``torch.compile`` of the V-cycle
  (inductor, CPU) took 81 s to compile and ran slower: 28 ms against 12-15 ms eager (medians of 15).

The split is by the largest hole's radius (Chebyshev distance to the nearest kept pixel above
``SMALL_HOLE``, from box sums of an integral image). Each system (image, channel) stops on its
own, when its residual is below ``tol`` times its right-hand side; a converged system is no longer
updated, so an image's result does not depend on the images solved with it, up to the rounding of
batched dot products (in float32 below 1e-6 on 48 x 44 images, up to 3e-5 on thin ill-conditioned
grids such as 5 x 300; in float64 below 1e-12). Before version 4 all systems of a batch stopped
together, and an image's values moved by up to 2e-5 with its batch. The result does not depend
on the choice of preconditioner beyond that tolerance. On a CPU the images are solved in chunks
of at most ``CPU_CHUNK_CELLS`` cells (one image at least), which keeps a chunk's working set in
cache (measured with a 32 MB L3 cache, inside ROAD with resnet18 forwards in between): 12 images
of 3 x 224² in two chunks took 0.84x the time of one batch (2^20 against 2^21 cells); 12 images
of 1 x 224² in two chunks took 1.14x the time of one (2^19 against 2^20 cells).

Shapes: ``x (P, C, *spatial)``, ``removed (P, *spatial)`` bool; 2D or 3D. The operator and the
multigrid pieces are in :mod:`faithbench.metrics.functional.multigrid` (``JACOBI_DAMPING``,
``COARSE_SCALE``, ``DENSE_MAX``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from faithbench.metrics.functional.multigrid import FineGrid, hierarchy, sum_pool, v_cycle

SMALL_HOLE = 8  # largest hole radius (pixels) solved by Jacobi-CG; larger holes by multigrid-CG
CPU_CHUNK_CELLS = 2**20  # on a CPU, images are solved in chunks of at most this many cells of x (one image at least)


def pyramid_fill(x: Tensor, known: Tensor) -> Tensor:
    """A smooth first guess for the cells where ``known (P, 1, *spatial)`` (float 0/1) is 0, ``x
    (P, C, *spatial)``: the block means of the known values (block sums of x known over those of
    known) on a 2x coarser grid, filled there recursively where a block knows nothing, and
    interpolated back (bi/trilinear; push-pull); on a grid with a side <= 2, or with everything
    known, the mean of the known values. Its values at the known cells are not x: the solver
    masks them. Only the starting point of the solver: the result does not depend on it."""
    spatial = x.shape[2:]
    if min(spatial) <= 2 or bool(known.all()):
        mean = (x * known).flatten(2).sum(-1) / known.flatten(2).sum(-1).clamp(min=1)
        return mean[(...,) + (None,) * len(spatial)].expand_as(x)
    weight = sum_pool(known)
    coarse = sum_pool(x * known).div_(weight.clamp(min=1))  # weight: whole numbers, 0 where nothing is known
    known = (weight > 0).to(x.dtype)
    filled = torch.where(known > 0, coarse, pyramid_fill(coarse, known))
    mode = "bilinear" if len(spatial) == 2 else "trilinear"
    return F.interpolate(filled, size=tuple(spatial), mode=mode, align_corners=False)


def large_holes(removed: Tensor, radius: int = SMALL_HOLE) -> Tensor:
    """``(P,)`` bool: whether an image of ``removed (P, *spatial)`` has a removed pixel farther than
    ``radius`` (Chebyshev) from every kept one, i.e. a (2 radius + 1)^d window (clipped to the image)
    with nothing kept. Box sums of the kept pixels from an integral image."""
    dims = removed.ndim - 1
    exact = torch.float32 if removed[0].numel() < 2**24 else torch.float64  # integer sums stay exact
    kept = F.pad((~removed).to(exact), (radius + 1, radius) * dims)
    integral = kept
    for d in range(1, dims + 1):
        integral = integral.cumsum(d)
    size = removed.shape[1:]
    total = torch.zeros_like(removed, dtype=exact)
    for corner in itertools.product((0, 1), repeat=dims):
        window = tuple(slice(c * (2 * radius + 1), c * (2 * radius + 1) + s) for c, s in zip(corner, size))
        sign = -1 if (dims - sum(corner)) % 2 else 1
        total += sign * integral[(slice(None), *window)]
    return ((total == 0) & removed).flatten(1).any(1)


def _pcg(fine: FineGrid, rhs: Tensor, u: Tensor, precondition: Callable[[Tensor, Tensor | None], Tensor], tol: float,
         max_iter: int, check: int) -> Tensor:
    """Preconditioned CG from ``u`` (updated in place); the residuals are compared with ``tol``
    every ``check`` iterations. ``precondition(r, out)`` writes into ``out`` (a new tensor if
    None): the search direction and the preconditioned residual take turns in two tensors, and A p
    has one of its own, so that the iterations allocate no fine-grid vector for them (the V-cycle's
    block sums still allocate their coarser grids)."""
    shape = (*rhs.shape[:2], *[1] * (rhs.ndim - 2))
    tiny = torch.finfo(rhs.dtype).tiny

    def dot(a: Tensor, b: Tensor) -> Tensor:  # per system (sample, channel); einsum: 2x faster than (a * b).sum
        return torch.einsum("pcn,pcn->pc", a.flatten(2), b.flatten(2)).view(shape)

    r = fine.apply(u).sub_(rhs).neg_()
    z = precondition(r, None)
    p, rz, spare, ap = z, dot(r, z), None, torch.empty_like(r)
    limit = (tol * rhs.flatten(2).norm(dim=-1)).square().view(shape)
    active = torch.ones(shape, dtype=torch.bool, device=rhs.device)
    for it in range(max_iter):
        fine.apply(p, ap)
        den = dot(p, ap)
        alpha = torch.where(active & (den > 0), rz / den.clamp(min=tiny), 0.0)
        u.addcmul_(alpha, p)
        r.addcmul_(alpha, ap, value=-1)
        if it % check == check - 1:
            active &= dot(r, r) > limit
            if not bool(active.any()):
                break
        z = precondition(r, spare)
        rz_new = dot(r, z)
        beta = torch.where(rz > 0, rz_new / rz.clamp(min=tiny), 0.0)
        p, spare = z.addcmul_(beta, p), p
        rz = rz_new
    return u


@torch.no_grad()
def linear_imputation(x: Tensor, removed: Tensor, *, tol: float = 1e-5, max_iter: int | None = None,
                      preconditioner: str = "auto") -> Tensor:
    """``x (P, C, *spatial)`` with the pixels/voxels of ``removed (P, *spatial)`` (bool) replaced by
    the solution of  u_i = Σ_j w_ij v_j / Σ_j w_ij  (j: the in-image neighbours of i; v = u where
    removed, x elsewhere). Each system stops when its residual is below ``tol`` times its right-hand
    side (or after ``max_iter`` iterations, default 20 x the largest side + 100). ``preconditioner``:
    "auto" (Jacobi for images without a hole larger than ``SMALL_HOLE``, multigrid for the others),
    "jacobi" or "multigrid" for all. 2D or 3D."""
    dims = x.ndim - 2
    if dims not in (2, 3) or removed.shape != (x.shape[0], *x.shape[2:]):
        raise ValueError(f"expected x (P, C, H, W[, D]) and removed of shape {(x.shape[0], *x.shape[2:])}, "
                         f"got x {tuple(x.shape)} and removed {tuple(removed.shape)}")
    max_iter = max_iter if max_iter is not None else 20 * max(x.shape[2:]) + 100
    if preconditioner not in ("auto", "jacobi", "multigrid"):
        raise ValueError(f"expected preconditioner 'auto', 'jacobi' or 'multigrid', got {preconditioner!r}")
    if x.device.type == "cpu" and x.shape[0] > 1 and x.numel() > CPU_CHUNK_CELLS:
        size = math.ceil(x.shape[0] / math.ceil(x.numel() / CPU_CHUNK_CELLS))
        return torch.cat([linear_imputation(x[i:i + size], removed[i:i + size], tol=tol, max_iter=max_iter,
                                            preconditioner=preconditioner) for i in range(0, x.shape[0], size)])
    out = x.clone()
    large = large_holes(removed) if preconditioner == "auto" else torch.full(
        (x.shape[0],), preconditioner == "multigrid", dtype=torch.bool, device=x.device)
    for group, multigrid in ((~large, False), (large, True)):
        if not bool(group.any()):
            continue
        xs, mask = x[group], removed[group][:, None].to(x.dtype)
        fine = FineGrid(mask)
        rhs = fine.neighbours((1 - mask) * xs)
        if multigrid:
            levels = hierarchy(fine)

            def precondition(r: Tensor, out: Tensor | None) -> Tensor:
                return v_cycle(levels, r, out=out)
        else:
            def precondition(r: Tensor, out: Tensor | None) -> Tensor:
                return torch.mul(fine.inv, r, out=out)
        u = _pcg(fine, rhs, mask * pyramid_fill(xs, 1 - mask), precondition, tol, max_iter, 1 if multigrid else 8)
        out[group] = torch.where(mask > 0, u, xs)
    return out
