"""Errors of the models package (bad input: the CLI exits with code 2), and the one-line
explanations of a weights file that cannot be used."""

from __future__ import annotations

import math
import pickletools
import re
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn

from faithbench.names import counted
from faithbench.scores import ONE_LOGIT_FIX, output_kind


class CheckpointError(ValueError):
    """A weights file that cannot be used for this dataset (missing, unsafe, mismatched), or
    pretrained weights that cannot be had here."""


class InputShapeError(ValueError):
    """A network's input transform given images of dimensions it cannot take (its 2D resize on volumes): the
    data's fault, so bad input at the run's first image (:func:`~faithbench.models.training.check_logits`),
    unlike any other error of a forward (a failed cell)."""


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


def norm_counters(model: nn.Module) -> set[str]:
    """The names of ``model``'s BatchNorm step counters (``bn1.num_batches_tracked``), which a weights file may
    lack: torch's strict ``load_state_dict`` and timm fill them in (they count training steps, unused in eval), and
    state dicts cleaned or converted by other tools drop them (a held-out review: such files were refused)."""
    return {f"{name}.num_batches_tracked".lstrip(".") for name, module in model.named_modules()
            if isinstance(module, nn.modules.batchnorm._NormBase) and module.track_running_stats}


def expected_shapes(model: nn.Module, found: Iterable[str]) -> dict[str, tuple[int, ...]]:
    """``model``'s tensor shapes by name that a weights file holding the names ``found`` must match: all but
    the BatchNorm counters (:func:`norm_counters`) the file lacks, which the model keeps."""
    lacking = norm_counters(model) - set(found)
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if k not in lacking}


def logits_problem(out: Any, num_classes: int) -> str | None:
    """Why a network's output ``out`` for a batch of one image is not its logits of shape ``(1, num_classes)``,
    or None: another type (a tuple, a dict, a HuggingFace-style output) or another shape, with its likely cause."""
    if not isinstance(out, torch.Tensor):  # a review: a tuple passed validate, then every cell failed
        return (f"expected the network to return one logits tensor of shape (batch, {num_classes}), got "
                f"{output_kind(out)} (wrap it in a module whose forward returns the logits)")
    if tuple(out.shape) == (1, num_classes):
        return None
    hint = ""
    if tuple(out.shape) == (1, 1) and num_classes == 2:
        hint = f" ({ONE_LOGIT_FIX})"
    elif out.ndim == 2 and out.shape[0] == 1:  # a held-out review: the builder ignored its num_classes argument
        hint = (f" (its head has {out.shape[1]} outputs for the dataset's {counted(num_classes, 'class', 'classes')}"
                f": does the builder ignore its num_classes argument?)")
    return f"expected logits of shape (batch, {num_classes}), got {tuple(out.shape)} for a batch of 1{hint}"


def check_converging(desc: str, losses: tuple[float, ...], epoch: int, lr: float, weight_decay: float = 0.0) -> None:
    """``CheckpointError`` when one of an epoch's ``losses`` (its mean training and its validation
    loss) is not finite: the outputs are NaN or Inf (a fuzzing review: ``lr: 1e12`` was cached and
    used, every cell failed with an unrelated message; a diff review: ``max`` hid a NaN). The message
    names ``weight_decay`` too where ``lr * weight_decay > 1``: each step's decay, the weights times
    ``1 - lr * weight_decay`` (AdamW; SGD's gradient term alike), overshoots zero, and beyond 2 the
    weights grow (a fuzzing review: ``weight_decay: 1e30`` diverged, and the message blamed lr alone)."""
    loss = next((v for v in losses if not math.isfinite(v)), None)
    if loss is not None:
        decay = f" or weight_decay ({weight_decay:g}; lr x weight_decay > 1)" if lr * weight_decay > 1 else ""
        raise CheckpointError(f"{desc}: training diverged (loss {loss} in epoch {epoch}): the model's outputs are "
                              f"no longer finite; lower the recipe's lr ({lr:g}){decay}")


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
    if hint := _prefix_hint(set(expected), list(found)) or _model_prefix_hint(list(expected), set(found)):
        return hint
    for k, shape in expected.items():
        have = found.get(k)
        if isinstance(have, tuple) and len(shape) in (4, 5) and len(have) == len(shape) and have != shape \
                and have[:1] + have[2:] == shape[:1] + shape[2:]:
            return (f" (the file's {k} takes {counted(have[1], 'input channel')}, the model built here {shape[1]}: "
                    f"build it for {have[1]} (a timm model: params: {{in_chans: {have[1]}}}), give the dataset "
                    f"{counted(have[1], 'channel')} where it has that parameter, or pick {have[1]} of the image's "
                    f"channels with preprocess: {{channels: [...]}})")
    return ""


def _prefix_hint(expected: set[str], found: list[str]) -> str:
    """Where stripping a prefix from the file's names (DataParallel's ``module.``, Lightning's ``model.``) makes
    more of the model's names match than the names as they are, and most of them: the prefixes that occur, how
    many names each, and what stripping the best ones matches (a held-out review: a file of both ``model.`` and
    ``ema_model.`` names was said to carry ``ema_model.`` in every name, and ``net.`` names with one tensor
    missing got no hint)."""
    prefixes = Counter(k.split(".", 1)[0] + "." for k in found if "." in k)
    fits = {}
    for prefix in prefixes:
        stripped = {k[len(prefix):] for k in found if k.startswith(prefix)}
        if len(stripped & expected) > max(len(expected & set(found)), len(expected) / 2):
            fits[prefix] = sorted(expected - stripped)
    if not fits:
        return ""
    best = [p for p in sorted(fits) if len(fits[p]) == min(map(len, fits.values()))]
    lacking = f" but for {_some(fits[best[0]])}, which the file lacks" if fits[best[0]] else ""
    fix = ("save the wrapped network's state dict (DataParallel: model.module.state_dict(); Lightning: "
           "lit_module.model.state_dict()), or strip the prefix from the names")
    if len(prefixes) == 1 and prefixes[best[0]] == len(found):
        lacking = f" (stripped, they match the model's names{lacking})" if lacking else ""
        return (f" (every name carries the prefix {best[0]!r}{lacking}, as DataParallel's 'module.' or Lightning's "
                f"'model.': {fix})")
    carry = _some([f"{p!r} ({counted(n, 'name')})" for p, n in sorted(prefixes.items(), key=lambda i: (-i[1], i[0]))],
                  4)
    strip = (f"stripping {best[0]!r} matches the model's names{lacking}" if len(best) == 1 else
             f"stripping {' or '.join(map(repr, best))} matches the model's names{lacking}: {len(best)} whole copies "
             f"of the network (an EMA or a teacher copy?), pick one")
    return f" (the names carry the prefixes {carry}; {strip}; as with DataParallel's 'module.' or Lightning's " \
           f"'model.', {fix})"


def _model_prefix_hint(expected: list[str], found: set[str]) -> str:
    """Where the model's own names carry a prefix the file's lack (a builder that wraps the saved network,
    ``self.net = net``, as when a single-logit network is widened to two logits): the prefix, and where to load
    the file (a held-out review: missing ``net.*`` and unexpected ``conv1.*`` names, without a hint)."""
    prefixes = Counter(k.split(".", 1)[0] + "." for k in expected if "." in k)
    for prefix, n in prefixes.most_common(1):
        inner = {k[len(prefix):] for k in expected if k.startswith(prefix)}
        if n > len(expected) / 2 and len(inner & found) > max(len(set(expected) & found), len(found) / 2):
            if n < len(expected):  # a diff review: vgg's features.* file for the whole vgg is no wrapper
                return (f" (the file's names are those of the model's {prefix[:-1]!r} part without the prefix "
                        f"{prefix!r}: a state dict saved from that part; save the whole model's state_dict())")
            return (f" (the model's names carry the prefix {prefix!r} that the file's lack: your builder wraps the "
                    f"saved network in {prefix[:-1]!r}; subclass the network instead of wrapping it, or save the "
                    f"wrapper's own state dict once (the file loaded into its {prefix[:-1]!r}))")
    return ""


def _pickled_strings(path: Path) -> set[str]:
    """The strings of a torch zip file's pickle, read from its opcodes (:mod:`pickletools` runs nothing); empty
    where it cannot be read so (another format, or a pickle beyond 64 MB)."""
    try:
        with zipfile.ZipFile(path) as archive:
            info = next(i for i in archive.infolist() if i.filename.rsplit("/", 1)[-1] == "data.pkl")
            if info.file_size > 64 << 20:
                return set()
            data = archive.read(info)
        return {arg for op, arg, _ in pickletools.genops(data) if isinstance(arg, str) and "UNICODE" in op.name}
    except Exception:  # noqa: BLE001 - not a readable zip pickle: the generic line
        return set()


def refusal(path: Path, exc: Exception) -> str:
    """One line for a torch file that ``weights_only`` loading refused: the pickled code it holds
    (e.g. a whole model's class, from ``torch.save(model)``) or why it cannot be read, and what was
    expected. Torch's own message spans lines of advice, with ANSI escapes."""
    text = _ANSI.sub("", str(exc))
    found = _GLOBAL.search(text)
    if found and "state_dict" in _pickled_strings(path):  # a held-out review: Lightning's hyper-parameters
        return (f"{path}: refused to load: a training checkpoint whose 'state_dict' sits beside pickled objects "
                f"({found.group(1)}, e.g. in its hyper-parameters), which loading would run; where you can load it, "
                f"save the state dict alone: torch.save(ckpt['state_dict'], 'weights.pt')")
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


__all__ = ["STATE_DICT", "CheckpointError", "expected_shapes", "hub_name_with_weights", "logits_problem",
           "norm_counters", "refusal", "weights_mismatch"]
