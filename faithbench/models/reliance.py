"""What a model really relies on, measured by intervention (SCIENCE.md, "Ground truth by
construction").

For a dataset that can regenerate a sample without a piece of evidence (the phantoms'
``counterfactual(i, remove)``: the same anatomy, texture and noise), the reliance of a model on
that evidence is the drop in the softmax probability of the class it predicts on x when the
evidence is removed, and how often the prediction flips. A saliency map is faithful to a model
with a shortcut when its mass on the marker tracks this reliance, not the lesion's plausibility.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from faithbench.models.training import predict_logits

EVIDENCE = ("lesion", "marker")


def can_intervene(dataset: Any) -> bool:
    return callable(getattr(dataset, "counterfactual", None))


def measure_reliance(model: nn.Module, dataset: Any, n: int, evidence: tuple[str, ...] = EVIDENCE) -> list[dict[str, Any]]:
    """Per evidence type, over the first ``n`` samples that hold it (a non-empty mask):
    ``mean_drop`` = mean of p_c(x) − p_c(x without it), c = argmax on x; ``flip_rate`` =
    fraction whose prediction changes; ``n`` samples used. Evidence no sample holds is left out.
    """
    rows = []
    for name in evidence:
        idx = [i for i in range(min(n, len(dataset))) if dataset[i].masks.get(name) is not None
               and bool(dataset[i].masks[name].any())]
        if not idx:
            continue
        x = torch.stack([dataset[i].image for i in idx]).float()
        x_cf = torch.stack([dataset.counterfactual(i, [name]).image for i in idx]).float()
        p, p_cf = predict_logits(model, x).softmax(-1), predict_logits(model, x_cf).softmax(-1)
        pred = p.argmax(-1)
        drop = p.gather(1, pred[:, None])[:, 0] - p_cf.gather(1, pred[:, None])[:, 0]
        rows.append({"evidence": name, "n": len(idx), "mean_drop": float(drop.mean()),
                     "flip_rate": float((p_cf.argmax(-1) != pred).float().mean())})
    return rows
