"""Errors of the models package (bad input: the CLI exits with code 2), and the one-line
explanations of a weights file that cannot be used."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import torch

from faithbench.names import counted


class CheckpointError(ValueError):
    """A weights file that cannot be used for this dataset (missing, unsafe, mismatched), or
    pretrained weights that cannot be had here."""


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")
STATE_DICT = "a state_dict (torch.save(model.state_dict(), path)) or a safetensors file"
INPLACE_INPUT = ("its forward changes its input in place (x.sub_(), x /= ...): explainers and metrics pass the same "
                 "images again, so every later number would be computed on changed images (a review: insertion "
                 "AUC 0.45 instead of 0.88); make forward work on a copy (x = x - m)")


def check_state_fits(path: Path, shapes: dict[str, tuple[int, ...]], state: dict[str, Any]) -> None:
    """``CheckpointError`` when the ``state`` read from ``path`` does not fit a model of parameter ``shapes``
    (:func:`weights_mismatch`), or when one of its tensors holds NaN or ±inf, naming the first (a fuzzing
    review: a file of NaN weights validated, then its NaN logits scored accuracy 0.45 and the test AUC was
    blamed on the test split)."""
    found = {str(k): tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__ for k, v in state.items()}
    problem = weights_mismatch(shapes, found)
    if problem:
        raise CheckpointError(f"{path} does not fit the model built for this dataset (check the classes and "
                              f"channels): {problem}")
    for name, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            bad = int((~torch.isfinite(value)).sum())
            if bad:
                raise CheckpointError(f"{path}: tensor {name!r} holds {bad} of {value.numel()} values that are NaN "
                                      f"or infinite: expected finite weights (a model of them outputs NaN)")


def check_converging(desc: str, losses: tuple[float, ...], epoch: int, lr: float) -> None:
    """``CheckpointError`` when one of an epoch's ``losses`` (its mean training and its validation
    loss) is not finite: the outputs are NaN or Inf (a fuzzing review: ``lr: 1e12`` was cached and
    used, every cell failed with an unrelated message; a diff review: ``max`` hid a NaN)."""
    loss = next((v for v in losses if not math.isfinite(v)), None)
    if loss is not None:
        raise CheckpointError(f"{desc}: training diverged (loss {loss} in epoch {epoch}): the model's outputs are "
                              f"no longer finite; lower the recipe's lr ({lr:g})")


def _some(names: list[str], k: int = 5) -> str:
    """The first ``k`` names, and how many more were left out."""
    return ", ".join(names[:k]) + (f" and {len(names) - k} more" if len(names) > k else "")


def weights_mismatch(expected: dict[str, tuple[int, ...]], found: dict[str, Any]) -> str:
    """What differs between a model's tensor shapes and a weights file's ("" when nothing): shape
    mismatches, then missing and unexpected names, each list cut by :func:`_some`. ``found`` maps a
    name to its shape, or to the type name of an entry that is not a tensor (``epoch: 5``)."""
    wrong = [f"{k} {found[k]} where the model has {shape}" for k, shape in expected.items()
             if k in found and found[k] != shape]
    missing, unexpected = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    text = "; ".join(f"{what}: {_some(names)}" for what, names in
                     (("shape mismatch", wrong), ("missing", missing), ("unexpected", unexpected)) if names)
    return text + _mismatch_hint(expected, found) if text else ""


def _mismatch_hint(expected: dict[str, tuple[int, ...]], found: dict[str, Any]) -> str:
    """What a mismatch most likely means: a state dict nested under another key, every name behind
    a wrapper's prefix (``module.``), or a first convolution built for another number of input
    channels."""
    nested = [k for k, v in found.items() if v in ("dict", "OrderedDict")]
    if nested and not set(expected) & set(found):
        return (f" (the tensors may be nested under {_some(nested)}: save that state dict itself; only "
                f"'state_dict' is unwrapped)")
    for prefix in sorted({k.split(".", 1)[0] + "." for k in found if "." in k}):
        stripped = {k[len(prefix):] for k in found if k.startswith(prefix)}
        if stripped and not set(expected) & set(found) and stripped >= set(expected):
            return (f" (every name carries the prefix {prefix!r}, as DataParallel's 'module.' or Lightning's "
                    f"'model.': save the wrapped network's state dict (DataParallel: model.module.state_dict(); "
                    f"Lightning: lit_module.model.state_dict()), or strip the prefix from the names)")
    for k, shape in expected.items():
        have = found.get(k)
        if isinstance(have, tuple) and len(shape) in (4, 5) and len(have) == len(shape) and have != shape \
                and have[:1] + have[2:] == shape[:1] + shape[2:]:
            return (f" (the file's {k} takes {counted(have[1], 'input channel')}, the model built here {shape[1]}: "
                    f"build it for {have[1]} (a timm model: params: {{in_chans: {have[1]}}}), give the dataset "
                    f"{counted(have[1], 'channel')} where it has that parameter, or pick {have[1]} of the image's "
                    f"channels with preprocess: {{channels: [...]}})")
    return ""


def refusal(path: Path, exc: Exception) -> str:
    """One line for a torch file that ``weights_only`` loading refused: the pickled code it holds
    (e.g. a whole model's class, from ``torch.save(model)``) or why it cannot be read, and what was
    expected. Torch's own message spans lines of advice, with ANSI escapes."""
    text = _ANSI.sub("", str(exc))
    found = _GLOBAL.search(text)
    if found:
        return (f"{path}: refused to load: it holds pickled code ({found.group(1)}), which loading would run "
                f"(a whole model saved with torch.save(model)?); expected {STATE_DICT}")
    if "TorchScript" in text:
        return (f"{path}: refused to load: a TorchScript archive (torch.jit.save), which holds code; expected "
                f"{STATE_DICT}: save model.state_dict()")
    detail = text.split("WeightsUnpickler error:", 1)[-1]  # after torch's advice, when it gives some
    first = next((line.strip() for line in detail.splitlines() if line.strip()), type(exc).__name__)
    return (f"{path}: refused to load: not a weights-only torch file, or a corrupt one ({first.split('. ')[0]}); "
            f"expected {STATE_DICT}")


def hub_name_with_weights(name: str) -> str:
    """An ``hf-hub:``/``local-dir:`` entry with a ``weights`` file (a held-out review: validate said ok, and the
    file silently replaced the folder's weights under the folder's name)."""
    return (f"model {name!r}: an {name.partition(':')[0]}: name brings its own pretrained weights, so give either "
            f"it or 'weights', not both: drop 'weights', or name the architecture as timm:ARCH with 'weights'")


__all__ = ["STATE_DICT", "CheckpointError", "hub_name_with_weights", "refusal", "weights_mismatch"]
