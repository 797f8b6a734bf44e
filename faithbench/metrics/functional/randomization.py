"""Randomisation sanity checks (Adebayo et al. 2018; Sixt et al. 2020).

A faithful explanation depends on what the model learned: randomise the weights (or the labels
it learned from, or the class explained) and the saliency must change. Each check re-explains
with ``explain(model, x, target) -> (B, *spatial)`` and compares with the original saliency by a
similarity of :mod:`~faithbench.metrics.functional.similarity` (default ``spearman_abs``).
Lower similarity is better. The model passed in is never modified: every randomisation works on
a deep copy.

Blocks
------
:func:`parameter_blocks` splits a model into "blocks", input to output: the model's top-level
children that hold parameters, in the order the forward pass first calls them (traced on one
sample), with a top-level ``nn.Sequential``/``nn.ModuleList`` expanded into its children (so a
timm ViT gives ``patch_embed``, ``blocks.0`` .. ``blocks.11``, ``norm``, ``head``, and a torchvision
ResNet ``conv1``, ``bn1``, ``layer1.0`` .. ``layer4.1``, ``fc``). Among an ``nn.Sequential``'s children,
whose order is the forward pass, a conv/linear layer (:data:`LEADERS`) and the norm layers
(:data:`NORMS`) and ``nn.PReLU`` after it are one block named ``a+b`` (``nn.Sequential(conv, bn, relu,
conv, bn)`` gives ``0+1``, ``3+4``): a norm alone is not a step (a held-out review: ``small_cnn``'s split
made a batch-norm of gammas 1 +- 0.003 a step that barely moved the logits). Parameters registered on the model
itself (a ViT's ``cls_token``, ``pos_embed``) join the first, input-side block. Children never
called in the forward pass are left out (randomising them would change nothing). While there are
fewer than :data:`MIN_BLOCKS` (4) blocks, the one with the most parameters is split the same way
into its children, its own parameters joining the first (a wrapper of a backbone and a head gave 2
blocks, torchvision's ``vit_b_16`` 3, one of them all 12 encoder layers: a held-out review); a block
that is one conv + norm unit is not split, so ``small_cnn`` of depth 2 keeps 3 blocks (``features.0``,
``features.1``, ``head``).

Re-initialisation
-----------------
Every parameter tensor of a block -- every parameterised module, attention and norms included,
not only those with ``reset_parameters`` -- is replaced by i.i.d. draws from N(mean(p), std(p)^2)
of its own trained values, from a generator seeded by (seed, block index): the scale of each
tensor (hence of the activations) is kept, its learned structure destroyed, and the cascading
and independent checks draw the same weights for a block. A tensor with a single value or no
spread (std = 0, e.g. an untrained norm's weight of ones) carries no learned structure and is
left as it is. Buffers (batch-norm running statistics) are kept.
"""

from __future__ import annotations

import copy
from contextlib import AbstractContextManager, nullcontext
from typing import Callable

import torch
from torch import Tensor, nn

from faithbench.metrics.base import postprocess as apply_postprocess
from faithbench.metrics.functional.perturbation import seeded
from faithbench.metrics.functional.similarity import Similarity, similarity as compare
from faithbench.seeds import Generators, draw_rows, seeded_rows

Explain = Callable[[nn.Module, Tensor, Tensor], Tensor]
Block = tuple[str, list[nn.Parameter]]
# a context counting the forward passes of a model (a metric's ``ctx.predict.watch``): the block trace's one image
Watch = Callable[[nn.Module], AbstractContextManager[object]]

SALT_BLOCKS = 100  # generator salt of block i: SALT_BLOCKS + i
SALT_LOGIT = 7


def _has_params(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


MIN_BLOCKS = 4
# a layer that a following norm (and parameterised activation) normalises: they are one block with it
LEADERS: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                                        nn.ConvTranspose3d, nn.Linear, nn.Bilinear)
NORMS: tuple[type[nn.Module], ...] = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm,
                                       *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()))  # torch >= 2.4
Unit = tuple[str, list[nn.Module]]


def _follows(module: nn.Module) -> bool:
    """A norm layer, a parameterised activation (``nn.PReLU``), or a module whose parameters all sit in
    such layers (MONAI's ``ADN``, timm's ``BatchNormAct2d``)."""
    holders = [m for m in module.modules() if any(True for _ in m.parameters(recurse=False))]
    return bool(holders) and all(isinstance(m, (*NORMS, nn.PReLU)) for m in holders)


def _grouped(named: list[tuple[str, nn.Module]], ordered: bool) -> list[Unit]:
    """One unit per module; where ``ordered`` (an ``nn.Sequential``'s children, whose order is the forward
    pass), a norm or parameterised activation joins the conv/linear layer before it, named ``a+b``."""
    units: list[Unit] = []
    for name, module in named:
        if ordered and units and isinstance(units[-1][1][0], LEADERS) and _follows(module):
            units[-1] = (f"{units[-1][0]}+{name}", [*units[-1][1], module])
        else:
            units.append((name, [module]))
    return units


def _units(module: nn.Module, prefix: str) -> list[Unit]:
    """The parameterised children of ``module``, an ``nn.Sequential``/``nn.ModuleList`` child expanded
    into its own children, named ``prefix + name``; within an ``nn.Sequential`` a conv/linear layer and
    the norm and parameterised activation after it are one unit (:func:`_grouped`)."""
    units: list[Unit] = []
    direct: list[tuple[str, nn.Module]] = []
    ordered = isinstance(module, nn.Sequential)
    for name, child in module.named_children():
        if isinstance(child, (nn.Sequential, nn.ModuleList)):
            units += _grouped(direct, ordered)
            direct = []
            units += _grouped([(f"{prefix}{name}.{sub}", grand) for sub, grand in child.named_children()
                               if _has_params(grand)], isinstance(child, nn.Sequential))
        elif _has_params(child):
            direct.append((f"{prefix}{name}", child))
    return units + _grouped(direct, ordered)


def _splits(unit: list[nn.Module]) -> bool:
    """Whether a unit can be split a level deeper: one module whose children are not one conv + norm unit."""
    if len(unit) > 1:
        return False
    deeper = _units(unit[0], "")
    return bool(deeper) and not (len(deeper) == 1 and len(deeper[0][1]) > 1)


def parameter_blocks(model: nn.Module, x: Tensor | None = None, *, watch: Watch | None = None) -> list[Block]:
    """The model's parameterised blocks, input to output, as ``(name, parameters)`` (see the
    module docstring). With ``x``, order and membership come from a traced forward pass of
    ``x[:1]``, under ``watch(model)`` when given (so a metric's cost counts it); without, registration order."""
    units, extra = _units(model, ""), {}
    while len(units) < MIN_BLOCKS:  # a wrapper (backbone + head), torchvision's ViT (one `encoder`): a level deeper
        deeper = [(i, name, mods[0]) for i, (name, mods) in enumerate(units) if _splits(mods)]
        if not deeper:
            break
        i, name, module = max(deeper, key=lambda t: sum(p.numel() for p in t[2].parameters()))
        extra[name] = list(module.parameters(recurse=False))  # its own: the first of its children called (below)
        units[i:i + 1] = _units(module, f"{name}.")
    if x is not None and units:
        called: list[str] = []
        handles = [module.register_forward_pre_hook(
            lambda _m, _a, name=name: called.append(name) if name not in called else None)
            for name, modules in units for module in modules]
        try:
            was_training = model.training
            model.eval()
            with torch.no_grad(), (watch or nullcontext)(model):
                model(x[:1])
            model.train(was_training)
        finally:
            for h in handles:
                h.remove()
        by_name = dict(units)
        units = [(name, by_name[name]) for name in called]
    blocks: list[Block] = [(name, list({id(p): p for m in modules for p in m.parameters()}.values()))
                           for name, modules in units]
    for prefix, params in extra.items():  # a split module's own parameters (torchvision ViT's pos_embedding):
        # with its first child called, else the first block (a diff review: an uncalled first child lost them)
        at = next((k for k, (name, _) in enumerate(blocks) if name.startswith(prefix + ".")), 0)
        if blocks and params:
            blocks[at] = (blocks[at][0], params + blocks[at][1])
    own = list(model.parameters(recurse=False))
    if own:
        if blocks:
            first_name, first_params = blocks[0]
            blocks[0] = (f"{first_name}+{','.join(n for n, _ in model.named_parameters(recurse=False))}",
                         own + first_params)
        else:
            blocks = [(",".join(n for n, _ in model.named_parameters(recurse=False)), own)]
    if not blocks:
        raise ValueError(f"{type(model).__name__} has no parameters to randomise")
    return blocks


@torch.no_grad()
def randomize_block(params: list[nn.Parameter], generator: torch.Generator) -> None:
    """Replace every parameter tensor by seeded N(mean, std^2) draws of its own values, in place
    (tensors with one value or std 0 are kept)."""
    for p in params:
        if p.numel() < 2:
            continue
        values = p.detach().double()
        std = values.std()
        if not std > 0:
            continue
        draw = torch.randn(p.shape, generator=generator, dtype=torch.float64) * std.cpu() + values.mean().cpu()
        p.copy_(draw.to(device=p.device, dtype=p.dtype))


def _similar(reference: Tensor, other: Tensor, similarity: Similarity, postprocess: str) -> Tensor:
    return compare(apply_postprocess(reference, postprocess), apply_postprocess(other.to(reference.device),
                                                                               postprocess), similarity)


def cascading_randomization_curve(model: nn.Module, x: Tensor, target: Tensor, saliency: Tensor, explain: Explain,
                                  *, similarity: Similarity = "spearman_abs", postprocess: str = "abs",
                                  seed: int = 0, watch: Watch | None = None) -> tuple[Tensor, list[str]]:
    """Cascading MPRT (Adebayo et al. 2018): from the output toward the input, randomise one more
    block at a time and re-explain. Returns the similarity to ``saliency`` after each step,
    ``(B, n_blocks + 1)`` (first point 1.0: nothing randomised), and the block names in the order
    they were randomised. ``watch``: counts the block trace (:func:`parameter_blocks`)."""
    work = copy.deepcopy(model)
    blocks = parameter_blocks(work, x, watch=watch)
    b = x.shape[0]
    curve = [torch.ones(b, device=saliency.device)]
    names: list[str] = []
    for index in reversed(range(len(blocks))):
        name, params = blocks[index]
        randomize_block(params, seeded(seed, SALT_BLOCKS + index))
        curve.append(_similar(saliency, explain(work, x, target), similarity, postprocess).to(saliency.device))
        names.append(name)
    return torch.stack(curve, dim=1), names


def independent_randomization_curve(model: nn.Module, x: Tensor, target: Tensor, saliency: Tensor,
                                    explain: Explain, *, similarity: Similarity = "spearman_abs",
                                    postprocess: str = "abs", seed: int = 0,
                                    watch: Watch | None = None) -> tuple[Tensor, list[str]]:
    """Independent MPRT (Adebayo et al. 2018): randomise one block at a time, the rest intact, from
    the output toward the input. Returns the similarity for each block ``(B, n_blocks)`` and
    the block names. ``watch``: counts the block trace (:func:`parameter_blocks`)."""
    work = copy.deepcopy(model)
    blocks = parameter_blocks(work, x, watch=watch)
    curve: list[Tensor] = []
    names: list[str] = []
    for index in reversed(range(len(blocks))):
        name, params = blocks[index]
        saved = [p.detach().clone() for p in params]
        randomize_block(params, seeded(seed, SALT_BLOCKS + index))
        curve.append(_similar(saliency, explain(work, x, target), similarity, postprocess).to(saliency.device))
        with torch.no_grad():
            for p, value in zip(params, saved):
                p.copy_(value)
        names.append(name)
    return torch.stack(curve, dim=1), names


@torch.no_grad()
def block_logit_changes(model: nn.Module, x: Tensor, *, seed: int = 0) -> list[tuple[str, float, float]]:
    """How much each MPRT step moves the model, from the output toward the input (the order of the
    curves): ``(name, change, relative)`` with ``change`` = max |logits(block redrawn alone) - logits| over
    ``x`` (the draw of ``mprt_independent``'s step, same ``seed``) and ``relative`` = ``change`` over that
    of the fully randomised model (0 where the full randomisation leaves the logits as they were). A block
    whose trained values hardly spread (a batch-norm of gammas 1 +- 0.004; a timm ResNet block's zero-
    initialised last gamma) is redrawn nearly as it was: a ``relative`` near 0 marks a step whose
    similarity is near 1 for every explainer.
    ``model`` is not modified; ``len(blocks) + 3`` forwards (the block trace's one included)."""
    work = copy.deepcopy(model).eval()
    reference = work(x)
    blocks = parameter_blocks(work, x)
    changes: list[tuple[str, float]] = []
    for index in reversed(range(len(blocks))):
        name, params = blocks[index]
        saved = [p.detach().clone() for p in params]
        randomize_block(params, seeded(seed, SALT_BLOCKS + index))
        changes.append((name, (work(x) - reference).abs().max().item()))
        for p, value in zip(params, saved):
            p.copy_(value)
    for index in reversed(range(len(blocks))):
        randomize_block(blocks[index][1], seeded(seed, SALT_BLOCKS + index))
    full = (work(x) - reference).abs().max().item()
    return [(name, change, change / full if full > 0 else 0.0) for name, change in changes]


def mprt_cascading(model: nn.Module, x: Tensor, target: Tensor, saliency: Tensor, explain: Explain, *,
                   similarity: Similarity = "spearman_abs", postprocess: str = "abs", seed: int = 0) -> Tensor:
    """Similarity at full randomisation of the cascading MPRT, per sample ``(B,)``; lower is better."""
    curve, _ = cascading_randomization_curve(model, x, target, saliency, explain, similarity=similarity,
                                             postprocess=postprocess, seed=seed)
    return curve[:, -1]


def mprt_independent(model: nn.Module, x: Tensor, target: Tensor, saliency: Tensor, explain: Explain, *,
                     similarity: Similarity = "spearman_abs", postprocess: str = "abs", seed: int = 0) -> Tensor:
    """Mean similarity over the independently randomised blocks, per sample ``(B,)``, over the blocks whose
    comparison is defined (a constant re-explanation is NaN there); lower is better."""
    curve, _ = independent_randomization_curve(model, x, target, saliency, explain, similarity=similarity,
                                               postprocess=postprocess, seed=seed)
    return curve.nanmean(dim=1)


def random_other_class(target: Tensor, num_classes: int, generator: Generators = None) -> Tensor:
    """A class drawn uniformly from the ``num_classes - 1`` classes other than ``target (B,)``, seeded: one
    ``generator`` draws the whole batch, B of them row i's class from the i-th."""
    if num_classes < 2:
        raise ValueError(f"random_logit needs at least 2 classes, got {num_classes}")
    shift = draw_rows(generator, len(target), lambda g, rows: torch.randint(1, num_classes, (rows,), generator=g))
    shift = shift.to(target.device)
    return (target + shift) % num_classes


def random_logit(model: nn.Module, x: Tensor, target: Tensor, saliency: Tensor, explain: Explain, *,
                 num_classes: int, similarity: Similarity = "spearman_abs", postprocess: str = "abs",
                 seed: int = 0) -> Tensor:
    """Random-logit check (Sixt et al. 2020): similarity between the saliency for the target and
    for a random other class drawn per image (seeded from ``seed`` and the image), per sample ``(B,)``; lower is
    better."""
    other = random_other_class(target, num_classes, seeded_rows(seed, SALT_LOGIT, x))
    return _similar(saliency, explain(model, x, other), similarity, postprocess)


def data_randomization(permuted_model: nn.Module, x: Tensor, target: Tensor, saliency: Tensor, explain: Explain, *,
                       similarity: Similarity = "spearman_abs", postprocess: str = "abs") -> Tensor:
    """Data randomisation (Adebayo et al. 2018): similarity between ``saliency`` (of the model
    trained on the true labels) and the saliency of ``permuted_model``, trained by the same
    recipe on permuted labels, per sample ``(B,)``; lower is better."""
    return _similar(saliency, explain(permuted_model, x, target), similarity, postprocess)
