"""Temporal explainers for sequences ``x (B, C, T, H, W)`` (time = the first spatial axis; see
:mod:`faithbench.datasets.longitudinal`).

``temporal_occlusion`` drops one visit at a time (replaces it with the padding frame) and records
the drop of the target's score: the importance of each visit, spread evenly over its pixels so the
map keeps the ``(B, T, H, W)`` shape of every explainer and its sum over space is the drop.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from faithbench.configurable import AT_LEAST_ONE, Bound
from faithbench.explainers.base import Explainer
from faithbench.explainers.perturbation import EXPLAINER_SCORES, class_score
from faithbench.registry import explainers
from faithbench.types import DEFAULT_MASK_ROLES, MaskRole


@torch.no_grad()
def visit_drops(model: nn.Module, x: Tensor, target: Tensor, *, baseline: float = 0.0,
                score: str = "softmax", batch_size: int = 64, mode: str = "replace") -> Tensor:
    """Δ_t = f(x) - f(x without visit t) for every visit: ``(B, T)``.

    Without visit t: ``mode="replace"`` sets it to the padding frame ``baseline`` in place;
    ``mode="remove"`` takes it out of the sequence, moves the earlier visits one step later and
    puts a padding frame at the beginning (a shorter history, padded as the datasets pad).
    ``f`` is the target's ``softmax`` probability (default), ``sigmoid`` or ``logit``. One forward
    pass per visit and sample (B T images), ``batch_size`` at a time. Dropping a padding frame
    gives Δ = 0 in both modes when ``baseline`` is the data's padding value; with another value the
    padding frames change too and get a Δ like real visits (a held-out review).
    """
    if mode not in ("replace", "remove"):
        raise ValueError(f"unknown mode {mode!r}; expected replace or remove")
    b, t = x.shape[0], x.shape[2]
    base = class_score(model(x), target, score)
    occluded = x[:, None].repeat(1, t, *[1] * (x.ndim - 1))  # (B, T, C, T, H, W): copy k drops visit k
    for k in range(t):
        if mode == "remove":
            occluded[:, k, :, 1:k + 1] = x[:, :, :k]
            occluded[:, k, :, 0] = baseline
        else:
            occluded[:, k, :, k] = baseline
    flat = occluded.reshape(b * t, *x.shape[1:])
    targets = target.repeat_interleave(t)
    scores = torch.cat([class_score(model(flat[i:i + batch_size]), targets[i:i + batch_size], score)
                        for i in range(0, len(flat), batch_size)])
    return base[:, None] - scores.view(b, t)


@explainers.register("temporal_occlusion")
class TemporalOcclusionExplainer(Explainer):
    """Visit occlusion (Zeiler & Fergus 2014, with a whole visit as the window): saliency
    ``s[b, t, h, w] = Δ_t / (H W)``, Δ_t the drop of the target's probability without visit t
    (:func:`visit_drops`): ``mode: replace`` (default) puts the padding frame (``baseline``, 0.0 =
    the longitudinal datasets' background and padding value) in its place; ``mode: remove`` takes
    it out and pads the sequence again at the beginning. Its per-visit sum is Δ_t. 3D inputs only
    (axis 2 = time)."""

    family = "perturbation"
    needs_grad = False
    dims = frozenset({3})
    sequences = True  # (T, H, W) are a patient's visits: `faithbench list` says so, not "3D"
    paper = "Zeiler & Fergus 2014 (occlusion), one visit at a time"
    description = "score drop when one visit is replaced by the padding frame"
    defaults: ClassVar[dict[str, Any]] = {"baseline": 0.0, "mode": "replace", "score": "softmax", "batch_size": 64}
    bounds: ClassVar[dict[str, Bound]] = {"batch_size": AT_LEAST_ONE}
    choices: ClassVar[dict[str, tuple[str, ...]]] = {"score": EXPLAINER_SCORES, "mode": ("replace", "remove")}

    @property
    def padding_baseline(self) -> float:
        """The padding frame's value, which ``faithbench validate`` compares with a sequence dataset's
        ``background`` (:func:`faithbench.model_checks.warn_padding_baseline`)."""
        return float(self.baseline)

    def dataset_reason(self, masks: Collection[str], spatial_dims: int,
                       roles: Mapping[str, MaskRole] | None = None) -> str | None:
        """Sequences only: a 3D dataset without a mask whose role is validity (``valid`` by default:
        real visits vs padding) is a volume (a held-out review: its depth slices were occluded as
        visits, without a word)."""
        roles = DEFAULT_MASK_ROLES if roles is None else roles
        if spatial_dims == 3 and not any(roles.get(m) == MaskRole.VALIDITY for m in masks):
            return (f"{self.name} needs sequences of visits (T, H, W) with the mask 'valid' of a longitudinal "
                    "dataset (real visits vs padding); the dataset is 3D without it (a volume?): its depth slices "
                    "are not visits")
        return None

    def explain(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        drops = visit_drops(model, x, target, baseline=float(self.baseline), score=self.score,
                            batch_size=self.batch_size, mode=self.mode)
        space = x.shape[3:]
        n = 1
        for s in space:
            n *= int(s)
        return (drops / n).reshape(*drops.shape, *[1] * len(space)).expand(*drops.shape, *space).clone()


__all__ = ["TemporalOcclusionExplainer", "visit_drops"]
