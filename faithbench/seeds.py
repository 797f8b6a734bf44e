"""Seeds from content: draws that belong to one image, whatever its batch (every random draw of the metrics:
tie-breaks, random baselines, subsets, noise; :func:`draw_rows` draws them row by row).

A per-batch generator gives position i of every batch the same draw, so with a tied map the samples
at one position share their tie-break (a held-out review: 64 all-zero 16^3 maps against organ masks
of area 0.135 scored 0.0 to 0.47 on the pointing game, seed by seed). A generator per row, seeded from
the seed and the row's bytes, gives each sample its own draw in any batch.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

Generators = torch.Generator | Sequence[torch.Generator] | None


def _crc(*rows: Tensor) -> int:
    crc = 0
    for row in rows:  # one copy to the host per tensor, where it is on another device (row_generators: per batch)
        row = row.detach() if row.device.type == "cpu" else row.detach().cpu()
        crc = zlib.crc32(row.contiguous().flatten().view(torch.uint8).numpy().tobytes(), crc)
    return crc


def image_seed(seed: int, image: Tensor) -> int:
    """A seed drawn from (``seed``, the bytes of ``image``) by NumPy's ``SeedSequence``: the same
    image gets the same seed in any batch, different images (almost surely) different ones. Any
    dtype (bfloat16 too: the bytes are read as uint8)."""
    return int(np.random.SeedSequence([seed % 2**32, _crc(image)]).generate_state(1)[0])


def row_seeds(seed: int, *tensors: Tensor) -> list[int]:
    """One seed per row (first axis) of ``tensors``, drawn from ``seed`` and the bytes of that row of
    each tensor (with one tensor: :func:`image_seed` of the row). Each tensor comes to the host once,
    as one array (not a copy per row: a metric's device test counts them)."""
    return seeds_of(seed, row_crcs(*tensors))


def row_crcs(*tensors: Tensor) -> list[int]:
    """The CRC-32 of each row's bytes, over the rows of every tensor (:func:`row_seeds` draws its seeds from
    them; :meth:`~faithbench.metrics.base.EvalContext.generators` keeps them for the batch, so the images come to
    the host once, whatever the number of salts)."""
    if not tensors or any(len(t) != len(tensors[0]) for t in tensors):
        raise ValueError(f"expected tensors with one number of rows, got {[tuple(t.shape) for t in tensors]}")
    if not len(tensors[0]):
        return []
    arrays = []
    for t in tensors:
        t = t.detach() if t.device.type == "cpu" else t.detach().cpu()
        arrays.append(t.reshape(len(t), -1).contiguous().view(torch.uint8).numpy())
    crcs = []
    for i in range(len(tensors[0])):
        crc = 0
        for array in arrays:
            crc = zlib.crc32(array[i].tobytes(), crc)
        crcs.append(crc)
    return crcs


def seeds_of(seed: int, crcs: Sequence[int]) -> list[int]:
    """One seed per CRC of :func:`row_crcs`: NumPy's ``SeedSequence`` of (``seed``, the row's CRC)."""
    return [int(np.random.SeedSequence([seed % 2**32, crc]).generate_state(1)[0]) for crc in crcs]


def row_generators(seed: int, *tensors: Tensor) -> list[torch.Generator]:
    """One CPU generator per row of ``tensors``, seeded by :func:`row_seeds`."""
    return [torch.Generator().manual_seed(s) for s in row_seeds(seed, *tensors)]


def seeded_rows(seed: int, salt: int, x: Tensor) -> list[torch.Generator]:
    """One generator per row of ``x`` for one purpose (``salt``) in a cell seeded ``seed``: :func:`row_generators` of
    ``seed * 1_000_003 + salt`` (the per-batch generator's formula) and each row's image. The metric classes'
    :meth:`~faithbench.metrics.base.EvalContext.generators` and the functional API's tie-breaks (``seed``,
    ``x``) both draw from it, so the pure functions reproduce the classes."""
    return row_generators(seed * 1_000_003 + salt, x)


def uniform_keys(shape: tuple[int, ...], generator: Generators) -> Tensor:
    """Uniform [0, 1) draws of ``shape`` (B, ...) on the CPU: from one generator, the whole batch at once; from a
    sequence of B generators, row i from the i-th (so a row's draw does not depend on its batch); from None,
    torch's global generator."""
    if generator is None or isinstance(generator, torch.Generator):
        return torch.rand(shape, generator=generator)
    if len(generator) != shape[0]:
        raise ValueError(f"expected one generator per row, {shape[0]}, got {len(generator)}")
    keys = torch.empty(shape)
    for row, g in zip(keys, generator):  # in place, as torch.rand draws (bit for bit), without a stacked copy
        row.uniform_(generator=g)
    return keys


def draw_rows(generator: Generators, rows: int, draw: Callable[[torch.Generator | None, int], Tensor], *,
              dim: int = 0) -> Tensor:
    """A draw of ``rows`` rows (batch axis ``dim``), where ``draw(g, n)`` draws ``n`` rows from ``g``: from one
    generator (or None: torch's global one), ``draw(generator, rows)``, the whole batch at once (bit for bit the
    per-batch draw); from a sequence of ``rows`` generators, row i is ``draw(generator[i], 1)``, so a row's draw
    depends neither on its batch nor on its position in it."""
    if generator is not None and not isinstance(generator, torch.Generator) and len(generator) != rows:
        raise ValueError(f"expected one generator per row, {rows}, got {len(generator)}")
    if generator is None or isinstance(generator, torch.Generator) or not rows:
        out = draw(generator if rows else torch.Generator(), rows)
    else:
        out = torch.cat([draw(g, 1) for g in generator], dim=dim)
    if out.shape[dim] != rows:  # a review: a draw of 2 rows per generator gave 10 rows for 5, without a word
        raise ValueError(f"expected draw(g, n) to return n rows along dim {dim}, got {out.shape[dim]} for {rows}")
    return out


def normal_draws(shape: tuple[int, ...], generator: Generators, dtype: torch.dtype = torch.float32) -> Tensor:
    """Standard normal draws of ``shape`` (B, ...) on the CPU, per row as :func:`draw_rows`."""
    return draw_rows(generator, shape[0], lambda g, n: torch.randn((n, *shape[1:]), generator=g, dtype=dtype))


def or_row_generators(generator: Generators, *tensors: Tensor) -> Generators:
    """``generator``, or where it is None the default of the pure functions' tie-breaks: :func:`row_generators`
    of seed 0 and the rows of ``tensors`` (the map, and the mask where one is scored), so that the same inputs
    give the same value on every call and in any batch."""
    return row_generators(0, *tensors) if generator is None else generator
