"""captum 0.9's DeepLift with the output gradient of each rule module taken after its consumers' rules.

captum (``captum._utils.common._register_backward_hook``) hooks a rule module's output tensor for the
gradient that arrives there (its ``grad_output``) and the input tensor it was given for the gradient to
replace by the DeepLIFT multiplier. When a rule module feeds another directly (ReLU -> ReLU, ReLU ->
MaxPool, ReLU -> Identity -> ReLU, as ``small_cnn``'s conv-ReLU-max-pool), both hooks sit on one tensor
and the first module's, registered first, reads the gradient before the second module's rule replaces it:
the plain gradient, not the multiplier (captum issue #1104; fixed upstream by captum PR #1843, after 0.9.0).
A held-out review measured summation-to-delta 54 % off on ReLU -> ReLU and 5 % on ReLU -> MaxPool2d. And
the input hook, on the tensor every consumer shares, replaced the gradient of the other consumers too
(a ReLU whose input also feeds a skip: 1.4 % off).

:class:`AdjacentSafeDeepLift` keeps captum's rules and registers the two tensor hooks on tensors of the
module's own: the module reads a clone of its input (hooked: the gradient through this module only) and
its consumers read a clone of its output, whose gradient reaches the hooked output after every consumer's
rule. Clones do not change values: a network with one rule module between linear layers gets the same
map bit for bit.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Callable

from captum.attr import DeepLift
from captum.attr._core.deep_lift import maxpool1d, maxpool2d, maxpool3d
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle


def _first(value: Any) -> Tensor:
    """The one tensor of a module's input or output (captum's rule modules take and give one)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(f"deeplift: a rule module takes and gives one tensor, got {len(value)}")
        return value[0]
    return value


def rule_hooks(module: nn.Module, rule: Callable[[nn.Module, Tensor, Tensor], Any]) -> list[RemovableHandle]:
    """Forward hooks on ``module`` that call ``rule(module, grad_input, grad_output)`` in the backward pass
    and use what it returns as the gradient of the module's input."""
    grad_out: dict[Any, Tensor] = {}

    def keep(grad: Tensor) -> None:
        grad_out[grad.device] = grad

    def pre_hook(_module: nn.Module, args: Any) -> Tensor:
        given = _first(args).clone()  # an in-place module changes the clone; the hook holds the value before

        def replace(grad: Tensor) -> Tensor | None:
            if not grad_out:
                return None
            new = rule(module, grad, grad_out[grad.device])
            return new[0] if isinstance(new, tuple) else new

        given.register_hook(replace)
        return given

    def forward_hook(_module: nn.Module, _args: Any, out: Any) -> Any:
        first = _first(out)
        first.register_hook(keep)  # reached after the hooks of the clone its consumers read
        return (first.clone(),) if isinstance(out, (tuple, list)) else first.clone()

    return [module.register_forward_pre_hook(pre_hook), module.register_forward_hook(forward_hook)]


def overlapping_max_pool(module: nn.Module) -> bool:
    """A max-pool whose windows overlap (kernel > stride on some axis: every ResNet's and DenseNet's stem, k3 s2),
    or a dilated one (captum's rule fails on it with an error).
    captum's max-pool rule un-pools with ``max_unpool``, which overwrites where windows overlap instead of summing:
    36 % off on conv -> MaxPool2d(3, 2, 1) alone (a diff review). Such a pool gets no rule and passes its plain
    gradient, which routes every window's share to its maximum and sums over the windows; with a ReLU before it
    (the stems) that is what captum 0.9 computed (#1104): exact to float rounding on resnet18 (3.8e-6), still
    approximate in general (8.9 % on a conv-ReLU-conv-ReLU-pool CNN, as captum 0.9)."""
    if not isinstance(module, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)):
        return False
    dims = {nn.MaxPool1d: 1, nn.MaxPool2d: 2, nn.MaxPool3d: 3}[type(module)]

    def per_axis(v: Any) -> tuple[int, ...]:
        return tuple(v) if isinstance(v, (tuple, list)) else (int(v),) * dims

    kernel = per_axis(module.kernel_size)
    stride = per_axis(module.stride)  # torch sets it to kernel_size when none is given
    dilation = per_axis(module.dilation)
    if any(d > 1 for d in dilation):  # captum's rule fails on a dilated pool ("invalid output_size", a diff review)
        return True
    return any(k > s for k, s in zip(kernel, stride))


ADAPTIVE_MAX_POOLS = (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)


def global_max_pool(module: nn.Module) -> bool:
    """An adaptive max-pool to one cell per channel (``output_size`` 1 on every axis, as ``small_cnn``'s ``pool:
    max``): a max over the whole grid, which is captum's max-pool rule with one window the size of the grid, exact
    (one window, no overlap). Other adaptive max-pools have no rule (their windows may overlap)."""
    if not isinstance(module, ADAPTIVE_MAX_POOLS) or module.return_indices:
        return False
    size = module.output_size
    return all(s == 1 for s in (size if isinstance(size, (tuple, list)) else (size,)))


class AdjacentSafeDeepLift(DeepLift):
    """captum's DeepLift whose rule modules read their output gradient after their consumers' rules
    (:func:`rule_hooks`), and with captum's max-pool rule on a global adaptive max-pool (:func:`global_max_pool`).
    Otherwise the rules are captum's."""

    def _is_non_linear(self, module: nn.Module) -> bool:
        return super()._is_non_linear(module) or global_max_pool(module)

    def _backward_hook(self, module: nn.Module, grad_input: Tensor, grad_output: Tensor) -> Tensor:
        if not global_max_pool(module) or not self.satisfies_attribute_criteria(module):
            return super()._backward_hook(module, grad_input, grad_output)  # captum's, or its error on reuse
        window = tuple(module.input.shape[2:])  # the max-pool this global pool is
        pool = SimpleNamespace(input=module.input, kernel_size=window, stride=window, padding=0, dilation=1,
                               ceil_mode=False)
        rule = {1: maxpool1d, 2: maxpool2d, 3: maxpool3d}[len(window)]
        multipliers = rule(pool, module.input, module.output, grad_input, grad_output, eps=self.eps)
        del module.input, module.output  # as captum's hook
        return multipliers

    def _register_hooks(self, module: nn.Module, attribute_to_layer_input: bool = True) -> None:
        if not self._can_register_hook(module) or overlapping_max_pool(module):
            return
        self.forward_handles.append(module.register_forward_hook(self._forward_hook))
        self.forward_handles.append(module.register_forward_pre_hook(self._forward_pre_hook))
        self.backward_handles.extend(rule_hooks(module, self._backward_hook))
