"""The model a group's cells share stays the model: a plugin's explainer or metric that changes its
weights or buffers in place (or swaps a tensor) would silently score every later cell of the
group on another model, and cache those scores under the checkpoint's key.

:class:`ModelGuard` keeps a copy of the model's state (on the CPU) and a fingerprint of it: per
parameter and buffer, its storage address, its version counter (which every in-place torch
operation on it bumps: ``mul_``, ``copy_``, ``load_state_dict``, batch-norm statistics updated by a
forward in train mode) and every k-th value (at most ``SAMPLED`` per tensor), which catches a
change through ``.data`` or NumPy, where the counter does not move (a change of values that are
all off the sample and made that way goes unseen). After each explain or score the runner calls
:meth:`ModelGuard.check`; a changed fingerprint restores the copy and raises
:class:`ModelModified`, which fails that cell (or metric) with a row in ``failures.csv`` while
the other cells go on with the original model. The built-in explainers and metrics perturb
copies (model randomisation: ``copy.deepcopy``) and never trip it. A ``train()`` mode left
behind is restored by the explainer's ``__call__``.

Cost of a check: one gather of the samples and one transfer; measured on the shared 2-core CPU,
medians of 21: 1.1 ms for resnet18 (122 tensors), 3.3 ms for resnet50 (320), against about 250 ms
for one forward pass of 8 images through resnet18. Where only version counters moved, the whole
state is compared with the copy (10 ms, resnet18). The copy: the model's size in CPU memory.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["SAMPLED", "ModelGuard", "ModelModified", "fingerprint"]

SAMPLED = 64  # values sampled per tensor (every k-th), besides its version counter


class ModelModified(RuntimeError):
    """A cell's explainer or metric changed the shared model; the model was restored."""


def _state(model: nn.Module) -> dict[str, Tensor]:
    return model.state_dict(keep_vars=True)


def fingerprint(model: nn.Module) -> tuple[tuple[str, ...], tuple[tuple[int, int], ...], Tensor]:
    """(names, (storage address, version) per tensor, the sampled values as float64 bits on the CPU)."""
    state = _state(model)
    names = tuple(state)
    stamps = tuple((t.data_ptr(), t._version) for t in state.values())
    samples = [t.detach().reshape(-1)[:: max(1, t.numel() // SAMPLED)] for t in state.values() if t.numel()]
    values = torch.cat(samples).to("cpu", torch.float64) if samples else torch.empty(0, dtype=torch.float64)
    return names, stamps, values.view(torch.int64)  # bits: a NaN weight equals itself


class ModelGuard:
    """Checks that ``model`` keeps its state between calls of :meth:`check`; restores it if not."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.copy = {name: t.detach().to("cpu", copy=True) for name, t in _state(model).items()}
        self.reference = fingerprint(model)

    def changed(self) -> bool:
        """Whether the state differs from the guard's copy: the fingerprints differ, and where only
        version counters moved (a plugin that writes a weight and puts it back), the values too."""
        now = fingerprint(self.model)
        names, stamps, values = now
        old_names, old_stamps, old_values = self.reference
        if names != old_names or not torch.equal(values, old_values):
            return True
        if stamps == old_stamps:
            return False
        state = _state(self.model)
        if any(state[k].shape != v.shape or not torch.equal(state[k].detach().cpu(), v) for k, v in self.copy.items()):
            return True
        self.reference = now  # written back as it was
        return False

    def check(self, who: str) -> None:
        """Raise :class:`ModelModified` (after restoring the model) if the state changed since the
        guard was made; ``who`` names the explainer or metric in the message."""
        if not self.changed():
            return
        self.model.load_state_dict(self.copy, strict=False)  # copies the values into the tensors there now
        self.reference = fingerprint(self.model)
        raise ModelModified(f"{who} changed the model's weights or buffers in place; the model was "
                            f"restored for the other cells. An explainer or metric must not modify the model: "
                            f"work on a copy (copy.deepcopy(model))")
