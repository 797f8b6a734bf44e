"""The metric protocol: a thin registered class over a pure function in ``functional/``.

A metric reads an :class:`EvalContext` and returns a :class:`MetricOutput`: per-sample values ``value (B,)``, plus
optionally ``chance (B,)`` (the chance level, for localisation), ``curve (B, K)`` with ``fractions (K,)``
(perturbation curves) and ``regions`` (per-region scores). Metrics never aggregate.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from collections.abc import Collection
from typing import Any, ClassVar, Iterator

import torch
from torch import Tensor, nn

from faithbench.configurable import Configurable, ParameterError
from faithbench.device import dtype_mismatch, eval_mode, is_out_of_memory, release_memory
from faithbench.metrics.context_checks import check_batch, check_masks, check_target
from faithbench.scores import output_problem
from faithbench.seeds import row_crcs, seeds_of
from faithbench.types import DEFAULT_MASK_ROLES, Category, MaskRole, MetricInfo, masks_with_role


@dataclass(frozen=True)
class MetricOutput:
    """What a metric returns for one batch of ``B`` samples.

    value: ``(B,)`` per-sample scores (NaN: undefined for that sample). chance: ``(B,)`` the chance level of each
    value (localisation), or None. curve: ``(B, K)`` a perturbation curve per sample, with its x axis ``fractions``:
    ``(K,)`` shared, or ``(B, K)`` each sample's own. regions: per-region scores, ``{score name: (B, R)}`` for the
    regions named in ``region_names`` (the region metric).

    Read-only mapping access (``out["value"]``, ``"curve" in out``) is kept for callers of the earlier ``dict`` return.
    """

    value: Tensor
    chance: Tensor | None = None
    curve: Tensor | None = None
    fractions: Tensor | None = None
    regions: dict[str, Tensor] | None = None
    region_names: tuple[str, ...] = ()

    _FIELDS: ClassVar[tuple[str, ...]] = ("value", "chance", "curve", "fractions", "regions")

    @classmethod
    def of(cls, out: "MetricOutput | dict[str, Tensor]") -> "MetricOutput":
        """``out`` itself, or a legacy ``{"value": ..., "chance": ...}`` dict as a MetricOutput; its
        value a tensor (a review: a plugin's list ended in "'list' object has no attribute 'shape'")."""
        if not isinstance(out, (MetricOutput, dict)):
            raise TypeError(f"a metric returns a MetricOutput (or a dict with 'value'), got {type(out).__name__}")
        if isinstance(out, dict):
            unknown = set(out) - set(cls._FIELDS) - {"region_names"}
            if unknown or "value" not in out:
                raise ValueError(f"a metric returns value (and optionally chance, curve, fractions, regions); "
                                 f"got keys {sorted(out)}")
            out = cls(**out)
        if not isinstance(out.value, Tensor):
            raise TypeError(f"a metric's value is a torch.Tensor of per-sample values, got {type(out.value).__name__}")
        return out

    def __getitem__(self, key: str) -> Any:
        if key not in self:
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in self._FIELDS and getattr(self, str(key)) is not None

    def keys(self) -> list[str]:
        return [k for k in self._FIELDS if k in self]


class ForwardCounter:
    """The one batched, chunked, no-grad forward that every metric uses.

    Runs on the model's device (the inputs are expected there: nothing is copied to the CPU), in eval
    mode, each module's own mode restored after the call.
    Counts forward passes (images) and seconds, for the cost report. An output that is not one logits tensor
    ``(n, K)`` for ``n`` images is a ``ValueError`` (:func:`faithbench.scores.output_problem`). Chunks of at most
    ``max_batch`` images; a chunk that runs out of device memory is retried in halves, and the
    smaller size is kept for the rest of the counter's life (``halvings`` counts them).
    """

    def __init__(self, model: nn.Module, max_batch: int = 256) -> None:
        self.model = model
        self.max_batch = max_batch
        self.passes = 0
        self.seconds = 0.0
        self.halvings = 0

    def __call__(self, x: Tensor) -> Tensor:
        start = time.perf_counter()
        outputs, i = [], 0
        # the caller's modes restored (a review: left in eval); a model in eval mode, the runner's, is left alone:
        # this runs on every forward, and eval() with the restore took 0.45 ms on a ResNet-50, the check 0.07
        modes = eval_mode(self.model) if any(m.training for m in self.model.modules()) else nullcontext()
        with modes, torch.inference_mode():
            while i < len(x):
                try:
                    out = self.model(x[i : i + self.max_batch])
                except Exception as exc:
                    if not is_out_of_memory(exc) or self.max_batch == 1:
                        raise
                else:
                    if problem := output_problem(out, len(x[i : i + self.max_batch])):
                        raise ValueError(problem)
                    outputs.append(out)
                    i += len(out)
                    continue
                release_memory()  # out of memory: freed here, once the exception's frames no longer hold the batch
                self.max_batch = max(1, self.max_batch // 2)
                self.halvings += 1
            out = torch.cat(outputs) if outputs else self.model(x)
        self.passes += len(x)
        self.seconds += time.perf_counter() - start
        return out

    @contextmanager
    def watch(self, model: nn.Module) -> Iterator[None]:
        """Count the images another model sees (a randomised copy, a re-explanation with
        gradients) and the seconds spent, into this counter's totals."""
        def hook(_m: nn.Module, args: tuple[Any, ...]) -> None:
            if args and isinstance(args[0], Tensor):
                self.passes += int(args[0].shape[0])

        handle = model.register_forward_pre_hook(hook)
        start = time.perf_counter()
        try:
            yield
        finally:
            handle.remove()
            self.seconds += time.perf_counter() - start


@dataclass
class EvalContext:
    """Everything a metric may read for one batch of one cell.

    x: ``(B, C, *spatial)``; target/label: ``(B,)``; masks[name]: ``(B, *spatial)`` bool; saliency: ``(B, *spatial)``
    raw, as the explainer returned it (metrics post-process it with :meth:`Metric.prepare`). ``background`` is the
    dataset's empty-space value. ``explainer``: the cell's explainer, ``explainer(model, x, target) -> saliency``
    (the randomisation checks re-explain with it). ``permuted_model``: the same recipe trained on permuted labels
    (only ``data_randomization`` needs it). ``memo``: shared between the metrics of one batch (rankings and
    perturbation curves computed once). ``multilabel``: the model has one sigmoid per class (scores are sigmoids, not
    softmax); ``labels``: the ``(B, K)`` 0/1 class vectors of a multi-label batch (None otherwise); ``target`` is
    then the explained class. ``classes``: the dataset's class names. ``mask_roles``: what each mask stands for, as
    the dataset declares (:class:`~faithbench.types.MaskRole`); :meth:`mask_with` finds one by role. ``ids``: the
    rows' sample ids (a multi-label batch has one row per (sample, explained class), so an id can repeat; empty:
    every row its own sample); :meth:`same_sample` pairs the rows of one sample. :meth:`generators` gives a generator
    per row, seeded from the cell's seed and the row's image: every random draw of the metrics (tie-breaks, random
    baselines, subsets, noise), so a sample's draw does not depend on its batch or position; :meth:`generator` one for
    the batch (focus's mosaics, which combine the batchmates; a per-cell seed).
    """

    model: nn.Module
    x: Tensor
    target: Tensor
    label: Tensor
    saliency: Tensor
    masks: dict[str, Tensor]
    predict: ForwardCounter
    explainer: Any = None
    background: float = 0.0
    seed: int = 0
    memo: dict[Any, Any] = field(default_factory=dict)
    permuted_model: nn.Module | None = None
    multilabel: bool = False
    labels: Tensor | None = None
    classes: tuple[str, ...] = ()
    mask_roles: dict[str, MaskRole] = field(default_factory=lambda: dict(DEFAULT_MASK_ROLES))
    ids: tuple[str, ...] | list[str] = ()

    def same_sample(self) -> Tensor:
        """``(B, B)`` bool on ``x``'s device: rows i and j are of one sample (the diagonal included).
        The metrics that compare a row with the other samples of its batch (consistency, sufficiency,
        focus) leave these out: a sample's other class rows are not other samples (a held-out review:
        the two rows of one image matched each other, and the random control scored 1.0, the best)."""
        b = self.x.shape[0]
        if not self.ids:
            return torch.eye(b, dtype=torch.bool, device=self.x.device)
        if len(self.ids) != b:
            raise ValueError(f"EvalContext: {len(self.ids)} ids for a batch of {b} rows")
        index = {sid: k for k, sid in enumerate(dict.fromkeys(self.ids))}
        group = torch.tensor([index[sid] for sid in self.ids], device=self.x.device)
        return group[:, None] == group[None, :]

    def mask_with(self, role: MaskRole) -> Tensor | None:
        """The batch's first mask whose declared role is ``role``, or None."""
        names = masks_with_role(self.mask_roles, self.masks, role)
        return self.masks[names[0]] if names else None

    def generator(self, salt: int = 0) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1_000_003 + salt)

    def generators(self, salt: int = 0) -> list[torch.Generator]:
        """:func:`~faithbench.seeds.seeded_rows` of (seed, salt, x), bit for bit, the rows' CRCs computed once per
        batch (kept in ``memo``: one host copy of the images, whatever the number of salts)."""
        key = ("row_crcs", id(self.x))
        if key not in self.memo:
            self.memo[key] = row_crcs(self.x)
        return [torch.Generator().manual_seed(s) for s in seeds_of(self.seed * 1_000_003 + salt, self.memo[key])]


POSTPROCESS = ("none", "abs", "relu")
NON_NEGATIVE_POSTPROCESS = ("abs", "relu")  # those that leave no negative value


def one_feature(name: str, patch: Any, spatial_shape: tuple[int, ...]) -> str | None:
    """The problem with a ``patch`` that leaves one feature on images of ``spatial_shape`` (``patch``
    >= every side), or None: a ranking of one feature is the same for every map, so every explainer
    would score the same (a review: monotonicity 1.0, its best value, for a random, a constant and an
    all-zero map alike)."""
    if not isinstance(patch, int) or isinstance(patch, bool) or patch < 1 or not spatial_shape \
            or math.prod(-(-int(s) // patch) for s in spatial_shape) > 1:
        return None
    return (f"{name}: parameter 'patch' = {patch} gives 1 feature on the {' x '.join(map(str, spatial_shape))} "
            f"images, so every explainer would score the same; expected patch < {max(spatial_shape)}")


def postprocess(saliency: Tensor, mode: str) -> Tensor:
    """The runner-side post-processing of raw saliency, recorded per metric: ``none``, ``abs`` or ``relu``."""
    if mode == "none":
        return saliency
    if mode == "abs":
        return saliency.abs()
    if mode == "relu":
        return saliency.clamp(min=0)
    raise ValueError(f"unknown postprocess {mode!r}; expected none, abs or relu")


class Metric(Configurable):
    """Base class. Subclasses set ``info`` and implement :meth:`compute`.

    ``postprocess`` (a parameter of every metric; default from ``info``) is applied to the
    saliency before :meth:`compute`.
    """

    info: ClassVar[MetricInfo]
    defaults: ClassVar[dict[str, Any]] = {}
    min_batch: ClassVar[int] = 1  # > 1: compares a sample with the others of its batch (validate checks batch_size)
    needs_nonnegative: ClassVar[bool] = False  # True: the map must be non-negative (postprocess abs or relu)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "info" in cls.__dict__ and "postprocess" not in cls.defaults:
            cls.defaults = {**cls.defaults, "postprocess": cls.info.postprocess}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        mode = self.params.get("postprocess", "none")
        if mode not in POSTPROCESS:  # refused by validate, not in every cell of the run
            raise ParameterError(f"{self.name}: parameter 'postprocess' must be one of "
                                 f"{', '.join(POSTPROCESS)}, got {mode!r}")
        if self.needs_nonnegative and mode not in NON_NEGATIVE_POSTPROCESS:  # a review: every signed map's cell failed
            raise ParameterError(f"{self.name}: parameter 'postprocess' must be abs or relu (the metric needs a "
                                 f"non-negative map; {mode!r} leaves a signed map's negative values), got {mode!r}")

    @property
    def undefined_hint(self) -> str:
        """Why a row of this metric can be undefined (NaN), for ``skipped.csv`` ("" : the general examples)."""
        return ""

    @property
    def category(self) -> Category:
        return self.info.category

    @property
    def higher_is_better(self) -> bool:
        return self.info.higher_is_better

    def prepare(self, ctx: EvalContext) -> Tensor:
        return postprocess(ctx.saliency, self.params["postprocess"])

    def compute(self, ctx: EvalContext, saliency: Tensor) -> MetricOutput:  # pragma: no cover
        raise NotImplementedError

    def __call__(self, ctx: EvalContext) -> MetricOutput:
        for field_name in ("x", "saliency"):  # a review: numpy was a raw TypeError, a bool map was scored
            value = getattr(ctx, field_name)
            if not isinstance(value, Tensor) or not value.is_floating_point():
                got = f"a {value.dtype} tensor" if isinstance(value, Tensor) else type(value).__name__
                raise TypeError(f"{self.name}: expected {field_name} as a floating-point torch.Tensor, got {got}"
                                + (" (a bool map is a mask, not a ranking of the pixels)"
                                   if field_name == "saliency" and getattr(value, "dtype", None) == torch.bool else ""))
        check_batch(self.name, ctx.x)
        b = ctx.x.shape[0]
        if tuple(ctx.saliency.shape) != (b, *ctx.x.shape[2:]):  # else a raw broadcast error, or a value (sparseness)
            raise ValueError(f"{self.name}: expected saliency of shape {(b, *ctx.x.shape[2:])} (x's batch and "
                             f"spatial axes), got {tuple(ctx.saliency.shape)}")
        if not torch.isfinite(ctx.saliency).all():  # a review: NaN was ranked first, skipped or a NaN, by metric
            raise ValueError(f"{self.name}: saliency contains NaN or Inf; expected finite maps")
        if not torch.isfinite(ctx.x).all():  # a review: a NaN image (NaN logits) got a max_sensitivity of 0.252
            raise ValueError(f"{self.name}: x contains NaN or Inf; expected finite images")
        multilabel = ctx.multilabel or ctx.labels is not None
        check_target(self.name, ctx.target, b, len(ctx.classes))
        # a multi-label row's label is its class's 0/1 (a run's) or the first positive class: no bound
        check_target(self.name, ctx.label, b, 0 if multilabel else len(ctx.classes), which="label")
        check_masks(self.name, ctx.masks)
        # what validate refuses on the dataset, refused here (a review: one feature scored, the same for every map)
        self.refuse_unfit(ctx.x.shape[2:], multilabel=multilabel)  # multi-label vectors
        try:
            out = MetricOutput.of(self.compute(ctx, self.prepare(ctx)))
        except RuntimeError as exc:  # only where the model failed: a network that casts its input takes any dtype
            if problem := dtype_mismatch(self.name, ctx.model, ctx.x, exc):
                raise TypeError(f"{problem} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from exc
            raise
        if tuple(out.value.shape) != (b,):
            raise ValueError(f"{self.name}: expected per-sample values of shape ({b},), got {tuple(out.value.shape)}")
        if out.chance is not None and tuple(out.chance.shape) != (b,):  # a review: an IndexError ended the run
            raise ValueError(f"{self.name}: expected chance of shape ({b},), got {tuple(out.chance.shape)}")
        if out.curve is not None and (out.fractions is None or out.curve.ndim != 2 or out.curve.shape[0] != b
                                      or tuple(out.fractions.shape) not in ((out.curve.shape[1],), out.curve.shape)):
            fractions = None if out.fractions is None else tuple(out.fractions.shape)
            raise ValueError(f"{self.name}: expected a curve of shape ({b}, K) and fractions of shape (K,) or "
                             f"({b}, K), got {tuple(out.curve.shape)} and {fractions}")
        for key, scores in (out.regions or {}).items():
            if tuple(scores.shape) != (b, len(out.region_names)):
                raise ValueError(f"{self.name}: expected regions[{key!r}] of shape ({b}, {len(out.region_names)}), "
                                 f"got {tuple(scores.shape)}")
        return out

    def required_masks(self) -> list[str]:
        """The masks :meth:`compute` reads (the run skips the metric on a dataset without one of them, and
        ``faithbench validate`` warns): the ``mask:<name>`` of ``info.requires``, and the value of a ``mask``
        parameter the class declares in ``defaults``, as the built-in localisation metrics take theirs (a
        review: a plugin's ``mask: blobb`` passed validate, and every cell failed with a bare KeyError).
        Override it where the masks read depend on other parameters."""
        names = [r.split(":", 1)[1] for r in self.info.requires if r.startswith("mask:")]
        mask = self.params.get("mask") if "mask" in getattr(type(self), "defaults", {}) else None
        return names + [mask] if isinstance(mask, str) and mask not in names else names

    # -- calibration on the validation split (optional) ------------------------------------------
    @property
    def needs_calibration(self) -> bool:
        """True when the metric tunes a setting on the validation split before it scores the test
        split (CheXlocalize's per-class threshold, Saporta et al. 2022). The runner then explains
        the first :attr:`calibration_samples` validation samples with the cell's explainer, hands
        :meth:`calibration_inputs` of each batch to :meth:`calibrate`, then scores. Default: no."""
        return False

    @property
    def calibration_samples(self) -> int:
        """Validation samples to explain for :meth:`calibrate` (0: none), counted as the suite's
        ``samples`` (a multi-label sample gives one unit per explained class)."""
        return 0

    def calibration_inputs(self, ctx: EvalContext) -> dict[str, Tensor]:
        """What :meth:`calibrate` needs of one validation batch: ``{name: (B, ...)}`` per unit, on
        the CPU (the runner concatenates them over the batches and keeps nothing else)."""
        raise NotImplementedError(f"{self.name} does not calibrate")

    def calibrate(self, inputs: dict[str, Tensor], classes: tuple[str, ...]) -> list[dict[str, Any]]:
        """Tune on the concatenated validation ``inputs``; ``classes``: the dataset's class names.
        Returns the rows of ``calibration.csv`` (``class, threshold, gate, n_val, note``). After
        it, :meth:`spec` (hashed into the score keys) must include what was tuned."""
        raise NotImplementedError(f"{self.name} does not calibrate")

    def applicability(self, masks: Collection[str], spatial_dims: int) -> tuple[str | None, list[str]]:
        """Before a cell's first batch: ``(reason to skip this metric for the cell, or None,
        notes on parts left out)``, given the dataset's mask names and spatial dimensions.
        Default: skipped when a mask it requires is missing (``marker`` on a phantom without a
        shortcut, ``lesion`` on MedMNIST)."""
        missing = [m for m in self.required_masks() if m not in masks]
        if missing:
            have = ", ".join(sorted(masks)) or "none"
            return f"the dataset has no mask {missing[0]!r} (masks: {have})", []
        return None, []

    # -- limits found by `faithbench validate` (faithbench.metric_checks) ---------------------------
    def check_dataset(self, spatial_shape: tuple[int, ...], *, multilabel: bool = False) -> str | None:
        """A problem with the parameters on a dataset of samples ``(C, *spatial_shape)`` (a one-line
        message naming the parameter), or None. Default: none."""
        return None

    def refuse_unfit(self, spatial_shape: tuple[int, ...], *, multilabel: bool = False) -> None:
        """Raise ``ValueError`` with :meth:`check_dataset`'s problem on the input at hand, if any
        (what ``faithbench validate`` refuses is refused when computed too: :meth:`__call__` calls it
        with the batch's spatial shape, ``x.shape[2:]``, before :meth:`compute`)."""
        problem = self.check_dataset(tuple(int(s) for s in spatial_shape), multilabel=multilabel)
        if problem:
            raise ValueError(problem)

    def check_model(self, model: nn.Module) -> str | None:
        """A problem with the parameters on ``model`` (built on the meta device: module names and
        types, no weights), or None. Default: none."""
        return None
