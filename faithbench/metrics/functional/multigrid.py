"""The linear system of ROAD's noisy linear imputation and its aggregation-multigrid preconditioner
(:mod:`faithbench.metrics.functional.imputation` solves it and records the design and its
measurements): the neighbour sums of the stencil, the fine operator, its Galerkin coarse operators
down to a dense coarsest grid, and one V-cycle.

Shapes: vectors ``(P, C, *spatial)`` (P images, each with its own operator, which its C channels
share), masks and coefficient fields ``(P, 1, *spatial)``; 2D or 3D.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import Tensor

DENSE_MAX = 256  # multigrid coarsens until a grid has at most this many cells, then solves it exactly
COARSE_SCALE = 1.8  # over-correction of the aggregation coarse grid
JACOBI_DAMPING = 0.85  # < 1: A is diagonally dominant on every grid, so ω λ(D^-1 A) <= 2 ω < 2 (SPD V-cycle)


def imputation_stencil(dims: int) -> list[tuple[tuple[int, ...], float]]:
    """The neighbour weights: (offset, weight) for the 3^d - 1 neighbours, 1 / |offset|^2 normalised
    to sum 1 (2D: 1/6 direct, 1/12 diagonal, as Rong et al.)."""
    offsets = [o for o in itertools.product((-1, 0, 1), repeat=dims) if any(o)]
    raw = [1.0 / sum(c * c for c in o) for o in offsets]
    total = sum(raw)
    return [(o, w / total) for o, w in zip(offsets, raw)]


def neighbour_sum(v: Tensor, stencil: list[tuple[tuple[int, ...], float]], out: Tensor | None = None) -> Tensor:
    """Σ_j w_j v(i + offset_j) over the in-image neighbours (zero outside), ``(P, C, *spatial)``,
    into ``out`` if given. Shifted adds into the overlapping windows (no padded copy): on a CPU
    about 4x faster than a depthwise convolution (measured, 12 x 3 x 224^2)."""
    out = torch.zeros_like(v) if out is None else out.zero_()
    for offset, weight in stencil:
        dst, src = _shift(offset, v.shape[2:])
        out[dst].add_(v[src], alpha=weight)
    return out


def twelve_stencil_sum(v: Tensor, out: Tensor | None = None, work: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """12 x :func:`neighbour_sum` with the 2D :func:`imputation_stencil`, ``v (P, C, H, W)``, whose
    weights times 12 are integers:
    12 N = [1 2 1] ⊗ [1 2 1] - 4 δ = b(j - 1) + b(j + 1) + 2 a, with a(i) = v(i - 1) + v(i + 1) along
    the rows and b = a + 2 v. Four passes over the grid instead of the seven of the separable form
    (on a CPU 0.75x its time, 12 x 1 x 224²). Into ``out`` if given; ``work``: two tensors like
    ``v`` for a and b (new ones if None)."""
    a_out, b_out = work if work is not None else (None, None)
    a = _pair_sum(v, -2, a_out)
    b = torch.add(a, v, alpha=2, out=b_out)
    return _pair_sum(b, -1, out).add_(a, alpha=2)


def _pair_sum(v: Tensor, dim: int, out: Tensor | None = None) -> Tensor:
    """v(i - 1) + v(i + 1) along ``dim`` (zero outside the grid), shaped like ``v``, into ``out`` (a
    new tensor if None)."""
    n, out = v.shape[dim], torch.empty_like(v) if out is None else out
    if n < 2:
        return out.zero_()
    torch.add(v.narrow(dim, 0, n - 2), v.narrow(dim, 2, n - 2), out=out.narrow(dim, 1, n - 2))
    out.select(dim, 0).copy_(v.select(dim, 1))
    out.select(dim, n - 1).copy_(v.select(dim, n - 2))
    return out


def _window(offset: tuple[int, ...], spatial: torch.Size) -> tuple[slice, ...]:
    return tuple(slice(1 + o, 1 + o + s) for o, s in zip(offset, spatial))


def _shift(offset: tuple[int, ...], spatial: torch.Size) -> tuple[tuple, tuple]:
    """Index pairs ``(dst, src)`` with ``out[dst]`` at i and ``v[src]`` at i + offset, over the i
    whose neighbour i + offset is inside the grid."""
    dst = tuple(slice(max(0, -o), s - max(0, o)) for o, s in zip(offset, spatial))
    src = tuple(slice(max(0, o), s - max(0, -o)) for o, s in zip(offset, spatial))
    return (..., *dst), (..., *src)


class Scratch:
    """Tensors that one solve reuses between calls, by name. On a CPU a new tensor of a grid's size
    can be memory that the allocator maps anew, whose page faults cost more than the arithmetic on
    it: a solve of 12 systems of 224² alone made 3992 page faults instead of 10122, 157 instead of
    180 ms (one thread; inside ROAD, after the network's forwards had left the allocator with a
    higher mmap threshold, the difference was within the noise)."""

    def __init__(self) -> None:
        self.tensors: dict[str, Tensor] = {}

    def __call__(self, name: str, like: Tensor) -> Tensor:
        """The tensor ``name``, uninitialised, of ``like``'s shape, dtype and device."""
        t = self.tensors.get(name)
        if t is None or t.shape != like.shape or t.dtype != like.dtype or t.device != like.device:
            t = self.tensors[name] = torch.empty_like(like, memory_format=torch.contiguous_format)
        return t


class FineGrid:
    """The operator A u = M (W u - N u) on the removed set M (u is zero elsewhere). The neighbour
    sums are k N (:meth:`scaled_sum`; k = 12 in 2D, where k N has integer weights, 1 in 3D); the
    fields below fold 1 / k in, so that no operation is added for it."""

    def __init__(self, mask: Tensor) -> None:
        self.mask, self.stencil, self.scratch = mask, imputation_stencil(mask.ndim - 2), Scratch()
        self.scale = k = 12.0 if mask.ndim == 4 else 1.0
        scaled_weight = self.scaled_sum(torch.ones_like(mask[:1]))  # k W
        self.inv = torch.where(scaled_weight > 0, mask * k / scaled_weight, 0.0)  # M / W (W = 0: a 1-cell grid)
        self.damped = JACOBI_DAMPING * self.inv
        self.diagonal = mask * scaled_weight / k  # M W
        self.scaled_weight, self.scaled_mask = scaled_weight, mask / k
        self.sweep_gain = self.damped / k

    def scaled_sum(self, v: Tensor, out: Tensor | None = None) -> Tensor:
        """k N v, into ``out`` if given."""
        if v.ndim == 4:
            return twelve_stencil_sum(v, out, (self.scratch("a", v), self.scratch("b", v)))
        return neighbour_sum(v, self.stencil, out)

    def neighbours(self, v: Tensor) -> Tensor:
        """M N v."""
        return self.scaled_sum(v).mul_(self.scaled_mask)

    def apply(self, u: Tensor, out: Tensor | None = None) -> Tensor:
        """A u, into ``out`` if given."""
        return self.scaled_sum(u, out).neg_().addcmul_(self.scaled_weight, u).mul_(self.scaled_mask)

    def residual(self, r: Tensor, e: Tensor) -> Tensor:
        """r - A e = r + M N e - M W e, in a scratch tensor (valid until the next sweep or residual)."""
        out = self.scaled_sum(e, self.scratch("update", e)).mul_(self.scaled_mask)
        return out.add_(r).addcmul_(self.diagonal, e, value=-1)

    def sweep(self, r: Tensor, e: Tensor) -> None:
        """One damped-Jacobi sweep in place, e += ω M / W (r - A e), for e zero outside the mask:
        e = (1 - ω) e + ω M / (k W) (k r + k N e)."""
        update = self.scaled_sum(e, self.scratch("update", e)).add_(r, alpha=self.scale)
        e.mul_(1 - JACOBI_DAMPING).addcmul_(self.sweep_gain, update)

    def coefficients(self) -> dict[tuple[int, ...], Tensor]:
        """A as fields: ``c[o](i)`` multiplies ``u(i + o)``."""
        m, dims = self.mask, self.mask.ndim - 2
        coefs = {(0,) * dims: self.diagonal}
        for o, w in self.stencil:
            dst, src = _shift(o, m.shape[2:])
            coefs[o] = torch.zeros_like(m)
            coefs[o][dst].addcmul_(m[dst], m[src], value=-w)
        return coefs

    def coarsened(self) -> dict[tuple[int, ...], Tensor]:
        """P^T A P, as :func:`coarsen` of :meth:`coefficients`, straight from the parity planes
        m_p(I) = m(2 I + p) of the mask (zero-padded to even sides), without the fine fields: the
        coupling of i = 2 I + p with i + o = 2 (I + O) + q (2 O + q = p + o) adds -w_o m_p(I)
        m_q(I + O) to the coarse coefficient of offset O at I, and the diagonal of i adds
        (M W)(2 I + p) to that of I. On a CPU 0.36x the time of the two steps (6 x 224², 2 x 64³).
        Fields ``(P, 1, *ceil(spatial / 2))``."""
        dims = self.mask.ndim - 2
        pad = [p for s in reversed(self.mask.shape[2:]) for p in (0, s % 2)]
        parities = list(itertools.product((0, 1), repeat=dims))

        def planes(field: Tensor) -> dict[tuple[int, ...], Tensor]:
            padded = F.pad(field, pad)
            return {p: padded[(..., *[slice(b, None, 2) for b in p])].contiguous() for p in parities}

        mask, diagonal = planes(self.mask), planes(self.diagonal)
        centre = (0,) * dims
        out = {o: torch.zeros_like(mask[centre]) for o in itertools.product((-1, 0, 1), repeat=dims)}
        for p in parities:
            out[centre].add_(diagonal[p])
            for o, w in self.stencil:
                target = tuple((a + b) // 2 for a, b in zip(p, o))
                dst, src = _shift(target, mask[centre].shape[2:])
                out[target][dst].addcmul_(mask[p][dst], mask[tuple((a + b) % 2 for a, b in zip(p, o))][src], value=-w)
        return out


class CoarseGrid:
    """A Galerkin coarse operator: a 3^d-point stencil with coefficient fields. The fields vanish
    where the neighbour is outside the grid, so the operator is applied by shifts of the flattened
    grid (each a contiguous range; a shift that wraps to another row or plane meets a zero
    coefficient) instead of d-dimensional windows: on a CPU 0.5-0.86x their time (2D and 3D)."""

    def __init__(self, coefs: dict[tuple[int, ...], Tensor], mask: Tensor) -> None:
        self.mask, spatial, self.scratch = mask, mask.shape[2:], Scratch()
        centre = (0,) * len(spatial)
        diagonal = coefs[centre]
        tiny = torch.finfo(diagonal.dtype).tiny
        self.damped = torch.where(diagonal > 0, JACOBI_DAMPING / diagonal.clamp(min=tiny), 0.0)
        strides = [math.prod(spatial[d + 1:]) for d in range(len(spatial))]
        self.diagonal = diagonal.flatten(2)
        # offsets across a side of 1 have zero fields, and their flat shift could pass the grid's end
        self.shifted = [(sum(a * b for a, b in zip(o, strides)), c.flatten(2)) for o, c in coefs.items()
                        if o != centre and all(d == 0 or size > 1 for d, size in zip(o, spatial))]

    def apply(self, u: Tensor) -> Tensor:
        """A u for ``u (P, C, *spatial)``, in a scratch tensor (valid until the next call)."""
        flat = u.flatten(2)
        n = flat.shape[-1]
        out = torch.mul(self.diagonal, flat, out=self.scratch("apply", flat))
        for shift, c in self.shifted:  # out(i) += c(i) u(i + shift) over the i with i + shift in the grid
            if shift > 0:
                out[..., :n - shift].addcmul_(c[..., :n - shift], flat[..., shift:])
            else:
                out[..., -shift:].addcmul_(c[..., -shift:], flat[..., :n + shift])
        return out.view_as(u)

    def residual(self, r: Tensor, e: Tensor) -> Tensor:
        """r - A e, in a scratch tensor (valid until the next call)."""
        return self.apply(e).sub_(r).neg_()

    def sweep(self, r: Tensor, e: Tensor) -> None:
        """One damped-Jacobi sweep in place: e += ω D^-1 (r - A e)."""
        e.addcmul_(self.damped, self.apply(e).sub_(r), value=-1)


def sum_pool(v: Tensor) -> Tensor:
    """Sums over 2^d blocks (odd sides padded with zeros): P^T for the piecewise-constant P. By
    strided adds, one dimension at a time: on a CPU 7x faster than ``avg_pool2d`` (0.17 vs 1.27 ms
    for 12 x 1 x 224², one thread)."""
    for dim in range(2, v.ndim):
        even, odd = v[_step(dim)], v[_step(dim, 1)]  # ceil(n / 2) and floor(n / 2) slices
        if v.shape[dim] % 2:
            v = even.clone()
            v.narrow(dim, 0, odd.shape[dim]).add_(odd)
        else:
            v = even + odd
    return v


def _step(dim: int, start: int = 0) -> tuple[slice, ...]:
    return (*[slice(None)] * dim, slice(start, None, 2))


def prolong_add(e: Tensor, mask: Tensor, coarse: Tensor, scale: float) -> Tensor:
    """e += scale M P coarse, in place, for ``e (P, C, *spatial)``, ``mask (P, 1, *spatial)`` and
    ``coarse (P, C, *ceil(spatial / 2))``: each coarse value added to the masked cells of its 2^d block
    (P copies it to the block; a block cut by an odd side is cropped). By 2^d strided adds, one per
    position in the block, without an upsampled copy: on a CPU 0.23x the time of ``interpolate`` and
    an add when the new tensor's page faults hit (12 x 224²), 1.2x when they did not (6 x 3 x 224²);
    a whole solve took the same time either way when its allocations did not fault."""
    for parity in itertools.product((0, 1), repeat=e.ndim - 2):
        cells = (..., *[slice(b, None, 2) for b in parity])
        block = e[cells]
        block.addcmul_(mask[cells], coarse[(..., *[slice(0, s) for s in block.shape[2:]])], value=scale)
    return e


def coarsen(coefs: dict[tuple[int, ...], Tensor]) -> dict[tuple[int, ...], Tensor]:
    """A_c = P^T A P for 2^d blocks: the coefficient of fine offset o at parity p goes to coarse
    offset floor((p + o) / 2)."""
    first = next(iter(coefs.values()))
    dims = first.ndim - 2
    pad = [p for s in reversed(first.shape[2:]) for p in (0, s % 2)]
    size = [(s + 1) // 2 for s in first.shape[2:]]
    split = [d for s in size for d in (s, 2)]
    order = [0, 1, *range(3, 2 * dims + 2, 2), *range(2, 2 * dims + 2, 2)]
    planes = {o: F.pad(c, pad).view(*c.shape[:2], *split).permute(order).contiguous() for o, c in coefs.items()}
    out: dict[tuple[int, ...], Tensor] = {}
    for parity in itertools.product((0, 1), repeat=dims):  # planes[o][:, :, *parity]: the fine cells of that parity
        for o, plane in planes.items():
            target = tuple((p + d) // 2 for p, d in zip(parity, o))
            sub = plane[(slice(None), slice(None), *parity)]
            if target in out:
                out[target].add_(sub)
            else:
                out[target] = sub.clone()
    return out


def _neighbour_index(spatial: torch.Size) -> Tensor:
    """``(n, 3^d)``: the flat index of each cell's neighbour at each offset (product order), n
    where the neighbour is outside the grid."""
    n = math.prod(spatial)
    grid = F.pad(torch.arange(n, dtype=torch.float64).view(1, 1, *spatial), (1, 1) * len(spatial), value=n)[0, 0]
    offsets = itertools.product((-1, 0, 1), repeat=len(spatial))
    return torch.stack([grid[_window(o, spatial)].reshape(n) for o in offsets], 1).long()


class DenseGrid:
    """The coarsest grid, solved exactly: its 3^d-point operator as a dense ``(P, n, n)`` matrix,
    inverted once (Cholesky; the pseudo-inverse for a system whose Cholesky factorisation fails,
    e.g. nothing kept). Cells outside the mask get an identity row, and zero rows in the inverse."""

    def __init__(self, coefs: dict[tuple[int, ...], Tensor], mask: Tensor) -> None:
        p, spatial = mask.shape[0], mask.shape[2:]
        n = math.prod(spatial)
        index = _neighbour_index(spatial).to(mask.device).expand(p, n, -1)
        values = torch.stack([coefs[o].reshape(p, n) for o in itertools.product((-1, 0, 1), repeat=len(spatial))], -1)
        matrix = mask.new_zeros(p, n, n + 1).scatter_add_(2, index, values)[..., :n]
        inside = mask.reshape(p, n)
        matrix = matrix + torch.diag_embed(1 - inside)
        factor, info = torch.linalg.cholesky_ex(matrix)
        singular = info != 0  # their factors may hold zero pivots, which cholesky_inverse refuses
        eye = torch.eye(n, dtype=matrix.dtype, device=matrix.device)
        inverse = torch.cholesky_inverse(torch.where(singular[:, None, None], eye, factor))
        if bool(singular.any()):
            inverse[singular] = torch.linalg.pinv(matrix[singular], hermitian=True)
        self.inverse = inverse * inside[:, :, None] * inside[:, None, :]
        self.mask = mask

    def solve(self, r: Tensor) -> Tensor:
        """A^-1 r for ``r (P, C, *spatial)`` (the inverse is symmetric: r^T A^-1 per channel)."""
        return (r.flatten(2) @ self.inverse).view_as(r)


def hierarchy(fine: FineGrid) -> list[FineGrid | CoarseGrid | DenseGrid]:
    """The grids from the fine one, 2^d-block aggregates down to at most ``DENSE_MAX`` cells,
    that last one solved exactly."""
    levels: list[FineGrid | CoarseGrid | DenseGrid] = [fine]
    coefs, mask = None, fine.mask
    while math.prod(mask.shape[2:]) > DENSE_MAX:
        coefs = fine.coarsened() if coefs is None else coarsen(coefs)
        mask = (sum_pool(mask) > 0).to(mask.dtype)
        levels.append(CoarseGrid(coefs, mask))
    if coefs is None:  # the fine grid is small enough itself
        coefs = fine.coefficients()
    levels[-1] = DenseGrid(coefs, mask)
    return levels


def v_cycle(levels: list[FineGrid | CoarseGrid | DenseGrid], r: Tensor, level: int = 0,
            out: Tensor | None = None) -> Tensor:
    """One V-cycle from zero: a symmetric linear preconditioner (same pre- and post-sweeps, an
    exact solve on the coarsest grid), ``r (P, C, *spatial)`` -> like ``r``. The result goes into
    ``out`` (a new tensor if None, or if the fine grid is itself the dense grid); the coarser
    grids' into their scratch tensors."""
    op = levels[level]
    if isinstance(op, DenseGrid):
        return op.solve(r)
    e = torch.mul(op.damped, r, out=out if level == 0 else op.scratch("e", r))
    op.sweep(r, e)
    coarse = levels[level + 1]
    correction = v_cycle(levels, sum_pool(op.residual(r, e)).mul_(coarse.mask), level + 1)
    prolong_add(e, op.mask, correction, COARSE_SCALE)
    for _ in range(2):
        op.sweep(r, e)
    return e
