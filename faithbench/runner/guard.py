"""The model a group's cells share stays the model: a plugin's explainer or metric that changes its
weights or buffers in place, swaps a tensor or a module, or leaves a hook behind would silently
score every later cell of the group on another model, and cache those scores under the
checkpoint's key.

:class:`ModelGuard` keeps a copy of the model's tensors (every parameter and buffer, the
non-persistent ones too, such as the input transform's mean and std; on the CPU) and a
fingerprint: the modules (name, identity, type, hook counts), and per tensor its storage
address, its version counter (which every in-place torch operation on it bumps: ``mul_``,
``copy_``, ``load_state_dict``, batch-norm statistics updated by a forward in train mode) and
about ``SAMPLED`` of its values (every k-th), which catch a change through ``.data`` or NumPy,
where the counter does not move (a change made that way to values all off the sample goes
unseen). The runner calls :meth:`ModelGuard.check` after every call of plugin code on the model
(explain, score, calibration inputs, the applicability check, the reliability re-scoring). A
changed fingerprint, or a tensor on another device (``model.cpu()`` on a GPU run), restores the copy
(the model moved back) and raises :class:`ModelModified`, which fails that cell (or metric) with a row
in ``failures.csv`` while the other cells go on with the original model.
A change the copy cannot undo (a module replaced or removed, a hook added, a tensor of another
shape) breaks the guard: that check and every later one raise, so the rest of the group fails
rather than run on another model. The built-in explainers and metrics perturb copies (model
randomisation: ``copy.deepcopy``) and never trip it. A ``train()`` mode left behind is restored
by the explainer's ``__call__``.

Cost of a check: one gather of the samples and one transfer; measured on the shared 2-core CPU
under load, medians of 21: 1.2 ms for resnet18 (122 tensors), 3.8 ms for resnet50 (320), against
330 ms for one forward pass of 8 images through resnet18 in the same run. Where only version counters moved, every
tensor is compared with the copy (10 ms, resnet18). The copy: the model's size in CPU memory.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["SAMPLED", "InputGuard", "InputModified", "ModelGuard", "ModelModified", "fingerprint"]

SAMPLED = 64  # values sampled per tensor (every ceil(n / SAMPLED)-th), besides its version counter

_RULE = ("An explainer or metric must not modify the model: work on a copy (copy.deepcopy(model)) and "
         "remove its hooks")


class ModelModified(RuntimeError):
    """A cell's explainer or metric changed the shared model (restored, or the guard is broken)."""


class InputModified(RuntimeError):
    """A cell's explainer or metric changed the batch, its masks or the cell's saliency (restored)."""


def _tensors(model: nn.Module) -> dict[str, Tensor]:
    """Every parameter and buffer by name, the non-persistent buffers too."""
    return {**dict(model.named_parameters(remove_duplicate=False)), **dict(model.named_buffers(remove_duplicate=False))}


def _structure(model: nn.Module) -> tuple[Any, ...]:
    return tuple((name, id(m), type(m), len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks),
                  len(m._backward_pre_hooks)) for name, m in model.named_modules(remove_duplicate=False))


def fingerprint(model: nn.Module) -> tuple[tuple[Any, ...], tuple[tuple[str, int, int], ...], Tensor]:
    """(the modules, (name, storage address, version) per tensor, the sampled values as float64
    bits on the CPU)."""
    tensors = _tensors(model)
    stamps = tuple((name, t.data_ptr(), t._version) for name, t in tensors.items())
    samples = [t.detach().reshape(-1)[:: math.ceil(t.numel() / SAMPLED)] for t in tensors.values() if t.numel()]
    values = torch.cat(samples).to("cpu", torch.float64) if samples else torch.empty(0, dtype=torch.float64)
    return _structure(model), stamps, values.view(torch.int64)  # bits: a NaN weight equals itself


class ModelGuard:
    """Checks that ``model`` keeps its modules and tensors between calls of :meth:`check`;
    restores the tensors if not."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.copy = {name: t.detach().to("cpu", copy=True) for name, t in _tensors(model).items()}
        self.devices = {name: t.device for name, t in _tensors(model).items()}
        self.reference = fingerprint(model)
        self.broken: str | None = None  # who changed what could not be undone
        self.moved = ""  # "cuda:0 -> cpu" when the last change found was a tensor moved to another device

    def changed(self) -> bool:
        """Whether the model differs from the guard's copy: the fingerprints differ, and where only
        version counters or storages moved (a plugin that writes a weight and puts it back), the
        values, dtypes or devices too. A tensor on another device than when the guard was made is a
        change (a review: a plugin's ``model.cpu()`` on a GPU run was taken for a weight put back, and
        every later cell of the group failed with a device mismatch blamed on it)."""
        tensors = _tensors(self.model)
        moved = [(self.devices[k], t.device) for k, t in tensors.items()
                 if k in self.devices and t.device != self.devices[k]]
        self.moved = f"{moved[0][0]} -> {moved[0][1]}" if moved else ""
        if moved:
            return True
        now = fingerprint(self.model)
        structure, stamps, values = now
        if structure != self.reference[0] or not torch.equal(values, self.reference[2]):
            return True
        if stamps == self.reference[1]:
            return False
        if tensors.keys() != self.copy.keys() or any(
                t.shape != c.shape or t.dtype != c.dtype or not torch.equal(t.detach().cpu(), c)
                for t, c in ((tensors[k], c) for k, c in self.copy.items())):
            return True
        self.reference = (self.reference[0], stamps, self.reference[2])  # written back as it was
        return False

    def _restore(self) -> bool:
        """Copy the saved values back into the model's tensors; False when they cannot be (the
        modules or the tensors' names, shapes or dtypes changed). A model moved to another device is
        moved back first, where all its tensors were on one device."""
        tensors = _tensors(self.model)
        if _structure(self.model) != self.reference[0] or tensors.keys() != self.copy.keys():
            return False
        devices = set(self.devices.values())
        if any(t.device != self.devices[k] for k, t in tensors.items()) and len(devices) == 1:
            self.model.to_empty(device=next(iter(devices)))  # every value is copied back below
            tensors = _tensors(self.model)
        if _structure(self.model) != self.reference[0] or tensors.keys() != self.copy.keys() or any(
                tensors[k].shape != c.shape or tensors[k].dtype != c.dtype or tensors[k].device != self.devices[k]
                for k, c in self.copy.items()):
            return False
        with torch.no_grad():
            for name, saved in self.copy.items():
                tensors[name].copy_(saved)
        self.reference = fingerprint(self.model)
        return True

    def check(self, who: str, *, raise_error: bool = True) -> bool:
        """Whether the model changed since the guard was made (restored where it can be). With
        ``raise_error``, a change raises :class:`ModelModified` instead; ``who`` names the explainer
        or metric. Once a change could not be undone, every check raises (or returns True)."""
        if self.broken is None:
            if not self.changed():
                return False
            moved = self.moved
            if self._restore():
                if raise_error and moved:
                    raise ModelModified(f"{who} moved the model to another device ({moved}); the model was moved "
                                        f"back and restored for the other cells. {_RULE}")
                if raise_error:
                    raise ModelModified(f"{who} changed the model's weights or buffers in place; the model was "
                                        f"restored for the other cells. {_RULE}")
                return True
            self.broken = who
        if raise_error:
            raise ModelModified(f"{self.broken} changed the model's modules or tensors beyond what can be restored "
                                f"(a module replaced or removed, a hook added, a tensor of another shape or "
                                f"moved to another device); the "
                                f"group's other cells are not run on it. {_RULE}")
        return True


def _same(tensor: Tensor, saved: Tensor) -> bool:
    """Same shape, dtype and values (NaN where ``saved`` has NaN)."""
    if tensor.shape != saved.shape or tensor.dtype != saved.dtype:
        return False
    return bool(((tensor == saved) | (tensor.isnan() & saved.isnan())).all()) if tensor.is_floating_point() else (
        torch.equal(tensor, saved))


class InputGuard:
    """The batch every cell of a group is fed (``x``, ``target``, ``label``, ``labels``, each mask)
    and a cell's saliency are the same tensors for every explainer and metric that reads them: a
    plugin that changes one in place (``x.mul_(0)``, ``masks["lesion"][:] = 1``, a new key in
    ``masks``) would silently change every later cell's and metric's scores, and cache them under
    the clean batch's keys (found by a held-out review). The guard keeps a copy of each (on their
    device; the batch is small beside the model's activations) and :meth:`check`, after each call
    of plugin code, compares every value, restores what changed and raises :class:`InputModified`,
    which fails that cell (explainer) or metric with a row in ``failures.csv``. Cost: a copy of
    the batch and its masks, and one element-wise comparison of them per check; it grows with the
    number of masks (a review measured 0.5 s per check on the CPU for 50 region masks of 8 x 64^3,
    a batch's own 116 MiB copied once more), small beside a metric's forward passes elsewhere."""

    def __init__(self, masks: dict[str, Tensor], **tensors: Tensor | None) -> None:
        self.masks, self.mask_items = masks, dict(masks)
        self.tensors = {name: t for name, t in tensors.items() if t is not None}
        self.tensors.update({f"masks[{name!r}]": m for name, m in masks.items()})
        self.copy = {name: t.detach().clone() for name, t in self.tensors.items()}

    def add(self, name: str, tensor: Tensor) -> None:
        """Guard ``tensor`` too (a cell's saliency, once computed)."""
        self.tensors[name], self.copy[name] = tensor, tensor.detach().clone()

    def check(self, who: str, failing: BaseException | None = None, ctx: Any = None) -> None:
        """Restore what changed since the guard was made and raise :class:`InputModified` naming
        it; with ``failing``, the error that code raised, only restore and note it on that error.
        ``ctx``: the metrics' :class:`~faithbench.metrics.base.EvalContext`, whose fields must still
        be the guarded tensors (one context serves a batch's metrics)."""
        changed = [] if self.masks.keys() == self.mask_items.keys() and all(
            self.masks[k] is m for k, m in self.mask_items.items()) else ["masks"]
        self.masks.clear()
        self.masks.update(self.mask_items)
        for field in ("x", "target", "label", "labels", "saliency", "masks"):
            expected = self.masks if field == "masks" else self.tensors.get(field)
            if ctx is not None and (expected is not None or field == "labels") and getattr(ctx, field) is not expected:
                changed.append(f"ctx.{field}")
                setattr(ctx, field, expected)
        with torch.no_grad():
            for name, tensor in self.tensors.items():
                saved = self.copy[name]
                if not _same(tensor, saved):
                    changed.append(name)
                    if tensor.shape != saved.shape or tensor.dtype != saved.dtype:
                        tensor.data = saved.clone()
                    else:
                        tensor.copy_(saved)
        if not changed:
            return
        message = (f"{who} changed its input in place ({', '.join(changed)}); restored for the other cells and "
                   "metrics. An explainer or metric must not modify x, the masks or the saliency: work on a copy "
                   "(x.clone())")
        if failing is not None:
            failing.add_note(message)
            return
        raise InputModified(message)
