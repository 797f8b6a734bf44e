"""Training recipes: a checkpoint is trained once from a recipe and cached by its hash.

The validation split is carved from the training data (the dataset's ``val`` split, generated
or split apart from ``train``), never the test split; the best epoch on validation loss is
kept (early stopping with ``patience``).
"""

from __future__ import annotations

import logging
import math
from typing import Annotated, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from torch import Tensor, nn
from tqdm.auto import tqdm

from faithbench.configurable import Bool, Float, Int, unrepresentable
from faithbench.models.auc import (MIN_CI_PER_CLASS, auc_ci, auc_exact_p, binary_auc, class_auc_cis, class_log_odds,
                                   macro_and_class_cis, macro_auc_permutation_p)
from faithbench.models.errors import INPLACE_INPUT, CheckpointError, InputShapeError, check_converging, logits_problem
from faithbench.progress import bars_disabled, nested_position

log = logging.getLogger(__name__)


def _representable(value: Any) -> Any:
    """A recipe's number that torch takes, the check a plugin's parameters get (:func:`unrepresentable`; a fuzzing
    review: lr 1e39 failed every cell with a float overflow, n_train 1e20 failed validate with islice's ValueError)."""
    if problem := unrepresentable(value):
        raise ValueError(f"expected {problem}, got {value!r}")
    return value


Int64 = Annotated[Int, AfterValidator(_representable)]  # within int64
Float32 = Annotated[Float, AfterValidator(_representable)]  # 0 or within float32's normal range: not inf, not 0


class Recipe(BaseModel):
    """How to train a checkpoint. Every field is part of the checkpoint's cache key; its numbers are ones torch
    takes (int64, float32's normal range), as a plugin's parameters are."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: Int64 = Field(4, ge=1)
    lr: Float32 = Field(1e-3, gt=0)
    batch_size: Int64 = Field(64, ge=1)
    weight_decay: Float32 = Field(0.05, ge=0)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    schedule: Literal["constant", "cosine"] = "cosine"
    warmup_epochs: Float32 = Field(0.0, ge=0)
    label_smoothing: Float32 = Field(0.0, ge=0, lt=1)
    patience: Int64 = Field(100, ge=1)
    linear_probe: Bool = False
    n_train: Int64 | None = Field(None, ge=1)
    class_weights: Bool = False


def _lr_at(step: int, total: int, warmup: int, recipe: Recipe) -> float:
    if warmup and step < warmup:
        return recipe.lr * (step + 1) / warmup
    if recipe.schedule == "constant":
        return recipe.lr
    progress = (step - warmup) / max(1, total - warmup)
    return recipe.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _head_parameters(model: nn.Module) -> list[nn.Parameter]:
    if hasattr(model, "get_classifier"):
        return list(model.get_classifier().parameters())
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    return list(last.parameters())


def train_model(model: nn.Module, x_train: Tensor, y_train: Tensor, x_val: Tensor, y_val: Tensor,
                recipe: Recipe, seed: int, *, desc: str = "train", keep_best: bool = True) -> dict[str, list[float]]:
    """Train in place; keep the weights of the epoch with the lowest validation loss
    (``keep_best=False``: the last epoch's weights, and no early stopping).

    x: ``(N, C, *spatial)`` float; y: ``(N,)`` long class indices (cross-entropy), or ``(N, K)``
    0/1 vectors for a multi-label dataset (a sigmoid per class: binary cross-entropy with logits;
    ``label_smoothing`` ε moves the targets to ε/2 and 1 − ε/2, ``class_weights`` sets each
    class's ``pos_weight`` to negatives / positives). Returns the history per epoch.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    dev = model_device(model)  # minibatches go to the model's device; the data stays where it is
    if recipe.n_train is not None:
        x_train, y_train = x_train[: recipe.n_train], y_train[: recipe.n_train]
    params = _head_parameters(model) if recipe.linear_probe else list(model.parameters())
    if recipe.linear_probe:
        for p in model.parameters():
            p.requires_grad_(False)
        for p in params:
            p.requires_grad_(True)
    opt: torch.optim.Optimizer = (torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
                                  if recipe.optimizer == "adamw" else
                                  torch.optim.SGD(params, lr=recipe.lr, momentum=0.9, weight_decay=recipe.weight_decay))
    weight = None
    multilabel = y_train.ndim == 2
    if recipe.class_weights and multilabel:
        positives = y_train.float().sum(0)
        weight = (len(y_train) - positives) / positives.clamp(min=1)
    elif recipe.class_weights:
        counts = torch.bincount(y_train, minlength=int(y_train.max()) + 1).float()
        weight = counts.sum() / (len(counts) * counts.clamp(min=1))
    weight = None if weight is None else weight.to(dev)

    n = len(x_train)
    steps_per_epoch = math.ceil(n / recipe.batch_size)
    total, warmup = recipe.epochs * steps_per_epoch, int(recipe.warmup_epochs * steps_per_epoch)
    history: dict[str, list[float]] = {"train_loss": [], "val_loss": [], "val_accuracy": []}
    best_loss, best_state, stale, step = float("inf"), None, 0, 0
    bar = tqdm(range(recipe.epochs), desc=desc, leave=False, unit="epoch", disable=bars_disabled(),
               position=nested_position())  # inside the suite's bar: no ESC[A in a redirected log (a review)
    for _epoch in bar:
        model.train()
        perm = torch.randperm(n, generator=gen)
        losses = []
        for i in range(0, n, recipe.batch_size):
            idx = perm[i : i + recipe.batch_size]
            for group in opt.param_groups:
                group["lr"] = _lr_at(step, total, warmup, recipe)
            xb, yb = x_train[idx].to(dev), y_train[idx].to(dev)
            logits = model(xb)
            if multilabel:
                eps = recipe.label_smoothing
                soft = yb.float() * (1 - eps) + eps / 2
                loss = F.binary_cross_entropy_with_logits(logits, soft, pos_weight=weight)
            else:
                loss = F.cross_entropy(logits, yb, weight=weight, label_smoothing=recipe.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            step += 1
        val = evaluate_model(model, x_val, y_val, ci=False)  # the epoch needs loss and accuracy only
        history["train_loss"].append(float(np.mean(losses)))
        check_converging(desc, (history["train_loss"][-1], val["loss"]), len(history["train_loss"]), recipe.lr,
                         recipe.weight_decay)
        history["val_loss"].append(val["loss"])
        history["val_accuracy"].append(val["accuracy"])
        bar.set_postfix(loss=f"{np.mean(losses):.3f}", val_acc=f"{val['accuracy']:.3f}")
        if not keep_best:
            continue
        if val["loss"] < best_loss - 1e-6:
            best_loss, stale = val["loss"], 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
            if stale >= recipe.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history


def train_on_frozen_features(model: nn.Module, x_train: Tensor, y_train: Tensor, x_val: Tensor, y_val: Tensor,
                             recipe: Recipe, seed: int, *, desc: str = "train",
                             keep_best: bool = True) -> dict[str, list[float]]:
    """Train ``model.head`` in place on ``model.frozen_features(x)``, computed once (a frozen
    backbone gives the same features every epoch): a temporal model's sequence head on its
    backbone's per-visit features. Same recipe semantics as :func:`train_model`.

    x: ``(N, C, *spatial)``; ``frozen_features`` maps it to the head's input. Returns the history.
    """
    dev = model_device(model)

    def features(x: Tensor) -> Tensor:
        return torch.cat([model.frozen_features(x[i:i + 256].to(dev)).to(x.device) for i in range(0, len(x), 256)])

    model.eval()
    f_train, f_val = features(x_train), features(x_val)
    return train_model(model.head, f_train, y_train, f_val, y_val, recipe, seed, desc=desc, keep_best=keep_best)


@torch.inference_mode()
def predict_logits(model: nn.Module, x: Tensor, batch_size: int = 256) -> Tensor:
    """Logits of ``x`` in chunks, computed on the model's device, returned on ``x``'s device."""
    model.eval()
    dev = model_device(model)
    return torch.cat([model(x[i : i + batch_size].to(dev)).to(x.device) for i in range(0, len(x), batch_size)])


def permuted(y: Tensor, seed: int) -> Tensor:
    """Labels shuffled by a seeded permutation (Adebayo et al. 2018, data randomisation)."""
    return y[torch.randperm(len(y), generator=torch.Generator().manual_seed(seed + 7919))]


def permuted_fit(model: nn.Module, x: Tensor, y: Tensor, n_train: int | None) -> float | None:
    """The permuted-label twin's accuracy on the permuted training labels ``y`` it was trained on (the
    first ``n_train`` of the split, as the recipe). Adebayo et al. 2018's twin memorises them (near 1);
    near the majority class's share it learnt little, and ``data_randomization`` then compares with a
    barely trained network (a review: 0.539 on the ``sanity`` suite's phantoms). None on multi-label data."""
    if y.ndim != 1:
        return None
    n = n_train or len(y)
    return float((predict_logits(model, x[:n]).argmax(-1) == y[:n]).double().mean())


def check_logits(model: nn.Module, x: Tensor, num_classes: int, label: str) -> None:
    """``CheckpointError`` where ``model``'s output for the first image of ``x`` is not one logits tensor of shape
    ``(1, num_classes)`` (:func:`~faithbench.models.errors.logits_problem`). Validate runs the network on the meta
    device and leaves a forward it cannot run (``Tensor.item()``) to the run, where a tuple it returned failed in
    training or evaluation with the framework's error (a held-out review: exit 1, "cross_entropy_loss(): argument
    'input' (position 1) must be Tensor, not tuple"). An input transform that cannot take that image's dimensions
    (:class:`~faithbench.models.errors.InputShapeError`: a 2D ``hf-hub:`` network on volumes) is a ``CheckpointError``
    too, exit code 2, not a failed cell (exit code 1; a review); any other error of the forward (out of memory, a
    bug in the model's code) stays the cell's failure (a diff review: a CPU allocator error was bad input, exit 2,
    and a two-model run lost the other model's results). In eval mode, without gradients, on a copy of the CPU's
    random state: training and the metrics see the model as before."""
    if not len(x):
        return
    training = model.training
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            out = model.eval()(x[:1].to(model_device(model)))
    except InputShapeError as exc:  # a network that cannot take the data (a 2D network on volumes): bad input
        raise CheckpointError(f"model {label!r}: fails on the first image, of shape {tuple(x[:1].shape)}: "
                              f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}") from None
    finally:
        model.train(training)
    if problem := logits_problem(out, num_classes):
        raise CheckpointError(f"model {label!r}: {problem}")


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (the CPU for a model with neither)."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def multilabel_metrics(logits: Tensor, y: Tensor, classes: tuple[str, ...] | None = None, *,
                       ci: bool = True) -> dict[str, float]:
    """Multi-label ``logits (N, K)`` against 0/1 ``y (N, K)``, a class present when its sigmoid
    is > 0.5 (logit > 0): ``accuracy``, ``f1`` and ``auc`` are macro means over the K classes of
    each class's accuracy, F1 and ROC AUC (classes whose AUC is undefined, all positive or all
    negative, left out; so are those without F1, no positive sample or prediction: NaN, not sklearn's
    0); ``loss`` is the mean binary cross-entropy with logits. With ``classes`` (K names), also
    ``accuracy_<name>``, ``f1_<name>``, ``auc_<name>`` and the class's AUC CI ``auc_ci_low_<name>``,
    ``auc_ci_high_<name>`` (:func:`class_auc_cis`, the macro CI's resamples) per class, with the binary rule
    of :func:`classification_metrics` per class: ``auc_ci_min_class_n_<name>`` (the class's positive or
    negative test samples, whichever are fewer; below ``MIN_CI_PER_CLASS`` its CI is NaN, since 1 positive
    ranked first gave [1.0, 1.0]) and there only ``auc_exact_p_<name>`` (its exact one-sided Mann–Whitney p).
    ``ci=False`` skips the bootstrap (``auc_ci_low``/``auc_ci_high`` NaN, no ``auc_exact_p_<name>``)."""
    logits, y = logits.float(), y.long()
    pred = (logits > 0).numpy()
    yn = y.numpy().astype(bool)
    scores = logits.double().numpy()  # ranked as the sigmoids, without float32's ties at 1 (faithbench.models.auc)
    accs, f1s, aucs = [], [], []
    for c in range(logits.shape[-1]):
        tp = float((pred[:, c] & yn[:, c]).sum())
        fp = float((pred[:, c] & ~yn[:, c]).sum())
        fn = float((~pred[:, c] & yn[:, c]).sum())
        accs.append(float((pred[:, c] == yn[:, c]).mean()))
        f1s.append(2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else float("nan"))  # neither: undefined
        aucs.append(binary_auc(scores[:, c], yn[:, c].astype(int)))
    nan = (float("nan"), float("nan"))
    (low, high), class_cis = macro_and_class_cis(scores, yn.astype(int)) if ci else (nan, [nan] * scores.shape[1])
    f1 = float(np.nanmean(f1s)) if not np.all(np.isnan(f1s)) else float("nan")
    out: dict[str, float] = {"accuracy": float(np.mean(accs)), "f1": f1,
           "auc": float(np.nanmean(aucs)) if not np.all(np.isnan(aucs)) else float("nan"),
           "auc_ci_low": low, "auc_ci_high": high,
           "loss": float(F.binary_cross_entropy_with_logits(logits, y.float()))}
    for c, (name, acc, f1, auc, (c_low, c_high)) in enumerate(zip(classes or (), accs, f1s, aucs, class_cis)):
        smaller = int(min(yn[:, c].sum(), (~yn[:, c]).sum()))  # a class of few: no CI, as binary data (a review)
        out.update({f"accuracy_{name}": acc, f"f1_{name}": f1, f"auc_{name}": auc,
                    f"auc_ci_low_{name}": c_low, f"auc_ci_high_{name}": c_high,  # NaN below MIN_CI_PER_CLASS
                    f"auc_ci_min_class_n_{name}": smaller})
        if ci and smaller < MIN_CI_PER_CLASS:
            out[f"auc_exact_p_{name}"] = auc_exact_p(scores[:, c], yn[:, c].astype(int))
    return out


def macro_f1(pred: np.ndarray, y: np.ndarray) -> tuple[float, int]:
    """The mean F1 over the classes present in ``y`` or ``pred`` (single-label class indices), as
    scikit-learn's ``f1_score(average="macro")``, and their number. A class with no test sample and no
    prediction has no F1 (a review: counted as 0, 4 classes of 10 outputs scored 0.141, not 0.352)."""
    classes = np.union1d(np.unique(y), np.unique(pred))
    f1s = [2 * ((pred == c) & (y == c)).sum() / ((pred == c).sum() + (y == c).sum()) for c in classes]
    return (float(np.mean(f1s)) if f1s else float("nan")), len(f1s)


def classification_metrics(logits: Tensor, y: Tensor, classes: tuple[str, ...] | None = None, *,
                           ci: bool = True) -> dict[str, float]:
    """Accuracy, macro F1 (:func:`macro_f1`; ``f1_classes`` the classes it averages), AUC (binary; macro
    one-vs-rest for more classes), its 95% bootstrap CI (``auc_ci_low, auc_ci_high``, :func:`auc_ci`), CE loss,
    ``predicted_classes`` (distinct argmax classes: 1 for a model that predicts one class for all),
    ``auc_ci_min_class_n`` (the smaller side of the (one-vs-rest) splits; below ``MIN_CI_PER_CLASS`` the CI is NaN)
    and ``auc_exact_p`` there only (absent with ``ci=False`` or at least ``MIN_CI_PER_CLASS`` of each): two classes
    :func:`faithbench.models.auc.auc_exact_p`, the exact one-sided Mann–Whitney p; more the label-permutation p of
    the macro AUC (:func:`faithbench.models.auc.macro_auc_permutation_p`), ``majority``
    (the test share of the most frequent class). More than two ``classes``: each class's test samples, one-vs-rest
    AUC and CI (``ovr_n_<name>``, ``ovr_auc_<name>``, ``ovr_auc_ci_low_<name>``, ``ovr_auc_ci_high_<name>``).
    Multi-label ``y (N, K)``: :func:`multilabel_metrics` (``classes`` names its per-class columns).
    ``ci=False`` skips the bootstrap (``auc_ci_low``/``auc_ci_high`` NaN), e.g. after each epoch."""
    if y.ndim == 2:
        return multilabel_metrics(logits, y, classes, ci=ci)
    logits, y = logits.float(), y.long()
    scores, pred, yn, k = class_log_odds(logits), logits.argmax(-1).numpy(), y.numpy(), logits.shape[-1]
    aucs = [binary_auc(scores[:, c], (yn == c).astype(int)) for c in range(k)]
    f1, f1_classes = macro_f1(pred, yn)
    onehot = (yn[:, None] == np.arange(k)[None, :]).astype(int)
    (low, high), cis = (float("nan"),) * 2, [(float("nan"),) * 2] * k
    if ci and k > 2:  # the macro and per-class CIs from one set of resamples, drawn once
        (low, high), cis = macro_and_class_cis(scores, onehot)
    elif ci:
        low, high = auc_ci(scores[:, 1], onehot[:, 1]) if k == 2 else auc_ci(scores, onehot)
    smaller = int(np.bincount(yn, minlength=2).min())  # binary: read only where no CI is given (too few of a class)
    sides = [min(int((yn == c).sum()), len(yn) - int((yn == c).sum())) for c in range(k)]  # one-vs-rest
    if k > 2:  # a review: 3 classes of 1 image gave [1.0, 1.0]; the two-class rule over the classes present
        smaller = min((n for n, c in zip(sides, range(k)) if (yn == c).any()), default=0)
        low, high = (low, high) if smaller >= MIN_CI_PER_CLASS else (float("nan"),) * 2
    per_class: dict[str, float] = {}  # a review: a class never learned (AUC 0.306) under a macro CI above 0.5
    if k > 2 and classes is not None and len(classes) == k:
        per_class = {f"ovr_{part}_{name}": v for c, (name, auc, (c_low, c_high)) in enumerate(zip(classes, aucs, cis))
                     for part, v in (("n", int((yn == c).sum())), ("auc", auc), ("auc_ci_low", c_low),
                                     ("auc_ci_high", c_high))}
    exact = (None if not ci or smaller >= MIN_CI_PER_CLASS else
             auc_exact_p(scores[:, 1], onehot[:, 1]) if k == 2 else macro_auc_permutation_p(scores, yn))
    return {
        "accuracy": float((pred == yn).mean()),
        "f1": f1, "f1_classes": f1_classes,
        "auc": aucs[1] if k == 2 else (float("nan") if np.all(np.isnan(aucs)) else float(np.nanmean(aucs))),
        "auc_ci_low": low,
        "auc_ci_high": high,
        "loss": float(F.cross_entropy(logits, y)),
        "predicted_classes": int(np.unique(pred).size), "majority": float(np.bincount(yn).max() / len(yn)),
        "auc_ci_min_class_n": smaller, **per_class, **({"auc_exact_p": exact} if exact is not None else {}),
    }


def evaluate_model(model: nn.Module, x: Tensor, y: Tensor, classes: tuple[str, ...] | None = None, *,
                   ci: bool = True, label: str | None = None, notes: list[str] | None = None) -> dict[str, float]:
    """Test metrics of ``model`` on ``(x, y)``; with ``label`` (the model entry's), a model whose
    outputs look like probabilities is warned of (:func:`looks_like_probabilities`; single-label and
    multi-label, ``y (N, K)``: a review's sigmoid-ended multi-label net went unwarned, its accuracy
    0.493 instead of 0.964 and deletion AUCs moved by up to 0.46), and the warning appended to
    ``notes`` (the checkpoint's, which a run folder records)."""
    before = x[:32].clone() if label is not None else None  # the first batch tells; not a copy of the whole split
    logits = predict_logits(model, x)
    if before is not None and not bool(((x[:32] == before) | (x[:32].isnan() & before.isnan())).all()):
        raise CheckpointError(f"model {label!r}: {INPLACE_INPUT}")
    kind = looks_like_probabilities(logits) if label is not None else None
    if kind:
        what = {"softmax": "each row sums to 1", "sigmoid": "every output lies in [0, 1]"}[kind]
        applied = "softmax" if y.ndim == 1 else "a sigmoid per class"
        message = (f"model {label!r} returns probabilities, not logits (every test output is >= 0 and {what}: a "
                   f"final {kind}): the metrics apply {applied} to the model's outputs, so every probability "
                   f"they read is squashed; return the logits (drop the final {kind})")
        log.warning(message)
        if notes is not None:
            notes.append(message)
    return classification_metrics(logits, y, classes, ci=ci)


def looks_like_probabilities(logits: Tensor, tol: float = 1e-4) -> str | None:
    """``"softmax"`` where every row of ``logits`` (N, K), K > 1, is >= 0 and sums to 1 within
    ``tol`` (a held-out review: deletion AUCs shrank from [0.06, 0.94] to [0.30, 0.71]);
    ``"sigmoid"`` where, over at least 8 rows, every output lies in [0, 1], some at most 0.05 and some
    at least 0.95 (a review: a per-class sigmoid head squashed deletion AUCs from 0.19–0.45 to
    0.40–0.47 without a word; the ends keep a weakly trained network's small logits out); else None."""
    if logits.ndim != 2 or logits.shape[1] < 2 or logits.numel() == 0:
        return None
    if not bool((logits >= 0).all()):
        return None
    if bool(((logits.sum(1) - 1).abs() <= tol).all()):
        return "softmax"
    ends = bool((logits <= 0.05).any() and (logits >= 0.95).any())
    return "sigmoid" if logits.shape[0] >= 8 and bool((logits <= 1).all()) and ends else None


__all__ = ["Recipe", "check_logits", "permuted", "permuted_fit", "train_model", "train_on_frozen_features",
           "evaluate_model", "classification_metrics", "multilabel_metrics", "binary_auc", "auc_ci", "class_auc_cis",
           "predict_logits"]
