"""The explainer protocol and base class.

An explainer maps ``(model, x (B, C, *spatial), target (B,))`` to RAW saliency
``(B, *spatial)`` at input resolution: no clipping, no absolute value, no min-max. The
runner applies any post-processing a metric asks for, and records it. One exception: a CAM's own
ReLU belongs to the method and is applied on the layer's grid, before upsampling
(:mod:`faithbench.explainers.cam`; ``relu=False`` keeps the signed grid).
"""

from __future__ import annotations

import functools
import inspect
import random
import weakref
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn

from faithbench.configurable import Configurable, ParameterError
from faithbench.device import dtype_mismatch, eval_mode
from faithbench.scores import output_problem
from faithbench.seeds import image_seed
from faithbench.types import MaskRole


def _in_eval_mode(check: Callable[..., Any]) -> Callable[..., Any]:
    """``unsupported_reason`` run with the model in eval mode: its probes (a layer search, a graph
    trace) forward the model, which in train mode moved BatchNorm's running statistics (a review)."""
    @functools.wraps(check)
    def wrapped(self: Any, model: nn.Module, x: Tensor, *args: Any, **kwargs: Any) -> Any:
        with eval_mode(model):
            return check(self, model, x, *args, **kwargs)
    return wrapped


# model -> the (explainer, parameters, input shape) a direct call found supported: checked once each
_SUPPORTED: weakref.WeakKeyDictionary[nn.Module, set[tuple[Any, ...]]] = weakref.WeakKeyDictionary()


def call_dataset_reason(explainer: Any, masks: Collection[str], spatial_dims: int,
                        roles: Mapping[str, MaskRole] | None = None) -> str | None:
    """``explainer.dataset_reason`` with the arguments its signature takes: ``(masks, spatial_dims, roles)``,
    or ``(masks, spatial_dims)`` for a hook written without ``roles`` (a review: such a plugin, written as
    docs/plugins.md then showed it, failed every cell with a TypeError and passed validate)."""
    hook = explainer.dataset_reason
    return hook(masks, spatial_dims, roles) if _takes_roles(hook) else hook(masks, spatial_dims)


def _takes_roles(hook: Callable[..., Any]) -> bool:
    """Whether ``hook`` takes a third positional argument (its signature is read once per function)."""
    function, bound = getattr(hook, "__func__", hook), hasattr(hook, "__self__")
    return _positional_room(function, bound)


@functools.lru_cache(maxsize=None)
def _positional_room(function: Callable[..., Any], bound: bool) -> bool:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # a builtin without a signature: the full form
        return True
    try:
        signature.bind(*([None] * (3 + bound)))
    except TypeError:
        return False
    return True


@runtime_checkable
class ExplainerProtocol(Protocol):
    def __call__(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor: ...


def class_indices(name: str, target: Tensor, batch: int) -> Tensor:
    """``target`` as int64 class indices, (B,): an integer tensor, or floats with whole values
    (1.0, not 1.7, which ``.long()`` would silently truncate to class 1); none negative (-1 would
    index the last class in some libraries and fail in others). Else ``ValueError``."""
    if not isinstance(target, Tensor):  # a review: an int or a list was an AttributeError on .shape
        raise TypeError(f"{name}: expected target as a torch.Tensor of {batch} class indices, shape ({batch},), "
                        f"got {type(target).__name__} (e.g. torch.tensor([1]) for one image)")
    if target.shape != (batch,):
        raise ValueError(f"{name}: expected target of shape ({batch},), got {tuple(target.shape)}")
    if target.dtype == torch.bool or target.is_complex():
        raise ValueError(f"{name}: expected target of integer class indices, got dtype {target.dtype}")
    if target.is_floating_point() and not (bool(torch.isfinite(target).all())  # inf.round() is inf
                                           and torch.equal(target, target.round())):
        raise ValueError(f"{name}: expected target of integer class indices, got {target.tolist()}")
    if target.numel() and int(target.min()) < 0:
        raise ValueError(f"{name}: expected target of class indices >= 0, got {target.tolist()}")
    return target.long()


def _output_problem(model: nn.Module, x: Tensor) -> str | None:
    """:func:`~faithbench.scores.output_problem` of ``model``'s output for ``x[:1]``: one forward without
    gradients, in eval mode, on a copy of the CPU's random state (the caller's draws and modes unchanged); None
    where that forward fails."""
    try:
        with torch.no_grad(), eval_mode(model), torch.random.fork_rng(devices=[]):
            out = model(x[:1].detach())
    except Exception:  # noqa: BLE001 - a forward that fails (x in another dtype) fails the explanation itself,
        return None    # with its own message; a control that never calls the model gives its map
    return output_problem(out, 1)


class Explainer(Configurable):
    """Base class: subclasses implement :meth:`explain` and declare their capabilities.

    Capabilities (class attributes): ``family``, ``dims`` (spatial dims supported),
    ``architectures`` (``"cnn"``, ``"vit"``), ``needs_grad``, ``paper``.

    Call: ``explainer(model, x, target) -> saliency``, ``x`` a float (B, C, *spatial) tensor on the
    model's device, ``target`` a (B,) tensor of class indices, the saliency (B, *spatial) float32.
    "score" in the explainers' docstrings is the model's output for the target class, the logit (no
    softmax or sigmoid). An explainer that needs gradients is refused inside
    ``torch.inference_mode()``.

    :meth:`__call__` checks the target (:func:`class_indices`) and the parameters against the input's shape
    (:meth:`check_input`, as ``faithbench validate`` does: its reason as a ``ValueError``), puts every module of
    the model in eval mode and restores each module's mode afterwards, and runs :meth:`explain` with gradients
    enabled when ``needs_grad`` (so a caller's ``torch.no_grad()`` does not break it). An explanation that
    fails on a model whose output for ``x[:1]`` is not one logits tensor ``(1, K)`` (a tuple, a dict, a
    ``(B, 3, 1)`` tensor) is a one-line ``ValueError`` saying so (:func:`faithbench.scores.output_problem`);
    an empty batch is one too.
    Randomness: :meth:`__call__` seeds torch's and NumPy's global generators from ``seed`` (and
    restores both afterwards; captum's GradientSHAP draws from NumPy), so every explainer is
    deterministic given the cell's seed. The stochastic explainers that loop over samples
    (``smoothgrad``, ``gradient_shap``, ``lime``, ``kernel_shap``) re-seed both before each sample
    from the seed and the image's bytes (:meth:`reseed`), and ``rise`` draws the same masks for every
    image, so their map of an image depends on (image, target, seed, parameters), not on the batch it
    came in or its position there. A plugin that draws from the global generators sets ``stochastic =
    True``: :meth:`__call__` then explains one image at a time, each after :meth:`reseed` from its
    bytes (a review: a plugin drawing ``torch.randn_like(x)`` per batch moved a leaderboard mean outside
    its CI when only ``batch_size`` changed, and the images at one position of every batch shared noise).
    """

    family: ClassVar[str] = "other"
    dims: ClassVar[frozenset[int]] = frozenset({2, 3})
    architectures: ClassVar[frozenset[str]] = frozenset({"cnn", "vit"})
    needs_grad: ClassVar[bool] = True
    input_grad: ClassVar[bool] = True  # needs d score / d x (CAMs need gradients at a layer only)
    stochastic: ClassVar[bool] = False  # True: explain() called per image, reseeded from its bytes
    paper: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("unsupported_reason")
        if callable(own) and not isinstance(own, (staticmethod, classmethod)):  # a subclass's (a plugin's) probes
            cls.unsupported_reason = _in_eval_mode(own)  # type: ignore[method-assign]

    suite_label = ""  # the suite entry's alias, set by the runner: its messages name it, as failures.csv does

    @property
    def shown_name(self) -> str:
        """The registry name, after the suite's alias where the entry has another: ``bad_small (lp_bad)``."""
        return f"{self.suite_label} ({self.name})" if self.suite_label not in ("", self.name) else self.name

    def __init__(self, *, seed: int = 0, **params: Any) -> None:
        super().__init__(**params)
        layer = self.params.get("target_layer")
        if layer is not None and (not isinstance(layer, str) or not layer.strip()):  # '' read as the default (a review)
            got = "an empty string" if isinstance(layer, str) else f"{type(layer).__name__} {layer!r}"
            raise ParameterError(f"{self.name}: parameter 'target_layer' expects a dotted module name (e.g. 'layer4') "
                                 f"or null for the default, got {got}")
        self.seed = int(seed)
        self.last_info: dict[str, Any] = {}
        self.vetted = False  # the runner checked the cell's model (and so its randomised copies): no check per call

    def unsupported_reason(self, model: nn.Module, x: Tensor) -> str | None:
        """Why this explainer cannot run on (model, x), or None if it can."""
        dims = x.ndim - 2
        if dims not in self.dims:
            # a review: "got 3D" for sequences of visits (a temporal model's (T, H, W)), which are not volumes
            got = "sequences of visits (T, H, W)" if dims == 3 and getattr(model, "temporal", False) else f"{dims}D"
            return f"{self.name} supports {' and '.join(f'{d}D' for d in sorted(self.dims))} inputs, got {got}"
        family = getattr(model, "arch_family", None)  # set by faithbench's builders; a model without it: not checked
        if family is not None and family not in self.architectures:
            return f"{self.name} supports {sorted(self.architectures)} models, got {family}"
        return None

    def check_input(self, shape: tuple[int, ...]) -> str | None:
        """A problem of this explainer's parameters on inputs of ``shape`` ``(C, *spatial)``, or None;
        ``faithbench validate`` refuses the suite with it (exit code 2) before anything is trained (a
        review: occlusion with a window as large as the image gave constant maps, exit 0)."""
        return None

    def dataset_reason(self, masks: Collection[str], spatial_dims: int,
                       roles: Mapping[str, MaskRole] | None = None) -> str | None:
        """Why this explainer cannot run on a dataset whose samples carry the masks named ``masks``
        (``roles``: what each stands for, the dataset's ``mask_roles``; None: the default roles) and
        have ``spatial_dims`` axes, beyond what the input's shape tells (:meth:`unsupported_reason`:
        a 3D volume has a sequence's shape); None if it can. The runner skips the cell with the
        reason, ``faithbench validate`` warns."""
        return None

    def explain(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def reseed(self, image: Tensor | None = None) -> None:
        """Seed torch's, NumPy's and Python's global generators with ``seed``, or with a seed drawn from
        (``seed``, the bytes of ``image``): per image, so that an image's draws do not depend on
        its batch and different images get different draws (shared draws would make one cell's
        samples share the explainer's random error, which the per-sample statistics treat as
        independent). Only inside :meth:`__call__`, which restores the generators it seeds afterwards:
        the CPU's, and every CUDA device's where CUDA is initialised; where it is available but not
        initialised, only the CPU's (a seed queued for CUDA's start would outlive the call)."""
        seed = self.seed if image is None else image_seed(self.seed, image)
        seed = self._seed_aliases.get(seed, seed) if image is not None else seed
        if torch.cuda.is_available() and not torch.cuda.is_initialized():
            torch.random.default_generator.manual_seed(seed)
        else:
            torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)

    _seed_aliases: dict[int, int] = {}  # replaced, never mutated: see draws_of

    def draws_on(self, device: torch.device) -> str | None:
        """The device type whose own random generator this explainer draws from on ``device``, when
        that is not the CPU's, else None (the default: draws on a CPU generator, moved). A GPU's
        generator gives other draws for the same seed, so the runner adds it to the saliency key:
        maps drawn on a GPU and on the CPU never share a cache entry (a review: captum's NoiseTunnel
        draws SmoothGrad's noise on the input's device)."""
        return None

    @contextmanager
    def draws_of(self, images: Tensor, like: Tensor) -> Iterator[None]:
        """Within: each image of ``images`` gets the per-image draws (:meth:`reseed`) of the image of
        ``like`` at its position, not those of its own bytes (``input_invariance`` re-explains x + c
        with x's noise: a review found SmoothGrad's maps of x and x + c 22-37 % of their maximum apart
        by their noise alone). The ``random`` control draws from the image's bytes directly."""
        aliases = {image_seed(self.seed, a): image_seed(self.seed, b) for a, b in zip(images, like)}
        old = self._seed_aliases
        self._seed_aliases = {**old, **aliases}
        try:
            yield
        finally:
            self._seed_aliases = old

    def __call__(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or not x.is_floating_point():  # a review: numpy, uint8 were raw errors
            got = f"a {x.dtype} tensor" if isinstance(x, Tensor) else type(x).__name__
            raise TypeError(f"{self.name}: expected x as a floating-point torch.Tensor, got {got}")
        if not torch.isfinite(x).all():  # a review: a NaN image (NaN logits) got a finite saliency map
            raise ValueError(f"{self.name}: x contains NaN or Inf; expected finite images")
        if self.needs_grad and torch.is_inference_mode_enabled():  # no_grad is handled: inference tensors are not
            raise RuntimeError(f"{self.name}: needs gradients; call it outside torch.inference_mode() "
                               "(torch.no_grad() is fine)")
        if x.ndim - 2 not in self.dims:  # the runner skips such cells; a direct call is refused
            shapes = {2: "(B, C, H, W)", 3: "(B, C, D, H, W)"}
            expected = " or ".join(shapes.get(d, f"(B, C, {d} spatial axes)") for d in sorted(self.dims))
            raise ValueError(f"{self.name}: expected x of shape {expected}, got {tuple(x.shape)}")
        if x.shape[0] == 0:  # a held-out review: torch's "max(): Expected reduction dim to be specified ..."
            raise ValueError(f"{self.name}: expected x with B >= 1 images, got {tuple(x.shape)}")
        target = class_indices(self.name, target, x.shape[0])
        self._refuse_unsupported(model, x)
        # the parameters' check validate runs (a held-out review: called directly, occlusion's window and lime's patch
        # covering the image gave constant maps, kernel_shap's torch's Categorical NaN error, rise grid 200 ran)
        if problem := self.check_input(tuple(x.shape[1:])):
            raise ValueError(problem)
        # the generators reseed() seeds: every CUDA device's, where CUDA is initialised (a review: x's only)
        devices, kind = (list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []), "cuda"
        if x.device.type not in ("cpu", "cuda"):  # another accelerator's (mps) generator, as before
            devices, kind = [x.device], x.device.type
        numpy_state, python_state = np.random.get_state(), random.getstate()
        try:
            grad = torch.enable_grad() if self.needs_grad else nullcontext()
            with eval_mode(model), torch.random.fork_rng(devices=devices, device_type=kind), grad:
                if self.stochastic and x.shape[0] > 1:
                    saliency = torch.cat([self._explain_one(model, x[i:i + 1], target[i:i + 1])
                                          for i in range(x.shape[0])])
                else:
                    saliency = self._explain_one(model, x, target, per_image=self.stochastic and x.shape[0] == 1)
        except Exception as exc:
            # a held-out review: a tuple output was "'tuple' object has no attribute 'shape'", a (B, 3, 1) one
            # "target class 2 is past the model's 1 outputs"; checked once the explanation failed (no extra forward)
            if problem := _output_problem(model, x):
                raise ValueError(f"{self.name}: {problem}") from exc
            if not isinstance(exc, (IndexError, RuntimeError)):
                raise
            # a review: a target past the outputs was torch's raw error
            if isinstance(exc, RuntimeError) and (problem := dtype_mismatch(self.name, model, x, exc)):
                raise TypeError(f"{problem} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from exc
            if "out of bounds" not in str(exc):
                raise
            with torch.no_grad(), eval_mode(model):
                outputs = model(x[:1]).shape[-1]
            if int(target.max()) < outputs:
                raise
            raise ValueError(f"{self.name}: target class {int(target.max())} is past the model's {outputs} outputs; "
                             f"expected class indices 0 to {outputs - 1}") from None
        finally:
            np.random.set_state(numpy_state)
            random.setstate(python_state)
        return self._checked(saliency, (x.shape[0], *x.shape[2:]), x.device)

    def _refuse_unsupported(self, model: nn.Module, x: Tensor) -> None:
        """A direct call is refused with :meth:`unsupported_reason`, the reason the runner skips a cell
        with (a held-out review: fullgrad on an EfficientNet, guided backprop and deeplift on SiLU networks
        returned ordinary-looking maps); once per model, parameters and input shape. The runner checks each
        cell itself and sets ``vetted``, so its metrics' re-explanations make no extra forward pass."""
        if self.vetted:
            return
        modules = tuple(type(m).__qualname__ for m in model.modules())  # a module swapped in place: checked again
        key = (type(self), repr(sorted(self.params.items())), tuple(x.shape[1:]), modules)
        try:
            checked = _SUPPORTED.setdefault(model, set())
        except TypeError:  # a model object that takes no weak reference: checked on every call
            checked = set()
        if key not in checked:
            reason = self.unsupported_reason(model, x.detach())
            if reason:
                raise ValueError(reason)
            checked.add(key)

    def _explain_one(self, model: nn.Module, x: Tensor, target: Tensor, per_image: bool = True) -> Tensor:
        """:meth:`explain` of ``x`` (one image when ``per_image``, reseeded from its bytes; else the batch,
        reseeded from ``seed``), on a leaf that requires grad when the explainer needs d score / d x (so
        that gradient libraries need not flip it, and warn)."""
        if self.needs_grad and self.input_grad:
            x = x.detach().clone().requires_grad_(True)
        self.reseed(x[0].detach() if per_image else None)
        saliency = self.explain(model, x, target)
        return self._checked(saliency, (x.shape[0], *x.shape[2:]), x.device) if per_image else saliency

    def _checked(self, saliency: Any, expected: tuple[int, ...], device: torch.device) -> Tensor:
        """``saliency`` as a detached float tensor on ``device`` (the input's), or the error that says what
        was expected."""
        who = self.shown_name  # a review: with several aliases of one plugin the registry name did not say which
        if not isinstance(saliency, Tensor):
            raise TypeError(f"{who}: expected saliency as a torch.Tensor of shape {expected}, "
                            f"got {type(saliency).__name__}")
        if tuple(saliency.shape) != expected:
            raise ValueError(f"{who}: expected saliency of shape {expected}, got {tuple(saliency.shape)}")
        if not saliency.is_floating_point():  # a review: a bool mask returned by mistake was scored as a map
            raise TypeError(f"{who}: expected a floating-point saliency map, got {saliency.dtype}: return the "
                            "scores as floats (a bool map is a mask, not a ranking of the pixels; .float() an integer "
                            "map on purpose)")
        if saliency.device != device:  # a review: torch's "Tensor.item() cannot be called on meta tensors"
            quoted = repr(who) if who == self.name else f"{self.suite_label!r} ({self.name})"
            raise ValueError(f"explainer {quoted} returned its map on device {saliency.device}; expected the "
                             f"input's device {device}")
        return saliency.detach().float()
