"""What a model really relies on, measured by intervention (planted shortcuts: Adebayo et al.
2022, "Post hoc Explanations may be Ineffective for Detecting Unknown Spurious Correlation").

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


def explained_indices(dataset: Any, n: int, subset: str = "all") -> list[int]:
    """The indices of the samples a run explains: the first ``n`` of ``dataset`` in index order,
    or with ``subset="positive"`` the first ``n`` whose :attr:`~faithbench.types.Sample.positive`
    is true (as :func:`faithbench.runner.batches.iter_batches` takes them)."""
    if subset != "positive":
        return list(range(min(n, len(dataset))))
    taken: list[int] = []
    for i in range(len(dataset)):
        if len(taken) == n:
            break
        if dataset[i].positive:
            taken.append(i)
    return taken


def sample_drops(model: nn.Module, dataset: Any, n: int, evidence: tuple[str, ...] = EVIDENCE,
                 batch_size: int = 32, subset: str = "all") -> list[dict[str, Any]]:
    """One row per (evidence, explained sample that holds it: a non-empty mask) of the explained
    samples (:func:`explained_indices`: the first ``n``, or the first ``n`` positive ones with
    ``subset="positive"``), ``batch_size`` at a time (memory does not grow with ``n``):
    ``sample_id``, ``evidence``, ``drop`` = p_c(x) − p_c(x without it), c = argmax on x, and
    ``flipped``, whether the prediction changes."""
    rows: list[dict[str, Any]] = []
    indices = explained_indices(dataset, n, subset)
    for name in evidence:
        chunk: list[int] = []
        for pos, i in enumerate(indices):
            mask = dataset[i].masks.get(name)
            if mask is not None and bool(mask.any()):
                chunk.append(i)
            if chunk and (len(chunk) == batch_size or pos == len(indices) - 1):
                drop, flip = _intervene(model, dataset, chunk, name)
                rows += [{"sample_id": dataset[k].id, "evidence": name, "drop": float(d), "flipped": bool(f)}
                         for k, d, f in zip(chunk, drop.tolist(), flip.tolist())]
                chunk = []
    return rows


def summarise_drops(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per evidence of :func:`sample_drops`' rows (in their order): ``n`` samples, ``mean_drop``
    and ``flip_rate`` (the fraction whose prediction changes)."""
    out = []
    for name in dict.fromkeys(r["evidence"] for r in rows):
        drops = [r for r in rows if r["evidence"] == name]
        out.append({"evidence": name, "n": len(drops), "mean_drop": float(torch.tensor([r["drop"] for r in drops],
                                                                                       dtype=torch.float64).mean()),
                    "flip_rate": sum(r["flipped"] for r in drops) / len(drops)})
    return out


def measure_reliance(model: nn.Module, dataset: Any, n: int, evidence: tuple[str, ...] = EVIDENCE,
                     batch_size: int = 32, subset: str = "all") -> list[dict[str, Any]]:
    """Per evidence type, over those of the explained samples that hold it
    (:func:`sample_drops`): ``mean_drop`` = mean of p_c(x) − p_c(x without it), c = argmax on x;
    ``flip_rate`` = fraction whose prediction changes; ``n`` samples used. Evidence no sample
    holds is left out."""
    return summarise_drops(sample_drops(model, dataset, n, evidence, batch_size, subset))


def _intervene(model: nn.Module, dataset: Any, idx: list[int], name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """For samples ``idx``: the drop of the predicted class's probability, and whether it flips."""
    x = torch.stack([dataset[i].image for i in idx]).float()
    x_cf = torch.stack([dataset.counterfactual(i, [name]).image for i in idx]).float()
    p, p_cf = predict_logits(model, x).softmax(-1), predict_logits(model, x_cf).softmax(-1)
    pred = p.argmax(-1)
    drop = p.gather(1, pred[:, None])[:, 0] - p_cf.gather(1, pred[:, None])[:, 0]
    return drop, p_cf.argmax(-1) != pred
