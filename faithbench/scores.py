"""The score of the explained class, one function for explainers and metrics alike.

``target_score(logits, target, score)`` reads row i's logit vector at class ``target[i]``:

- ``prob`` (alias ``softmax``): the softmax probability (single-label models);
- ``sigmoid``: the sigmoid of the target logit (multi-label models: one sigmoid per class);
- ``logit``: the raw target logit;
- ``correct``: 1 when the arg-max is the target, else 0;
- ``present``: 1 when the target logit is > 0 (sigmoid > 0.5), else 0 (multi-label).

:data:`MULTILABEL` maps a single-label score to its multi-label counterpart. :func:`same_prediction`
is the one definition of "x_j gets the same prediction as x_i" that the batch-level metrics
(``consistency``, ``sufficiency``) share; :func:`decision_changed` is its per-row counterpart for a perturbed
copy x' of x (the robustness metrics' ``nan_if_prediction_changes``). :func:`output_problem` is the one check
that a network's output is logits ``(B, K)``, shared by the explainers, the metrics' forward and the run's model
check. The ground floor: it imports nothing of faithbench.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

Score = Literal["prob", "softmax", "logit", "correct", "sigmoid", "present"]
SCORES: tuple[str, ...] = ("prob", "softmax", "logit", "correct", "sigmoid", "present")
MULTILABEL: dict[str, str] = {"prob": "sigmoid", "softmax": "sigmoid", "correct": "present", "logit": "logit",
                              "sigmoid": "sigmoid", "present": "present"}

# the fix for a binary model with one logit z, named by every refusal of one (run, validate, a score)
ONE_LOGIT_FIX = ("a single-logit binary head: have its forward return torch.cat([torch.zeros_like(z), z], 1), "
                 "whose softmax is [1 - sigmoid(z), sigmoid(z)]; docs/models.md")
# scores that are the same for every input of a model with one output, and why
ONE_OUTPUT_CONSTANT: dict[str, str] = {"prob": "a softmax over one logit is 1",
                                       "softmax": "a softmax over one logit is 1",
                                       "correct": "the arg-max of one output is class 0"}


def output_kind(out: Any) -> str:
    """What a network returned, in words, where it is not a tensor: ``a tuple of 2 items``, ``an object of type
    O with .logits (a HuggingFace-style output)`` (a review: "got a O")."""
    if hasattr(out, "logits"):
        return f"an object of type {type(out).__name__} with .logits (a HuggingFace-style output)"
    return f"a {type(out).__name__}" + (f" of {len(out)} items" if isinstance(out, (tuple, list, dict)) else "")


def output_problem(out: Any, batch: int) -> str | None:
    """Why a network's output ``out`` for a batch of ``batch`` images is not one logits tensor ``(batch, K)``, or
    None (a held-out review: a tuple was "'tuple' object has no attribute 'shape'" from an explainer, and a
    ``(B, 3, 1)`` output "target class 2 is past the model's 1 outputs")."""
    if not isinstance(out, Tensor):
        return (f"expected the model to return one logits tensor of shape ({batch}, classes), got {output_kind(out)} "
                f"(wrap it in a module whose forward returns the logits)")
    if out.ndim != 2 or out.shape[0] != batch:
        return (f"expected the model to return logits of shape ({batch}, classes), got {tuple(out.shape)} for a "
                f"batch of {batch}")
    return None


def target_score(logits: Tensor, target: Tensor, score: str) -> Tensor:
    """``(B,)`` scores of ``logits (B, K)`` at ``target (B,)``; see the module docstring. A target
    past the K outputs is a ``ValueError`` on the CPU (a review: a raw torch ``RuntimeError`` where the
    caller gave no class names to check it against; on a GPU the check would wait for every chunk).
    ``prob``, ``softmax`` and ``correct`` on a model with one output (K = 1) are a ``ValueError``: they are
    the same for every input, so every map would score the same (a held-out review: deletion and insertion
    AUC 1.0 for any map of a ``Linear(4, 1)`` head); ``sigmoid`` and ``logit`` read one output as it is."""
    if logits.ndim != 2:
        raise ValueError(f"expected logits of shape (batch, classes), got {tuple(logits.shape)}")
    if logits.shape[-1] == 1 and score in ONE_OUTPUT_CONSTANT:
        raise ValueError(f"score {score!r} on a model with one output: {ONE_OUTPUT_CONSTANT[score]} for every input, "
                         f"so every explainer would score the same; expected two or more outputs ({ONE_LOGIT_FIX}), "
                         f"or the 'logit' score (or 'sigmoid', a multi-label model's)")
    if logits.device.type == "cpu" and target.numel() and int(target.max()) >= logits.shape[-1]:
        raise ValueError(f"target class {int(target.max())} is past the model's {logits.shape[-1]} outputs; "
                         f"expected class indices 0 to {logits.shape[-1] - 1}")
    picked = logits.gather(1, target[:, None])[:, 0]
    if score == "logit":
        return picked
    if score == "sigmoid":
        return picked.sigmoid()
    if score == "present":
        return (picked > 0).to(logits.dtype)
    if score in ("prob", "softmax"):
        return logits.softmax(-1).gather(1, target[:, None])[:, 0]
    if score == "correct":
        return (logits.argmax(-1) == target).to(logits.dtype)
    raise ValueError(f"unknown score {score!r}; expected one of {', '.join(SCORES)}")


def same_prediction(logits: Tensor, target: Tensor | None = None) -> Tensor:
    """``(B, B)`` bool, ``[i, j]``: f_i(x_j) = f_i(x_i), where f_i is the decision that row i's map
    explains, one function read on both inputs (Dasgupta et al. 2022's f(x_j) = f(x_i)).

    - Single-label (``target`` None): f is the predicted class, the arg-max of ``logits (B, K)`` (the
      explained class plays no part, as in the paper): ``[i, j]`` = argmax(x_j) = argmax(x_i).
    - Multi-label (``target (B,)``, a row per (sample, explained class k_i)): f_i is the decision on
      row i's class k_i, present when its logit is > 0 (sigmoid > 0.5, as ``present`` above):
      ``[i, j]`` = [logit_{k_i}(x_j) > 0] = [logit_{k_i}(x_i) > 0]. Row j's own explained class
      plays no part, and neither do the other classes (a held-out review: the arg-max of K sigmoids,
      or the whole set of present classes, never read the class a row explains). Not symmetric
      where k_i != k_j."""
    if target is None:
        return as_same_prediction(logits.argmax(-1))
    present = logits > 0
    on_own_class = present[:, target.to(logits.device)].T  # [i, j]: x_j's decision on class k_i
    return on_own_class == on_own_class.diagonal()[:, None]


def decision_changed(logits: Tensor, perturbed_logits: Tensor, target: Tensor | None = None) -> Tensor:
    """``(S, B)`` bool, True where perturbed copy s of row b gets another decision than the original:
    ``logits (B, K)``, ``perturbed_logits (S, B, K)``; the decision is the one row b's map explains, as in
    :func:`same_prediction`.

    - Single-label (``target`` None): the predicted class, argmax(x') != argmax(x).
    - Multi-label (``target (B,)``, a row per (sample, explained class k_b)): the decision on row b's
      class k_b, [logit_k(x') > 0] != [logit_k(x) > 0]. A copy that moves the top one of the K independent
      sigmoids but not class k's decision is the same decision for that row, and one that flips class k's is
      not, whatever the top class does (a held-out review: the arg-max never read the explained class)."""
    if target is None:
        return perturbed_logits.argmax(-1) != logits.argmax(-1)[None]
    k = target.to(logits.device)
    rows = torch.arange(k.shape[0], device=logits.device)
    return (perturbed_logits[:, rows, k] > 0) != (logits[rows, k] > 0)[None]


def as_same_prediction(predicted: Tensor) -> Tensor:
    """``(B, B)`` bool from ``predicted``: ``(B,)`` class labels (``[i, j]`` = labels equal), or a
    ``(B, B)`` bool matrix as :func:`same_prediction` gives, returned as it is."""
    b = predicted.shape[0]
    if predicted.ndim == 1:
        return predicted[:, None] == predicted[None, :]
    if predicted.dtype != torch.bool or tuple(predicted.shape) != (b, b):
        raise ValueError(f"expected predicted as ({b},) class labels or a ({b}, {b}) bool matrix of same "
                         f"predictions (scores.same_prediction), got {predicted.dtype} of shape "
                         f"{tuple(predicted.shape)}")
    return predicted
