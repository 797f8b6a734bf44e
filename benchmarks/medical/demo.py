"""A small end-to-end run of the four medical-imaging analyses, outside the runner (CPU, minutes).

Trains two small CNNs (average- and max-pooled ``small_cnn``) with two seeds each on the 32 px
chest phantom (lesion contrast 0.6, radius 4-6 px at 64 px scale), explains the lesion-positive
test images with Grad-CAM, Integrated Gradients (16 steps) and the random control, then computes

1. repeatability / reproducibility of the maps (``repeatability_table``; not of the random
   control, whose maps ignore the model, as in the runner);
2. the CheXlocalize metrics (Otsu threshold; a gate tuned on validation data);
3. metric reliability (``perturbed_conditions`` + ``metric_reliability``);
4. the stratified analysis (``stratify``),

and writes ``repeatability.csv``, ``reliability.csv``, ``strata.csv`` and ``chexlocalize.csv`` into
``OUT`` (argument 1, default ``./medical_demo``). Usage::

    python benchmarks/medical/demo.py /tmp/medical_demo
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import torch

import faithbench.explainers  # noqa: F401  (registers the explainers)
import faithbench.metrics  # noqa: F401  (registers the metrics)
from faithbench.datasets.phantoms import PhantomCXR
from faithbench.metrics.base import EvalContext, ForwardCounter
from faithbench.metrics.functional.chexlocalize import chexlocalize_iou, tune_gate
from faithbench.metrics.functional.localization import area_fraction
from faithbench.metrics.reliability import perturbed_conditions
from faithbench.models.architectures import small_cnn
from faithbench.models.training import Recipe, evaluate_model, train_model
from faithbench.registry import explainers, metrics
from faithbench.reports.medical import write_reliability, write_repeatability, write_strata
from faithbench.stats.reliability import metric_reliability
from faithbench.stats.repeatability import repeatability_table
from faithbench.stats.strata import stratify

SIZE, SEEDS, EXPLAINERS = 32, (0, 1), ("gradcam", "integrated_gradients", "random")
MODELS = {"cnn_avg": {"pool": "avg"}, "cnn_max": {"pool": "max"}}
METRICS = ("chexlocalize_iou", "chexlocalize_hit", "pointing_game", "relevance_mass")


def _data(split: str, n: int):
    # a brighter, larger lesion than the default, so that a small CNN learns it in a few CPU epochs
    ds = PhantomCXR(split, n=n, size=SIZE, lesion_contrast=0.6, lesion_radius=(4.0, 6.0))
    x, y = ds.tensors()
    masks = torch.stack([ds[i].masks["lesion"] for i in range(len(ds))])
    return ds, x, y, masks


def _scores(model, x, y, masks, explain, seed):
    """Per-metric values (B,) for the explainer's maps of x on model."""
    target = y.clone()
    saliency = explain(model, x, target).detach()
    ctx = EvalContext(model=model, x=x, target=target, label=y, saliency=saliency, masks={"lesion": masks},
                      predict=ForwardCounter(model), seed=seed)
    return saliency, {name: metrics.get(name)()(ctx).value for name in METRICS}


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    _, x_train, y_train, _ = _data("train", 600)
    _, x_val, y_val, m_val = _data("val", 200)
    test, x_test, y_test, m_test = _data("test", 200)
    keep = y_test == 1  # the lesion-positive images: a mask to localise
    x, y, masks = x_test[keep][:48], y_test[keep][:48], m_test[keep][:48]
    ids = [test[i].id for i in torch.nonzero(keep).flatten()[:48].tolist()]
    maps, rows, reliability_rows, chex_rows = {}, [], [], []
    for name, model_params in MODELS.items():
        for seed in SEEDS:
            torch.manual_seed(seed)
            model = small_cnn(1, 2, (SIZE, SIZE), width=8, **model_params)
            weights = out / f"weights_{name}_{seed}.pt"  # a rerun reuses the trained weights
            if weights.exists():
                model.load_state_dict(torch.load(weights, weights_only=True))
            else:
                train_model(model, x_train, y_train, x_val, y_val, Recipe(epochs=5, lr=0.003, batch_size=32), seed,
                            desc=f"{name}/{seed}")
                torch.save(model.state_dict(), weights)
            model.eval()
            accuracy = evaluate_model(model, x_test, y_test)["accuracy"]
            with torch.no_grad():
                prob = model(x).softmax(-1)
                val_prob = model(x_val).softmax(-1)[:, 1]
            gradcam = explainers.get("gradcam")()
            val_maps = gradcam(model, x_val, torch.ones_like(y_val)).detach()
            val_iou = chexlocalize_iou(val_maps, m_val)
            gate = tune_gate(val_prob.numpy(), (y_val == 1).numpy(), val_iou=val_iou.numpy())
            for explainer in EXPLAINERS:
                params = {"n_steps": 16} if explainer == "integrated_gradients" else {}
                explain = explainers.get(explainer)(seed=seed, **params)  # the cell seed
                saliency, values = _scores(model, x, y, masks, explain, seed)
                if explain.family != "control":  # as the runner: a control's maps ignore the model
                    maps[("phantom_cxr", name, explainer, seed)] = (ids, y.tolist(), saliency)
                for metric, value in values.items():
                    for i, sid in enumerate(ids):
                        rows.append({"dataset": "phantom_cxr", "model": name, "explainer": explainer,
                                     "metric": metric, "seed": seed, "sample_id": sid, "value": float(value[i]),
                                     "category": "localization", "lesion_area": float(area_fraction(masks[i:i + 1])),
                                     "confidence": float(prob[i, 1]), "correct": bool(prob[i].argmax() == y[i])})
                gated = chexlocalize_iou(saliency, masks, prob=prob[:, 1], gate=gate)
                chex_rows.append({"model": name, "seed": seed, "accuracy": accuracy, "explainer": explainer,
                                  "gate": gate, "miou_otsu": float(values["chexlocalize_iou"].nanmean()),
                                  "miou_gated": float(gated.nanmean()),
                                  "hit_rate": float(values["chexlocalize_hit"].nanmean())})
                if name == "cnn_avg" and seed == 0:
                    for condition, (m, xc) in perturbed_conditions(model, x, seed).items():
                        _, cvalues = _scores(m, xc, y, masks, explain, seed)
                        for metric, value in cvalues.items():
                            for i, sid in enumerate(ids):
                                reliability_rows.append({"metric": metric, "explainer": explainer, "sample_id": sid,
                                                         "condition": condition, "value": float(value[i]),
                                                         "higher_is_better": True})
            print(f"{name} seed {seed}: test accuracy {accuracy:.3f}, gate {gate}", flush=True)
    repeat = repeatability_table(maps)
    write_repeatability(out, repeat)
    reliability = metric_reliability(pd.DataFrame(reliability_rows))
    write_reliability(out, reliability)
    strata = stratify(pd.DataFrame(rows))
    write_strata(out, strata)
    chex = pd.DataFrame(chex_rows)
    chex.to_csv(out / "chexlocalize.csv", index=False)
    pd.set_option("display.width", 200)
    print(chex.round(3).to_string(index=False))
    print(repeat.round(3).to_string(index=False))
    print(reliability.round(3).to_string(index=False))
    summary = strata[strata["metric"] == "chexlocalize_iou"].groupby(["explainer", "stratum_kind", "stratum"],
                                                                        sort=False)[["n", "mean"]].mean()
    print(summary.round(3).to_string())


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("medical_demo"))
