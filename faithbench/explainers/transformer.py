"""Attention-based explainers for timm Vision Transformers.

The attention matrices (B, heads, N, N), N = prefix tokens + patch tokens, are read with a forward
hook on each block's ``attn.attn_drop`` (the softmaxed attention, identity in eval). timm's fused
attention (``attn.fused_attn``) never materialises them, so :func:`recorded_attention` switches it
off on this model's blocks for the call and restores each block's own value afterwards (no global
state is touched; other models are unaffected).

Token relevance -> map: a weighted sum of query rows over the patch tokens, weighted by the tokens
the classifier head reads (``query="auto"``, the default; :func:`readout_weights`): the class token
for ``global_pool="token"``, every patch token equally for ``"avg"``, and for ``"max"`` each patch
token by the fraction of channels in which it holds the maximum (the head sees only those entries).
A row the head does not read cannot move the prediction: faithbench's ``vit_tiny`` has a class
token but max-pools the patch tokens, so the class token's output is never read, its last-block
attention row gets exactly zero gradient, and reading it (the papers' convention, whose models
classify from the class token) would score raw attention on a row that cannot change the logit
and make Chefer's method ignore the last block. ``query="cls"`` (the class token's row) and
``"mean"`` (the mean of the patch-token rows) remain available. Patch tokens are reshaped to
``model.patch_embed.grid_size`` and upsampled bilinearly to the pixels their patches cover of the image
the network sees, then to the input where its input transform resizes it (:func:`patch_pixels`).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, ClassVar, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from faithbench.explainers.base import Explainer
from faithbench.registry import explainers
from faithbench.types import vit_network

QUERIES = ("auto", "cls", "mean")  # the token rows a map reads: see the module docstring


def vit_reason(model: nn.Module) -> str | None:
    """Why ``model`` is not a timm ViT whose attention can be read, or None."""
    blocks = getattr(model, "blocks", None)
    if (blocks is None or len(blocks) == 0 or not hasattr(getattr(model, "patch_embed", None), "grid_size")
            or not isinstance(getattr(model, "norm", None), nn.Module)):
        return "needs a timm VisionTransformer (model.blocks, model.patch_embed.grid_size, model.norm)"
    for i, block in enumerate(blocks):
        attn = getattr(block, "attn", None)
        if attn is None or not hasattr(attn, "attn_drop") or not hasattr(attn, "fused_attn"):
            return f"block {i} has no timm Attention (attn.attn_drop, attn.fused_attn) to read the attention from"
    return None


@contextmanager
def recorded_attention(model: nn.Module) -> Iterator[list[Tensor]]:
    """Collects each block's attention (B, heads, N, N), in block order, during the forward passes
    run inside the context; fused attention is off meanwhile and restored per block after."""
    maps: list[Tensor] = []
    attns = [block.attn for block in model.blocks]  # type: ignore[union-attr]
    fused = [attn.fused_attn for attn in attns]
    handles = [attn.attn_drop.register_forward_hook(lambda _m, _i, out: maps.append(out)) for attn in attns]
    try:
        for attn in attns:
            attn.fused_attn = False
        yield maps
    finally:
        for handle in handles:
            handle.remove()
        for attn, value in zip(attns, fused):
            attn.fused_attn = value


def attention_rollout(attentions: list[Tensor]) -> Tensor:
    """Attention rollout (Abnar & Zuidema 2020): (B, N, N) = A_L ... A_1 with
    A_l = rownorm(0.5 * mean_heads(attn_l) + 0.5 * I), the identity for the residual connection."""
    eye = torch.eye(attentions[0].shape[-1], device=attentions[0].device, dtype=attentions[0].dtype)
    rollout = eye.expand_as(attentions[0][:, 0]).clone()
    for attn in attentions:
        a = 0.5 * attn.mean(dim=1) + 0.5 * eye
        a = a / a.sum(dim=-1, keepdim=True)
        rollout = a @ rollout
    return rollout


def gradient_weighted_rollout(attentions: list[Tensor], gradients: list[Tensor], *, identity: bool = True) -> Tensor:
    """Chefer et al. (2021, ICCV) relevance (B, N, N): R = I; per block, in forward order,
    R <- R + mean_heads(relu(dS/dA * A)) @ R. ``identity`` False: R - I, accumulated as D <- D + G + G D
    (G the block's term), without subtracting I at the end (in float32 that lost digits: a diff review
    measured 2.7e-3 relative on a random ViT)."""
    eye = torch.eye(attentions[0].shape[-1], device=attentions[0].device, dtype=attentions[0].dtype)
    relevance = torch.zeros_like(attentions[0][:, 0])  # D = R - I
    for attn, grad in zip(attentions, gradients):
        term = (grad * attn).clamp(min=0).mean(dim=1)
        relevance = relevance + term + term @ relevance
    return relevance + eye if identity else relevance


def readout_weights(model: nn.Module, tokens: Tensor, query: str) -> Tensor:
    """(B, N) weights of the tokens whose rows explain the prediction; ``tokens`` (B, N, C) is the
    sequence the head pools (the output of ``model.norm``). Rows sum to 1.

    ``auto``: what the head reads, by ``model.global_pool``: ``token`` -> the class token (a
    distilled DeiT: 1/2 on the class and 1/2 on the distillation token, whose heads it averages);
    ``avg`` -> 1/n on each of the n patch tokens; ``max`` -> w_t = #{c : t = argmax_t' z_t'c} / C over
    patch tokens; ``avgmax`` -> the mean of the two (with timm's ``pool_include_prefix``, over the
    prefix tokens too). ``cls`` -> the class token; ``mean`` -> 1/n on each patch token.
    """
    n_prefix = int(getattr(model, "num_prefix_tokens", 1))
    b, n, c = tokens.shape
    weights = tokens.new_zeros((b, n))
    if query not in QUERIES:
        raise ValueError(f"query must be one of {', '.join(QUERIES)}, got {query!r}")
    if query == "auto":
        pool = getattr(model, "global_pool", "token")
        if getattr(model, "attn_pool", None) is not None or pool not in ("token", "avg", "max", "avgmax"):
            raise ValueError(f"query='auto' knows global_pool token, avg, max, avgmax; got {pool!r} "
                             "(attention pooling has no token readout): set query 'cls' or 'mean'")
        query = {"token": "cls", "avg": "mean"}.get(pool, pool)
        # a distilled DeiT's head averages the class and distillation tokens' heads in eval; timm's
        # pool_include_prefix pools the prefix tokens too (a review: both were read as class token / patches only)
        if query == "cls" and getattr(model, "dist_token", None) is not None:
            weights[:, :2] = 0.5
            return weights
        if query != "cls" and getattr(model, "pool_include_prefix", False):
            n_prefix = 0
    if query == "cls":
        if getattr(model, "cls_token", None) is None:
            raise ValueError("query='cls' needs a model with a class token (model.cls_token is None)")
        weights[:, 0] = 1.0
    else:
        patches = tokens[:, n_prefix:]
        wins = F.one_hot(patches.argmax(dim=1), n - n_prefix).to(tokens.dtype).mean(dim=1)  # (B, n)
        uniform = torch.full_like(wins, 1.0 / (n - n_prefix))
        weights[:, n_prefix:] = {"mean": uniform, "max": wins, "avgmax": 0.5 * (uniform + wins)}[query]
    return weights


def token_map(relevance: Tensor, weights: Tensor, model: nn.Module, spatial: tuple[int, ...]) -> Tensor:
    """(B, N, N) token relevance -> (B, *spatial) map over the patch grid: the query rows weighted by
    ``weights`` (B, N) (:func:`readout_weights`), upsampled bilinearly to the pixels the patches
    cover (:func:`patch_pixels`)."""
    n_prefix = int(getattr(model, "num_prefix_tokens", 1))
    grid = patch_grid(model, spatial)
    rows = torch.einsum("bq,bqk->bk", weights.to(relevance.dtype), relevance)[:, n_prefix:]
    if rows.shape[-1] != grid[0] * grid[1]:
        raise ValueError(f"expected {grid[0]}x{grid[1]} patch tokens (patch_embed.grid_size), got "
                         f"{rows.shape[-1]}: is the input the size the model was built for?")
    return patch_pixels(rows.reshape(rows.shape[0], 1, *grid), model, spatial)[:, 0]


def model_frame(model: nn.Module, spatial: tuple[int, ...]) -> tuple[int, ...]:
    """The spatial size the network itself sees of an input of ``spatial`` size: its input transform's
    ``size`` where that resizes the image (:mod:`faithbench.models.preprocess`), else ``spatial``."""
    size = getattr(getattr(getattr(model, "input_transform", None), "config", None), "size", None)
    return tuple(size) if size is not None else tuple(spatial)


def vit_net(model: nn.Module) -> nn.Module:
    """The timm ViT ``model`` is or wraps (:func:`~faithbench.types.vit_network`; its ``patch_embed`` and
    ``num_prefix_tokens`` are read), else ``model`` itself. The image size it sees is still the model's own
    (:func:`model_frame`: the input transform sits on the root module)."""
    found = vit_network(model)
    return found[1] if found is not None else model


def patch_grid(model: nn.Module, spatial: tuple[int, ...]) -> tuple[int, ...]:
    """The patch grid of a timm ViT on an input of ``spatial`` size: ``patch_embed.grid_size``, or for a
    ``dynamic_img_size`` model the grid of the size it sees (:func:`model_frame`; a review: a dynamic model
    failed on any other size than the one it was built for)."""
    net = vit_net(model)
    embed: Any = net.patch_embed
    if getattr(net, "dynamic_img_size", False) and hasattr(embed, "dynamic_feat_size"):
        return tuple(embed.dynamic_feat_size(model_frame(model, spatial)))
    return tuple(embed.grid_size)


def input_size_problem(model: nn.Module, spatial: tuple[int, ...]) -> str | None:
    """Why a timm ViT cannot take an input of ``spatial`` size, as timm's ``PatchEmbed`` asserts on the size it
    sees after any resizing input transform: a fixed-size model's ``patch_embed.img_size``; a dynamic one's sides
    multiples of the patch unless it pads (``dynamic_img_pad``; a reread: 60 px for 16-px patches was timm's
    AssertionError). None where it can, or where the embedding asserts nothing (HybridEmbed, a conv stem)."""
    from timm.layers import PatchEmbed  # its forward asserts the size; HybridEmbed (a conv stem) does not (a review)

    embed = getattr(vit_net(model), "patch_embed", None)
    built = getattr(embed, "img_size", None)
    if not isinstance(embed, PatchEmbed) or built is None:
        return None
    frame = model_frame(model, spatial)
    seen = "x".join(map(str, frame)) + (f" (resized from {'x'.join(map(str, spatial))})" if frame != tuple(spatial)
                                        else "")
    if embed.strict_img_size and tuple(frame) != tuple(built):
        grid = "x".join(str(g) for g in embed.grid_size)
        return (f"expected {grid} patch tokens of a {'x'.join(map(str, built))}-pixel input (patch_embed.img_size), "
                f"got an input of {seen}: is the input the size the model was built for?")
    patch = tuple(embed.patch_size)
    if not embed.strict_img_size and not embed.dynamic_img_pad and any(f % p for f, p in zip(frame, patch)):
        return (f"expected an input whose sides are multiples of the {'x'.join(map(str, patch))} patch (a dynamic-size "
                f"ViT without dynamic_img_pad), got an input of {seen}")
    return None


def patch_pixels(grid_map: Tensor, model: nn.Module, spatial: tuple[int, ...], *,
                 align_corners: bool = False) -> Tensor:
    """(B, C, h, w) maps on a ViT's patch grid -> (B, C, *spatial): upsampled bilinearly to the
    pixels the patches cover (grid x patch size) of the image the network sees, 0 on the pixels past
    them, which the patch embedding drops (a review found 39.6 % of an attention map, and 38-75 % of a CAM,
    on pixels that moved no logit when the grid was stretched over them), cropped where timm's
    ``dynamic_img_pad`` pads the image at the bottom/right; then resized (bilinear, antialiased) from the
    size the network sees to the input's where the model's input transform resizes it (:func:`patch_layout`).
    The whole input where the model is no plain patchify of it (a conv stem before 1-px patches)."""
    covered, frame = patch_layout(model, tuple(grid_map.shape[2:]), spatial)
    out = F.interpolate(grid_map, size=covered, mode="bilinear", align_corners=align_corners)
    return frame_to_input(out, frame, spatial)


def patch_layout(model: nn.Module, grid: tuple[int, ...],
                 spatial: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(covered, frame) for a ViT's ``grid`` on an input of ``spatial`` size: ``frame``, the size the network
    sees (:func:`model_frame`), and ``covered``, the pixels of it the patches cover from its top left
    (:func:`patch_cover`). Both are ``spatial`` where the patches cover the whole frame: the grid is then
    stretched over the input in one step (a resize to a multiple of the patch: every input pixel is seen).
    A review: 40-px images resized to 36 for 8-px patches drop the last 4 of the 36, so input rows 37-39
    moved no logit, yet held 12-15 % of the attention maps, 15-20 % of the CAMs, with the grid over all 40."""
    frame = model_frame(model, spatial)
    covered = patch_cover(model, grid, frame)
    return (tuple(spatial), tuple(spatial)) if covered == frame else (covered, frame)


def frame_to_input(covered_map: Tensor, frame: tuple[int, ...], spatial: tuple[int, ...]) -> Tensor:
    """(B, C, *covered) -> (B, C, *spatial): zero-padded (or cropped) at the bottom/right to ``frame``, then
    resized bilinearly (antialiased, ``align_corners=False`` as the input transform) to ``spatial``."""
    h, w = covered_map.shape[-2:]
    out = F.pad(covered_map, (0, frame[1] - w, 0, frame[0] - h))  # a negative pad crops
    if tuple(frame) != tuple(spatial):  # antialiased kernels have no half/bfloat16 on the CPU: in float32 at least
        wide = out.to(torch.promote_types(out.dtype, torch.float32))
        wide = F.interpolate(wide, size=tuple(spatial), mode="bilinear", align_corners=False, antialias=True)
        out = wide.to(out.dtype)
    return out


def patch_cover(model: nn.Module, grid: tuple[int, ...], frame: tuple[int, ...]) -> tuple[int, ...]:
    """The (height, width) of the pixels a ViT's ``grid`` of patches covers from the top left of the image
    of ``frame`` size the network sees: grid x patch size, at most a patch short of ``frame`` (the patch
    embedding drops the rest), or past it by less than a patch where timm's ``dynamic_img_pad`` pads it;
    ``frame`` where the grid is not that of a plain patchify (a conv stem, a hybrid CNN backbone)."""
    embed = getattr(vit_net(model), "patch_embed", None)
    patch = getattr(embed, "patch_size", None) or (0, 0)
    patch = (patch, patch) if isinstance(patch, int) else tuple(patch)  # a plugin's embedding may store an int
    covered = tuple(g * p for g, p in zip(grid, patch))
    if all(0 <= s - c < p for s, c, p in zip(frame, covered, patch)):
        return covered
    if getattr(embed, "dynamic_img_pad", False) and all(0 <= c - s < p for s, c, p in zip(frame, covered, patch)):
        return covered  # timm pads the bottom/right to whole patches: token i covers rows i*p..(i+1)*p
    return tuple(frame)


class _AttentionExplainer(Explainer):
    family = "transformer"
    dims = frozenset({2})
    architectures = frozenset({"vit"})
    needs_grad = False
    defaults: ClassVar[dict[str, Any]] = {"query": "auto"}
    choices: ClassVar[dict[str, tuple[str, ...]]] = {"query": QUERIES}
    version = "4"  # 2: "auto" reads the tokens the head pools (1: the class token whenever there is one);
    # 3: a distilled DeiT's two tokens, pool_include_prefix, no relevance past the last whole patch;
    # 4: the same behind an input transform that resizes to a size no multiple of the patch (the grid was
    # stretched over the whole input), and timm's dynamic_img_pad grid cropped, not stretched (patch_pixels)

    def unsupported_reason(self, model: nn.Module, x: Tensor) -> str | None:
        reason = super().unsupported_reason(model, x)
        if reason is None and (missing := vit_reason(model)):
            reason = f"{self.name} {missing}"
        if reason is None and self.query == "auto" and getattr(model, "attn_pool", None) is not None:
            reason = (f"{self.name}: attention pooling (global_pool 'map') has no token readout; set query 'cls' "
                      "or 'mean'")
        return reason

    def relevance(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def explain(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        reason = vit_reason(model) or input_size_problem(model, tuple(x.shape[2:]))
        if reason:  # the size: timm's bare AssertionError otherwise (a review)
            raise ValueError(f"{self.name}: {reason}")
        tokens: list[Tensor] = []  # the sequence the head pools, to weight the rows it reads
        norm: nn.Module = model.norm  # type: ignore[assignment]
        handle = norm.register_forward_hook(lambda _m, _i, out: tokens.append(out.detach()))
        try:
            relevance = self.relevance(model, x, target)
        finally:
            handle.remove()
        weights = readout_weights(model, tokens[-1], self.query)
        return token_map(relevance, weights, model, tuple(x.shape[2:]))


@explainers.register("attention")
class AttentionExplainer(_AttentionExplainer):
    """Raw attention: the last block's attention averaged over heads; the query rows of the tokens
    the head reads (``query="auto"``, see module docstring) over the patch tokens. Class-agnostic."""

    paper = "Dosovitskiy et al. 2021, An Image is Worth 16x16 Words (attention maps)"
    description = "last-layer attention of the tokens the head reads, mean over heads (class-agnostic)"

    def relevance(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        with recorded_attention(model) as maps, torch.no_grad():
            model(x)
        return maps[-1].mean(dim=1)


@explainers.register("attention_rollout")
class AttentionRolloutExplainer(_AttentionExplainer):
    """Attention rollout (Abnar & Zuidema 2020), see :func:`attention_rollout`: head mean, no
    discarding of low attention, class-agnostic. ``query``: "auto" (see module docstring)."""

    paper = "Abnar & Zuidema 2020, Quantifying Attention Flow in Transformers"
    description = "rollout of head-averaged attention + identity over layers, at the head's tokens (class-agnostic)"

    def relevance(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        with recorded_attention(model) as maps, torch.no_grad():
            model(x)
        return attention_rollout(maps)


@explainers.register("chefer")
class CheferExplainer(_AttentionExplainer):
    """Gradient-weighted attention rollout of Chefer, Gur & Wolf (2021, ICCV, "Generic
    Attention-model Explainability"), the gradient-only successor of their CVPR 2021 "Transformer
    Interpretability Beyond Attention Visualization" (which propagates LRP relevance instead):
    see :func:`gradient_weighted_rollout`; dS/dA is the gradient of the target logit. The map reads
    R - I: the identity R starts from is no relevance (the papers read the class token's row without
    its own column, where the identity sits, so there it changes nothing; for a readout at patch
    tokens, leaving out their own diagonal likewise is faithbench's choice, no paper's convention).
    Read at patch tokens (``vit_tiny`` max-pools them), the identity put each read token's weight on
    its own patch: a held-out review found it 99.8 % of the map, whose two classes then correlated
    at 1.000000 (0.50 without it). ``query``: "auto" (see module docstring)."""

    needs_grad = True
    paper = "Chefer et al. 2021, Generic Attention-model Explainability (ICCV)"
    description = "rollout of head-averaged relu(gradient x attention), at the head's tokens (class-specific)"

    version = "5"  # 4: as the others' 3, and the identity start left out of the map (R - I); 5: as their 4

    def relevance(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        x = x.detach().requires_grad_(True)  # so the graph exists even for a frozen model
        with recorded_attention(model) as maps, torch.enable_grad():
            logits = model(x)
            score = logits.gather(1, target[:, None]).sum()
            grads = torch.autograd.grad(score, maps)
        return gradient_weighted_rollout([m.detach() for m in maps], [g.detach() for g in grads], identity=False)
