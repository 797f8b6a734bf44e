"""Where a class-activation map is read: the target layer of a CNN, found from the model's
feature maps on one image (:func:`find_target_layer`) or named (:func:`resolve_module`). Used by
the CAM explainers (:mod:`faithbench.explainers.cam`) and the layer-wise gradient ones."""

from __future__ import annotations

import contextlib
import itertools
import math
import re
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["canonical_layer", "checked_layer", "counted_calls", "find_target_layer", "one_cell_problem",
           "resolve_module", "reuse_problem"]

_ADAPTIVE_POOLS = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
                   nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)


def find_target_layer(model: nn.Module, x: Tensor, min_grid: int = 4) -> tuple[str, tuple[int, ...]]:
    """The last top-level child whose output is a feature map with every axis >= ``min_grid``; where
    no top-level child has one, the same rule inside the last child that holds one, and so on down.

    A network that keeps every stage in one container (torchvision's and MONAI's DenseNet:
    ``features``) has one top-level feature map, the last and coarsest: on a 28^3 volume MONAI's
    ``features`` ends on 1 x 1 x 1, whose Grad-CAM is one number per image, 0 everywhere after
    the ReLU where it is negative (found by a held-out review); its ``denseblock1`` has 7^3.

    A container run after the chosen child whose own output is coarser, but which holds fine stages
    (blocks with modules of their own), is entered: its last fine stage is deeper than that child.
    timm's EfficientNet, MobileNet and ConvNeXt run a stem, then every stage in one ``blocks`` or
    ``stages``: on 64 px the rule without this step picked the stem (``bn1``, 32 x 32: a map of
    edges), now ``blocks.4`` (4 x 4). Leaf layers are not stages: DenseNet's ``transition3``
    (norm, relu, conv at 4 x 4, then a pool) does not replace ``denseblock3``. Any later child is such a
    container, not only an ``nn.Sequential``; one whose output is no feature map (logits: a network of its
    own) is searched by this same rule where it holds no fine stage as a child. A model that wraps its own
    preprocessing (``pre``: normalise, grey to RGB) or a 1 x 1 convolution adapting the channels before a
    network (``net``: torchvision's ResNet-18) gets the network's own layer (``net.layer1`` at 16 px), not the
    first child, whose output has the input's grid (a held-out review: Grad-CAM on ``pre``, the normalised
    input, had attribution localisation 0.197 where ``net.layer1``'s had 0.076).

    Channels-last outputs (Swin's stages, ``(B, H, W, C)``) are not feature maps here
    (:func:`channels_first`): pytorch-grad-cam would take ``(W, C)`` as the grid and sum over ``H``
    (a held-out review: correlation -0.015 with Grad-CAM on torchvision's ``swin_t``). A network
    that goes on channels last after the layer found (Swin after its patch-embedding convolution)
    is an error, as is one without any channels-first feature map: set ``target_layer``.

    Nor are the outputs of an attention module's parts (:func:`attention_parts`: Swin's softmax and
    ``attn_drop`` give ``(B * windows, heads, tokens, tokens)``, a matrix that passed as a 49 x 49 grid where the
    last stage has one window; a held-out review), nor an output whose first axis is not the batch's.

    Adaptive pooling layers are never chosen: their output is resampled to a fixed size, so
    torchvision's AlexNet and VGG ``avgpool`` gives 6 x 6 and 7 x 7 copies of a 1 x 1 or 2 x 2 map
    on small inputs. Falls back to the finest-grid top-level feature map if no module is that fine. A layer
    found with a grid of one cell (:func:`one_cell_problem`: ``min_grid`` 1, or that fallback on a tiny input)
    is a ValueError: its CAM is a constant map.
    """
    outputs: dict[str, tuple[int, ...]] = {}  # feature-map shapes, by module name
    channels_last: list[tuple[int, str, tuple[int, ...]]] = []  # (call, name, shape) of the other outputs
    order: dict[str, int] = {}  # when each module last returned: siblings in the order they run
    calls = itertools.count()
    hooks = []
    transform = getattr(model, "input_transform", None)  # resizes the input: its output is no feature map
    network_input = [x[:1].shape]  # what the network sees (one image): the transform's output where there is one
    modules = list(model.named_modules())
    if isinstance(transform, nn.Module) and all(m is not transform for _, m in modules):
        modules.append(("input_transform", transform))  # an nn.Sequential's: an attribute, not a child
    attention = attention_parts(model)
    for name, module in modules:
        if not name or (isinstance(module, _ADAPTIVE_POOLS) and module is not transform) or name in attention:
            continue

        def hook(_m: nn.Module, _i: Any, out: Any, name: str = name) -> None:
            order[name] = next(calls)  # a module called twice (one ReLU after every conv): its last call,
            outputs.pop(name, None)  # whose output a CAM hook on it would keep
            if _m is transform and isinstance(out, Tensor):
                network_input[0] = out.shape  # a 96 x 64 image resized to 224 x 224: grids are square
            elif isinstance(out, Tensor) and out.ndim == x.ndim:
                if channels_first(out.shape, network_input[0]):
                    outputs[name] = tuple(out.shape[2:])
                else:
                    channels_last.append((order[name], name, tuple(out.shape)))
        hooks.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in hooks:
            h.remove()

    def children(module: nn.Module, prefix: str) -> list[str]:
        names = [prefix + n for n, child in module.named_children() if child is not transform and prefix + n in order]
        return sorted(names, key=order.__getitem__)

    def is_fine(name: str) -> bool:
        return name in outputs and min(outputs[name]) >= min_grid

    def fine_in(module: nn.Module, prefix: str) -> tuple[str, tuple[int, ...]] | None:
        names = children(module, prefix)
        fine = [n for n in names if is_fine(n)]
        if fine:
            for later in reversed(names[names.index(fine[-1]) + 1:]):  # run after it: stages, or a network
                block = model.get_submodule(later)
                stages = [n for n in children(block, later + ".") if is_fine(n) and _holds_conv(model.get_submodule(n))]
                if stages:
                    return stages[-1], outputs[stages[-1]]
                if later not in outputs and (found := fine_in(block, later + ".")):  # logits: a network of its own
                    return found
            return fine[-1], outputs[fine[-1]]
        for name in reversed(names):
            found = fine_in(model.get_submodule(name), name + ".")
            if found:
                return found
        return None

    found = fine_in(model, "")
    if not found:
        top = [(n, outputs[n]) for n in children(model, "") if n in outputs]
        if not top:
            raise ValueError(f"no channels-first feature-map layer found in {type(model).__name__}; set target_layer")
        found = max(top, key=lambda item: min(item[1]))
    if one_cell_problem((1, 1, *found[1])):  # min_grid 1 on a small input, or the fallback: a constant map
        raise ValueError(f"the layer found in {type(model).__name__}, {found[0]!r}, has a grid of one cell "
                         f"({' x '.join(map(str, found[1]))}) for an input of {tuple(x.shape[2:])}, so every CAM "
                         "of it would be constant; set min_grid >= 2 or a target_layer, or give a larger input")

    def inside_feature_map(name: str) -> bool:  # ConvNeXt's blocks permute to channels last and back
        parts = name.split(".")
        return any(".".join(parts[:k]) in outputs for k in range(1, len(parts)))

    later = [(name, shape) for call, name, shape in channels_last
             if call > order[found[0]] and not inside_feature_map(name)]
    if later:  # Swin: a patch-embedding convolution, then every stage channels last
        raise ValueError(f"{type(model).__name__} continues channels last past its last channels-first output "
                         f"{found[0]!r} ({later[-1][0]!r} outputs {later[-1][1]}): its later stages are no "
                         "(B, C, *grid) feature map for a CAM; a target_layer set by hand must output one (a Swin "
                         "has none past its patch embedding)")
    return found


@contextlib.contextmanager
def kept_output(layer: nn.Module) -> Iterator[None]:
    """Inside the block, the rest of the network gets a copy of ``layer``'s output, so a later
    in-place change (an in-place ReLU after a hand-picked convolution, a residual ``+=``) leaves the
    output intact for the hooks registered on ``layer`` before this one: pytorch-grad-cam keeps a view
    of it, and read the changed values (a review: Grad-CAM++ on ``conv2`` before
    ``ReLU(inplace=True)`` gave the map of the ReLU, 85 times too large). Gradients reach the layer's
    output through the copy unchanged."""
    handle = layer.register_forward_hook(lambda _m, _i, out: out.clone() if isinstance(out, Tensor) else None)
    try:
        yield
    finally:
        handle.remove()


def layer_reason(model: nn.Module, x: Tensor, min_grid: int = 4) -> str | None:
    """Why :func:`find_target_layer` finds no layer in ``model`` for ``x`` (its ValueError), or None;
    on validate's meta placeholder it runs a zero image where and as the model computes. A forward
    that fails for another reason is None: the explainer's own call says why."""
    try:
        if x.is_meta:
            param = next(model.parameters())
            x = torch.zeros(x[:1].shape, device=param.device, dtype=param.dtype)
        find_target_layer(model, x, min_grid)
    except ValueError as exc:
        return str(exc)
    except Exception:  # noqa: BLE001 - see the docstring
        return None
    return None


def min_grid_problem(name: str, min_grid: int, target_layer: str | None, shape: tuple[int, ...]) -> str | None:
    """The problem with a ``min_grid`` larger than the input ``(C, *spatial)``, or None (a fuzzing review:
    64 on 32 px was silently the finest top-level map, as for no fine layer); moot with a ``target_layer``.
    Against the largest side: a thin volume (2 slices) keeps the default 4 and its fallback. Every
    explainer that finds its layer by ``min_grid`` (the CAMs, ``guided_gradcam``) checks it."""
    if not target_layer and min_grid > max(shape[1:]):
        return (f"{name}: parameter 'min_grid' = {min_grid} is more than the input's largest side "
                f"({' x '.join(map(str, shape[1:]))}), so no layer's grid can reach it; expected min_grid <= "
                f"{max(shape[1:])}")
    return None


def channels_first(shape: tuple[int, ...] | torch.Size, input_shape: tuple[int, ...] | torch.Size) -> bool:
    """Whether an output of ``shape`` reads as ``(B, C, *grid)`` for an input of ``input_shape``: its
    last two axes keep the proportions of the input's height and width, one factor f (a stride, or an
    upsampling by a model that resizes its input) giving both within one cell,
    ``|g_i - s_i / f| <= 1`` (rounding). ``(B, H, W, C)`` fails it: its 'grid' ends in ``(W, C)``.
    A depth or time axis before them may be strided otherwise (anisotropic volumes, visits). The first axis
    is the input's batch: Swin's windows of an image, ``(B * windows, ...)``, are not one."""
    grid, spatial = shape[2:], input_shape[2:]
    if len(grid) != len(spatial) or min(grid) < 1 or shape[0] != input_shape[0]:
        return False
    pairs = list(zip(spatial, grid))[-2:]
    low = max(s / (g + 1) for s, g in pairs)
    high = min(s / (g - 1) if g > 1 else math.inf for s, g in pairs)
    return low <= high


def _is_attention(module: nn.Module) -> bool:
    """A class named for attention (``WindowAttention``, ``MultiheadAttention``), not for an attention-like
    convolution block ("Attn": ResNeSt's ``SplitAttn`` holds its main 3 x 3 convolution, CBAM's ``ChannelAttn``;
    a diff review: ``layer3.0.conv2.conv`` of resnest14d was refused)."""
    return "attention" in type(module).__name__.lower()


def attention_parts(model: nn.Module) -> dict[str, str]:
    """{module name: why its output is no feature map} for the parts of an attention module (a class whose
    name holds "Attention", not only "Attn": timm's and MONAI's ``WindowAttention``, torchvision's
    ``ShiftedWindowAttention``, ``nn.MultiheadAttention``), whose outputs are attention weights or window tokens,
    and for every ``nn.Softmax`` (a home-made attention's weights). The attention module's own output is not
    one of them (a squeeze-excitation gate returns the gated feature map)."""
    found: dict[str, str] = {}
    holders: list[tuple[str, nn.Module]] = []
    for name, module in model.named_modules():
        while holders and not name.startswith(holders[-1][0] + "."):
            holders.pop()
        if holders:
            found[name] = (f"is inside the attention module {holders[-1][0]!r} ({type(holders[-1][1]).__name__}), "
                           "whose parts output attention weights or tokens")
        elif isinstance(module, (nn.Softmax, nn.Softmin)):
            found[name] = "is a softmax (attention weights)"
        if name and _is_attention(module):
            holders.append((name, module))
    return found


def attention_problem(model: nn.Module, name: str, layer_name: str = "target_layer", vit: bool = False) -> str | None:
    """Why the module ``name`` cannot be a CAM layer by :func:`attention_parts`, as one line, or None; on a ViT
    (``vit``) the fix names its tokens (:func:`token_problem`)."""
    try:
        why = attention_parts(model).get(canonical_layer(model, name))  # 'blocks.-1.attn.qkv' too
    except AttributeError:
        why = None  # not found: resolve_module says so
    if why and vit:
        return f"{layer_name} {name!r} {why}: not a block's (B, N, C) tokens; {VIT_LAYER_HINT}"
    return (f"{layer_name} {name!r} {why}: not a (B, C, *grid) feature map; choose a layer whose output is a "
            "channels-first feature map") if why else None


# negative indices (a review: 'blocks.11.norm1', the example, is not a module of a 2-block ViT)
VIT_LAYER_HINT = ("choose a block or its norm1 by index (e.g. 'blocks.0', 'blocks.-2.norm1'; default: the last "
                  "block's, 'blocks.-1.norm1')")


def token_problem(out: object, batch: int, model: nn.Module, spatial: tuple[int, ...]) -> str | None:
    """Why a ViT layer's output ``out`` is not the ``(B, N, C)`` tokens the CAMs reshape to the patch grid,
    N = prefix tokens + grid cells of an input of ``spatial`` size (:func:`~faithbench.explainers.transformer.
    patch_grid`: a ``dynamic_img_pad`` ViT's padded grid) (a review: a hand-set ``head`` failed with an IndexError
    in the reshape), as the end of a sentence naming the layer (the fix, :data:`VIT_LAYER_HINT`, not included), or
    None."""
    from faithbench.explainers.transformer import patch_grid, vit_net  # they import the explainer base

    n_prefix, grid = int(getattr(vit_net(model), "num_prefix_tokens", 1)), patch_grid(model, spatial)
    tokens = n_prefix + math.prod(grid)
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else None
    if shape is not None and len(shape) == 3 and shape[:2] == (batch, tokens):
        return None
    got = f"outputs {shape}" if shape is not None else f"outputs a {type(out).__name__}"
    return (f"{got} for a batch of {batch}: not (B, N, C) tokens, N = {n_prefix} prefix + "
            f"{' x '.join(map(str, grid))} grid cells = {tokens}")


def _holds_conv(module: nn.Module) -> bool:
    """Whether ``module`` is a block holding a convolution: a stage, not one layer."""
    return any(isinstance(m, nn.modules.conv._ConvNd) for m in module.modules() if m is not module)


def canonical_layer(model: nn.Module, dotted: str) -> str:
    """``dotted`` as ``model.named_modules()`` names it: a part may also be a negative index into a
    ``Sequential`` or ``ModuleList``, counted from its end as in Python, so ``blocks.-1.norm1`` (the name the
    CAMs' ViT default is recorded under) is ``blocks.11.norm1`` of a 12-block ViT (a review: ``blocks.-2.norm1``
    was "not found"). AttributeError where a part names nothing, as ``get_submodule``."""
    module, parts = model, []
    for part in dotted.split("."):
        if re.fullmatch(r"-[1-9][0-9]*", part) and isinstance(module, (nn.Sequential, nn.ModuleList)):
            names = list(module._modules)  # a Sequential's children may have names (torchvision's DenseNet features)
            if int(part) < -len(names):
                raise AttributeError(f"{part} is out of range for {len(names)} modules")
            part = names[int(part)]
        if not part:  # 'a..b'
            raise AttributeError(f"{dotted!r} has an empty part")
        module = module.get_submodule(part)
        parts.append(part)
    return ".".join(parts)


def resolve_module(model: nn.Module, dotted: str) -> nn.Module:
    try:
        return model.get_submodule(canonical_layer(model, dotted))
    except AttributeError:
        names = [n for n, _ in model.named_modules() if n][:40]
        raise ValueError(f"target_layer {dotted!r} not found in {type(model).__name__}; "
                         f"modules include: {', '.join(names)}") from None


# a held-out review: Grad-CAM on torchvision resnet18's avgpool, 3.9061546-3.9061551 (rounding); EigenCAM 0
ONE_CELL_FIX = ("choose a layer before the pooling or striding that leaves one cell (an earlier stage, e.g. 'layer4' "
                "before a ResNet's 'avgpool'), or give a larger input")


def one_cell_problem(shape: tuple[int, ...] | torch.Size) -> str | None:
    """Why a ``(B, C, *grid)`` output of ``shape`` cannot be read by a CAM: a grid of one cell on every spatial
    axis (a global pool's ``(B, C, 1, 1)``, a last stage on a small input) holds one value per channel, so every
    map is one number per image upsampled, a constant (its spread float rounding), or None. A grid of one cell
    on some axes only (a thin volume's depth) still varies along the others."""
    grid = tuple(shape[2:])
    if grid and all(g == 1 for g in grid):
        return (f"outputs {tuple(shape)}: a grid of one cell ({' x '.join(map(str, grid))}), so every CAM of it "
                "would be one number per image upsampled, a constant map")
    return None


@contextlib.contextmanager
def counted_calls(model: nn.Module, name: str, check: Any = None) -> Iterator[dict[str, int]]:
    """Inside the block, the calls of the module ``name`` and of each module that holds it in ``model``'s first
    forward pass, by name (its enclosing blocks first); ``check(counts)`` runs when that pass returns (before
    any backward pass), so a ValueError it raises ends the call. Counted by forward hooks, which return nothing.
    Not :func:`~faithbench.explainers.graph.trace_leaves`, which counts leaves only, in a pass of its own."""
    parts = canonical_layer(model, name).split(".")
    names = [".".join(parts[:k]) for k in range(1, len(parts) + 1)]
    counts, done = dict.fromkeys(names, 0), []

    def counter(key: str) -> Any:
        def count(_m: nn.Module, _i: Any, _out: Any) -> None:
            if not done:
                counts[key] += 1
        return count

    def end(_m: nn.Module, _i: Any, _out: Any) -> None:
        if not done:
            done.append(True)
            if check is not None:
                check(counts)

    handles = [model.get_submodule(n).register_forward_hook(counter(n)) for n in names]
    handles.append(model.register_forward_hook(end))
    try:
        yield counts
    finally:
        for h in handles:
            h.remove()


def reuse_problem(model: nn.Module, name: str, counts: dict[str, int]) -> tuple[str, str] | None:
    """(problem, fix) where :func:`counted_calls` saw the module ``name`` called more than once in one forward
    pass (torchvision's BasicBlock calls its one ``relu`` twice): a CAM hook keeps its first call's output
    (pytorch-grad-cam's), captum's layer hook its last (Guided Grad-CAM), so the name does not say which tensor
    is read (a held-out review: ``layer4.1.relu`` gave the Grad-CAM after ``bn1``, 1.03 from the block's at a
    maximum of 1.19). The fix names the nearest enclosing module called once; None where it is called once."""
    calls = counts[canonical_layer(model, name)]
    if calls <= 1:
        return None
    once, outer = [n for n, c in reversed(counts.items()) if c == 1], next(iter(counts))
    fix = (f"choose a module called once, e.g. the enclosing block {once[0]!r}" if once else
           f"{outer!r}, which holds it, {_runs(counts[outer])}, so no layer inside it is called once (a "
           "model that runs its network more than once per forward pass, as test-time augmentation, has no CAM "
           f"layer); explain a model that runs the network once per forward pass (e.g. {outer!r} itself)"
           if len(counts) > 1 else
           "choose a module the forward pass calls once")  # a diff review: TTA, told to choose what does not exist
    return (f"is called {calls} times in one forward pass of {type(model).__name__} (one module reused), so its "
            "output is no one tensor (a CAM would read its first call's, Guided Grad-CAM its last)", fix)


def _runs(calls: int) -> str:
    """How often the outermost module holding a reused layer runs, in words: 0 where the forward calls its parts
    (``net.forward_features`` then ``net.forward_head``; a diff review: "runs 0 times too")."""
    return f"runs {calls} times too" if calls else "is not called itself (the forward runs its parts)"


@contextlib.contextmanager
def checked_layer(model: nn.Module, name: str, what: str, grid: bool = True, found: bool = False) -> Iterator[None]:
    """Inside the block, ``model``'s first forward pass refuses the target layer ``name`` with a one-line ValueError
    that starts with ``what`` (``"gradcam: target_layer"``): where it is called more than once
    (:func:`reuse_problem`, when the pass returns) or, with ``grid`` (not a ViT's tokens), where its first output
    is a grid of one cell (:func:`one_cell_problem`). Every explainer that reads a target layer runs in one.
    ``found``: the layer is the automatic choice (no ``target_layer`` set), and the line says so."""
    seen: list[bool] = []
    name_said = f"{name!r} (the automatic choice: no target_layer set)" if found else repr(name)

    def first(_m: nn.Module, _i: Any, out: Any) -> None:
        if grid and not seen and isinstance(out, Tensor) and (problem := one_cell_problem(out.shape)):
            raise ValueError(f"{what} {name_said} {problem}; {ONE_CELL_FIX}")
        seen.append(True)

    def check(counts: dict[str, int]) -> None:
        if reused := reuse_problem(model, name, counts):
            raise ValueError(f"{what} {name_said} {reused[0]}; {reused[1]}")

    handle = model.get_submodule(canonical_layer(model, name)).register_forward_hook(first)
    try:
        with counted_calls(model, name, check):
            yield
    finally:
        handle.remove()
