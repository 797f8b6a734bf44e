"""The ViT side of the CAMs (:mod:`faithbench.explainers.cam`): the token -> grid reshape on the patch grid the
network sees, and the probe for patch tokens that get no gradient."""

from __future__ import annotations

import math
from typing import Any, Callable

from torch import Tensor, nn

from faithbench.explainers.transformer import patch_grid, vit_net


def vit_reshape_transform(model: nn.Module, spatial: tuple[int, ...]) -> Callable[[Tensor], Tensor]:
    """(B, prefix + h*w, C) tokens -> (B, C, h, w) feature map for a timm ViT on an input of ``spatial`` size, on
    the grid the network sees (:func:`~faithbench.explainers.transformer.patch_grid`, as the attention
    explainers): a ``dynamic_img_pad`` ViT's padded grid (a review: 36 px for 8-px patches is 5 x 5 tokens, not
    ``patch_embed.grid_size`` 4 x 4, and every CAM failed with a raw reshape error), a ``dynamic_img_size`` one's
    grid of the size given. Tokens of another grid raise a one-line ValueError."""
    n_prefix = int(getattr(vit_net(model), "num_prefix_tokens", 1))
    grid = patch_grid(model, spatial)

    def reshape(tokens: Tensor) -> Tensor:
        patches = tokens[:, n_prefix:, :]
        if patches.ndim != 3 or patches.shape[1] != math.prod(grid):
            raise ValueError(f"expected {n_prefix} prefix + {' x '.join(map(str, grid))} patch tokens for an input "
                             f"of {'x'.join(map(str, spatial))}, got {tuple(tokens.shape)}: is the input the size "
                             "the model was built for?")
        return patches.reshape(patches.shape[0], *grid, patches.shape[-1]).movedim(-1, 1)

    return reshape


def patch_grad_probe(layer: nn.Module, model: nn.Module) -> tuple[Any, list[Tensor]]:
    """A hook on a ViT layer's (B, N, C) tokens and, filled by the backward pass, per sample whether its prefix
    (class) tokens get a gradient and none of its patch tokens does. After the last block's attention a head that
    reads only the class token (timm's ``global_pool='token'``) sends no gradient to the patch tokens (a held-out
    review: ``norm`` gave an all-zero Grad-CAM, silently); a score that does not depend on the layer at all
    (no gradient anywhere) is not flagged."""
    n_prefix, flags, hooked = int(getattr(vit_net(model), "num_prefix_tokens", 1)), [], []

    def record(grad: Tensor) -> None:
        reached = grad.detach().ne(0)
        flags.append((reached[:, :n_prefix].flatten(1).any(1) & ~reached[:, n_prefix:].flatten(1).any(1)).cpu())

    def watch(_m: nn.Module, _i: Any, out: Any) -> None:
        if isinstance(out, Tensor) and out.requires_grad and out.ndim == 3 and not hooked:  # the first call's
            hooked.append(out.register_hook(record))

    return layer.register_forward_hook(watch), flags
