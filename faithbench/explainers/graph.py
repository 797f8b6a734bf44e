"""What a network computes outside its leaf modules: the check of explainers that act on modules.

captum's LRP and DeepLIFT attach their rules to leaf modules (layers without children). An operation
the forward applies functionally, between modules, gets no rule: a residual block's skip addition
(``out += identity``), a DenseNet's concatenations, torchvision's ``F.adaptive_avg_pool2d`` and
``F.relu`` in ``DenseNet.forward``. The map is then not the method's, with nothing to tell: a held-out
review measured LRP relevance of 1e18-1e24 on MONAI's ResNet and DenseNet for logits below 1, and
DeepLIFT sums of -1.58 for a score change of +3.97 on torchvision's DenseNet-121.

:func:`trace_leaves` runs one forward pass of one sample with hooks on the leaves and walks the
autograd graph of the output back to the input, stepping over each leaf call (from its output to the
inputs it was given), so that every node it meets was made outside the leaves. It also counts the
calls of each leaf (captum's DeepLIFT keeps one input and output per module: a ReLU module called
twice, as in torchvision's ResNet blocks, fails inside captum).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

# Operations that only move or copy values: relevance (LRP) and multipliers (DeepLIFT) pass them exactly.
VIEW_OPS = frozenset({"View", "Reshape", "ReshapeAlias", "UnsafeView", "Squeeze", "Unsqueeze", "Permute",
                      "Transpose", "T", "Clone", "Expand", "Repeat", "AsStrided", "Alias", "ToCopy"})
# Element-wise or order-dependent non-linear operations (DeepLIFT needs a rule at each; captum has
# rules for modules only). Mul and Div count when both operands depend on the input (a gating). Where counts
# always (a ReLU written torch.where(h > 0, h, 0): a review; its condition is not in the graph, so a fixed mask too).
NONLINEAR_OPS = frozenset({"Where",
    "Relu", "Threshold", "Sigmoid", "Tanh", "Gelu", "Silu", "Hardswish", "Hardsigmoid", "Hardtanh", "Elu",
    "LeakyRelu", "Softplus", "Mish", "Prelu", "Softmax", "LogSoftmax", "Abs", "Pow", "Exp", "Log", "Sqrt",
    "Rsqrt", "Clamp", "ClampMin", "ClampMax", "Maximum", "Minimum", "Max", "Min", "Amax", "Amin", "Sort",
    "Topk", "MaxPool2DWithIndices", "MaxPool3DWithIndices", "AdaptiveMaxPool2D", "AdaptiveMaxPool3D",
    "NativeLayerNorm", "NativeGroupNorm", "Reciprocal"})


def leaf_modules(model: nn.Module) -> list[nn.Module]:
    """The leaves of ``model`` (modules without children): where captum's LRP and DeepLIFT put rules."""
    return [m for m in model.modules() if not list(m.children())]


@contextmanager
def added_attributes_removed(modules: list[nn.Module], names: tuple[str, ...]) -> Iterator[None]:
    """On exit, delete the attributes ``names`` that ``modules`` did not hold on entry: captum leaves
    ``activations`` (LRP) and ``input``/``output`` (DeepLIFT, when it fails) behind on the model."""
    held = {m: {k for k in names if k in m.__dict__} for m in modules}
    try:
        yield
    finally:
        for m, kept in held.items():
            for k in names:
                if k not in kept:
                    m.__dict__.pop(k, None)


def op_name(node: Any) -> str:
    """``AddBackward0`` -> ``Add``: the forward operation an autograd node stands for."""
    return re.sub(r"Backward\d*$", "", type(node).__name__)


@dataclass
class LeafTrace:
    """The functional operations between leaf modules (name -> count, in graph order of discovery) and
    the number of calls of each leaf module (by qualified name)."""

    functional: Counter = field(default_factory=Counter)
    calls: Counter = field(default_factory=Counter)

    def outside(self, allowed: frozenset[str]) -> list[str]:
        """Functional operations not in ``allowed``, sorted."""
        return sorted(op for op in self.functional if op not in allowed)

    def nonlinear(self) -> list[str]:
        """Functional non-linear operations (DeepLIFT gets no rule there), sorted."""
        return sorted(op for op in self.functional if op in NONLINEAR_OPS or op.endswith("(gate)"))

    def reused(self, kinds: tuple[type, ...], model: nn.Module) -> list[str]:
        """Leaves of ``kinds`` called more than once in the forward pass, as 'name (n calls)'."""
        modules = dict(model.named_modules())
        return [f"{name} ({n} calls)" for name, n in self.calls.items()
                if n > 1 and isinstance(modules.get(name), kinds)]


def trace_leaves(model: nn.Module, x: Tensor, *, through: tuple[type, ...] = ()) -> LeafTrace | None:
    """Trace one forward pass of ``x[:1]`` (a zero image of that shape on the model's device when ``x``
    is on the meta device, as validate passes). None when the output is not one tensor, the model
    has no parameters to place the image by, or the forward fails (the explainer's own call tells).
    Leaves whose exact type is in ``through`` are traced into, their operations counted as functional."""
    params = list(model.parameters())
    if not params:
        return None
    device = params[0].device
    sample = torch.zeros(x[:1].shape, dtype=params[0].dtype, device=device) if x.is_meta else x[:1].detach().clone()
    sample.requires_grad_(True)
    names = {m: n for n, m in model.named_modules()}
    outputs: dict[Any, list[Any]] = {}  # a leaf call's output node -> the nodes of the inputs it was given
    trace = LeafTrace()
    hooks = []

    def pre_hook(module: nn.Module, args: tuple) -> None:
        module.__dict__["_faithbench_inputs"] = [a.grad_fn for a in args if isinstance(a, Tensor)]

    def hook(module: nn.Module, _args: tuple, out: Any) -> None:
        given = module.__dict__.pop("_faithbench_inputs", [])
        trace.calls[names[module]] += 1
        for t in (out if isinstance(out, (tuple, list)) else (out,)):
            if isinstance(t, Tensor) and t.grad_fn is not None and t.grad_fn not in given:
                outputs[t.grad_fn] = given  # an Identity returns its input: no step over it

    for module in leaf_modules(model):
        if type(module) not in through:
            hooks += [module.register_forward_pre_hook(pre_hook), module.register_forward_hook(hook)]
    try:
        with torch.enable_grad():
            out = model(sample)
    except Exception:  # noqa: BLE001 - a forward that fails here fails the explainer's own call, which says why
        return None
    finally:
        for h in hooks:
            h.remove()
        for module in model.modules():
            module.__dict__.pop("_faithbench_inputs", None)
    if not isinstance(out, Tensor):
        return None
    memo: dict[Any, bool] = {}

    def from_input(node: Any) -> bool:
        """Whether ``node`` depends on the sample (not only on parameters: a learnable scale)."""
        pending = [node]
        while pending:
            current = pending[-1]
            if current is None or current in memo:
                pending.pop()
                continue
            if type(current).__name__ == "AccumulateGrad":
                memo[current] = getattr(current, "variable", None) is sample
                pending.pop()
                continue
            nexts = [n for n, _ in current.next_functions if n is not None and n not in memo]
            if nexts:
                pending.extend(nexts)
                continue
            memo[current] = any(memo.get(n, False) for n, _ in current.next_functions if n is not None)
            pending.pop()
        return node is not None and memo[node]

    seen, stack = set(), [out.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if node in outputs:
            stack.extend(outputs[node])
            continue
        name = op_name(node)
        if name == "AccumulateGrad" or not from_input(node):
            continue  # a parameter, or what is computed from parameters alone (a learnable temperature's exp)
        nexts = [n for n, _ in node.next_functions]
        if name in ("Mul", "Div") and sum(from_input(n) for n in nexts) > 1:
            name += " (gate)"
        trace.functional[name] += 1
        stack.extend(nexts)
    return trace


def foreign_nonlinear_leaves(model: nn.Module, x: Tensor, base: LeafTrace, handled: tuple[type, ...] = (),
                             only: frozenset[str] | None = None) -> list[str]:
    """The leaf module types defined outside torch.nn whose forward applies a non-linear operation,
    as 'Type (operations)': captum's DeepLIFT keys its rules on exact torch.nn types and guided
    backpropagation guides nn.ReLU modules, so such a module (MONAI's Swish and Mish, a user's own
    activation or a subclass of nn.ReLU) gets plain gradients (a held-out review: DeepLIFT sums of 0.19
    for a score change of 0.57 on MONAI's DenseNet with ``act: swish``). One traced forward pass per
    such type, into that type's leaves only, against ``base`` (the caller's :func:`trace_leaves`, every
    leaf stepped over): the model's operations outside the type's leaves are not the type's (a
    review: faithbench's input transform was blamed for a SE-ResNet's gates). ``handled``: subclasses
    the method handles itself (guided backpropagation's captum hooks take every ``isinstance`` of
    nn.ReLU; DeepLIFT's exact types); ``only``: the operations that count (guided backpropagation:
    activations, not a gate)."""
    found: list[str] = []
    foreign = sorted({type(m) for m in leaf_modules(model)
                      if not type(m).__module__.startswith("torch.nn.") and not isinstance(m, handled)},
                     key=lambda t: (t.__module__, t.__qualname__))
    def counts(trace: LeafTrace | None) -> Counter:
        return Counter() if trace is None else Counter({op: trace.functional[op] for op in trace.nonlinear()})

    for cls in foreign:  # the operations the trace gains inside the type's leaves, not the model's elsewhere
        inside = counts(trace_leaves(model, x, through=(cls,))) - counts(base)
        if ops := sorted(op for op in inside if only is None or op in only):
            found.append(f"{cls.__name__} ({', '.join(ops)})")
    return found

