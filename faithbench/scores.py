"""The score of the explained class, one function for explainers and metrics alike.

``target_score(logits, target, score)`` reads row i's logit vector at class ``target[i]``:

- ``prob`` (alias ``softmax``): the softmax probability (single-label models);
- ``sigmoid``: the sigmoid of the target logit (multi-label models: one sigmoid per class);
- ``logit``: the raw target logit;
- ``correct``: 1 when the arg-max is the target, else 0;
- ``present``: 1 when the target logit is > 0 (sigmoid > 0.5), else 0 (multi-label).

:data:`MULTILABEL` maps a single-label score to its multi-label counterpart. The ground floor:
it imports nothing of faithbench.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor

Score = Literal["prob", "softmax", "logit", "correct", "sigmoid", "present"]
SCORES: tuple[str, ...] = ("prob", "softmax", "logit", "correct", "sigmoid", "present")
MULTILABEL: dict[str, str] = {"prob": "sigmoid", "softmax": "sigmoid", "correct": "present", "logit": "logit",
                              "sigmoid": "sigmoid", "present": "present"}


def target_score(logits: Tensor, target: Tensor, score: str) -> Tensor:
    """``(B,)`` scores of ``logits (B, K)`` at ``target (B,)``; see the module docstring."""
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
