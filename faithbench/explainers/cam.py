"""Class-activation-map explainers through pytorch-grad-cam (Gildenblat et al.).

The library owns hooks, the backward pass and the channel weights; we take its CAM before its ReLU and min-max
scaling, apply the method's ReLU on the layer's grid, and upsample to the input size with (bi/tri)linear
interpolation: upsample(ReLU(cam)), the order of the papers (Grad-CAM's L = ReLU(sum_c w_c A_c), then resized)
and of the library. The two orders differ: ReLU(upsample(cam)) keeps positive values interpolated toward
negative neighbours, so near every sign change of the grid it is a different map (measured here after min-max
against the library: up to 0.455 for Grad-CAM and 0.623 for Ablation-CAM on a random small CNN). We do not
min-max scale (that destroys the scale faithfulness metrics need; the runner's min-max is optional and
recorded), so in 2D the library's map is ours min-max scaled: it min-maxes the ReLU'd grid, resizes, min-maxes
again (``BaseCAM.aggregate_multi_layers``; a review: <= 4.2e-7, 0.12 off scaled by the grid's extremes). Not in
3D: the library resizes with ``scipy.ndimage.zoom`` (cubic spline, corners aligned), we trilinearly from cell
centres (``align_corners=False``, as both do in 2D); the grids agree (1.2e-7), the upsampled maps not
(reviews: 0.13-0.30 on 16^3 inputs, 0.12-0.43 on MONAI's resnet18_3d at 32^3; mostly the alignment). A ViT's
grid spans the pixels its patches cover, 0 past them, of the image the network sees, resized back to the input where
its input transform resizes it (:func:`~faithbench.explainers.transformer.patch_pixels`; the library stretches it
over the whole input). ``relu=False`` keeps the raw signed grid instead (upsampled),
for studies of negative evidence; EigenCAM defaults to it (the sign of a principal component is arbitrary).

Variants (one class each, registry name in brackets): Grad-CAM [gradcam], Grad-CAM++ [gradcam_pp], XGrad-CAM
[xgradcam], HiResCAM [hirescam], LayerCAM [layercam], EigenCAM [eigencam], Score-CAM [scorecam], Ablation-CAM
[ablationcam] (:mod:`faithbench.explainers.ablation`: channels zeroed, as the paper; the library's are not),
FullGrad [fullgrad] (:mod:`faithbench.explainers.fullgrad`). Each is the library's class; we only override what
is needed to keep the map raw, to batch forward passes, to run in 3D, or to follow the paper.

Target layer: ``target_layer`` (a dotted module name) if given; otherwise, for a ViT, the last block's ``norm1``
with the token -> grid reshape; for a CNN, the last top-level stage whose output grid is at least ``min_grid``
per spatial axis, or inside the last container that holds one where no top-level stage does (a DenseNet's
``features``), or the last such stage of a coarse block of stages run after it (timm's EfficientNet ``blocks``
after its stem); never an adaptive pool (:func:`~faithbench.explainers.layers.find_target_layer`). A CAM is only
as fine as its layer's grid (Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization"): a 2x2 CAM is not comparable to pixel-level maps; a layer of one cell, or one the
forward pass calls twice, is refused (:func:`~faithbench.explainers.layers.checked_layer`). The chosen layer and
grid are in ``last_info``."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, ClassVar, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_grad_cam import EigenCAM, GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, ScoreCAM, XGradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import Tensor, nn

from faithbench.configurable import AT_LEAST_ONE, Bound
from faithbench.explainers.base import Explainer
from faithbench.explainers.layers import (VIT_LAYER_HINT, attention_problem, channels_first, checked_layer,
                                         find_target_layer, kept_output, layer_reason, min_grid_problem,
                                         resolve_module, token_problem)
from faithbench.explainers.transformer import (frame_to_input, input_size_problem, patch_grid, patch_layout,
                                              patch_pixels, vit_net)
from faithbench.explainers.vit_cam import patch_grad_probe, vit_reshape_transform
from faithbench.registry import explainers
from faithbench.types import arch_family, vit_network


class UncalledLayerError(ValueError):
    """The forward pass ran without calling the target layer: it has no activations to read."""


class _RawCAMMixin:
    """Overrides pytorch-grad-cam's per-layer step to keep the raw CAM (no ReLU, no scaling)."""

    def compute_cam_per_layer(self, input_tensor, targets, eigen_smooth):  # type: ignore[no-untyped-def]
        # float32: numpy has no bfloat16 (a review: a bf16 network failed every CAM cell with a TypeError)
        recorded = self.activations_and_grads  # type: ignore[attr-defined]
        if not recorded.activations and self.target_layers:  # type: ignore[attr-defined]
            raise UncalledLayerError  # a review: timm's attn_drop under fused attention, "'NoneType' ... 'shape'"
        acts = [a.cpu().data.float().numpy() for a in recorded.activations]
        grads = [g.cpu().data.float().numpy() for g in recorded.gradients]
        cams = []
        for i, layer in enumerate(self.target_layers):  # type: ignore[attr-defined]
            a = acts[i] if i < len(acts) else None
            g = grads[i] if i < len(grads) else None
            cam = self.get_cam_image(input_tensor, layer, targets, a, g, eigen_smooth)  # type: ignore[attr-defined]
            cams.append(np.asarray(cam, dtype=np.float32)[:, None])
        return cams

    def aggregate_multi_layers(self, cam_per_target_layer):  # type: ignore[no-untyped-def]
        return np.mean(np.concatenate(cam_per_target_layer, axis=1), axis=1)


_RAW_CLASSES: dict[type, type] = {}


def raw_cam_class(cam_cls: type) -> type:
    """A subclass of a pytorch-grad-cam class that returns the raw, unscaled CAM."""
    if cam_cls not in _RAW_CLASSES:
        _RAW_CLASSES[cam_cls] = type(f"Raw{cam_cls.__name__}", (_RawCAMMixin, cam_cls), {})
    return _RAW_CLASSES[cam_cls]


@contextmanager
def restored_grads(model: nn.Module) -> Iterator[None]:
    """pytorch-grad-cam calls ``loss.backward()``: put every parameter's ``.grad`` back as it was."""
    saved = {p: p.grad for p in model.parameters()}
    try:
        yield
    finally:
        for p, grad in saved.items():
            p.grad = grad


CAM_PARAMETERS = """Parameters: ``target_layer`` (a dotted module name of the model, e.g. ``"layer4"`` or
    ``"features.5"``, whose output is the (B, C, *grid) activation map, a ViT's its (B, N, C) tokens, as a
    block's or its ``norm1``'s; default None: chosen as in
    :mod:`faithbench.explainers.cam`), ``min_grid`` (4: the smallest grid side the automatic choice
    accepts), ``relu`` (True: upsample(ReLU(cam)); False: the signed grid, upsampled). The score is the
    target's logit."""


class CAMExplainer(Explainer):
    """Base for the CAM family; subclasses set ``cam_class`` (a pytorch-grad-cam class).

    Defaults: ``target_layer`` None (chosen as in the module docstring), ``min_grid`` 4, ``relu``
    True (upsample(ReLU(cam)); False: the signed grid, upsampled)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:  # help() of each CAM names its parameters (a review)
        super().__init_subclass__(**kwargs)
        if cls.__doc__ and "target_layer" not in cls.__doc__:
            cls.__doc__ = cls.__doc__.rstrip() + "\n\n" + CAM_PARAMETERS

    family = "cam"
    input_grad = False  # gradients w.r.t. the target layer only, not the input
    cam_class: ClassVar[type] = GradCAM
    defaults: ClassVar[dict[str, Any]] = {"target_layer": None, "min_grid": 4, "relu": True}
    bounds: ClassVar[dict[str, Bound]] = {"min_grid": AT_LEAST_ONE}
    # 2: ReLU on the grid before upsampling (1 returned the signed map); 3: the layer found inside a block
    # that holds every stage where no top-level one is fine enough (explainers.layers), so earlier maps are
    # not reused from the cache; 4: a coarse sequence of stages after the chosen layer is entered (timm's
    # EfficientNet on 64 px: blocks.4, not the stem), adaptive pools never chosen (AlexNet's avgpool); 5: the layer's
    # own output where a later module changes it in place (explainers.layers.kept_output); 6: a ViT's map (and
    # Score-CAM's masks) over the pixels its patches cover, 0 past them (the grid was stretched over them); 7: no
    # part of an attention module, nor an output of windows, chosen as the layer (explainers.layers.attention_parts);
    # 8: a gradient CAM on a ViT layer whose patch tokens get no gradient is refused (7 cached all-zero maps);
    # 9: a ViT behind an input transform that resizes to a size no multiple of the patch: the grid over the pixels
    # its patches cover of the resized image, resized back (it was stretched over the whole input); dynamic_img_pad
    # 10: a wrapped network's own layer by default, not its preprocessing child (9 picked it)
    version = "11"  # 11: a timm ViT inside a wrapper: its net.blocks.-1.norm1 tokens (10: net.patch_embed.proj)
    finds_layer = True  # the CAM reads a target layer (FullGrad reads every biased layer instead)

    def check_input(self, shape: tuple[int, ...]) -> str | None:
        """``min_grid`` no larger than the input (:func:`~faithbench.explainers.layers.min_grid_problem`)."""
        return min_grid_problem(self.name, self.min_grid, self.target_layer, shape)

    def unsupported_reason(self, model: nn.Module, x: Tensor) -> str | None:
        reason = super().unsupported_reason(model, x)
        net = vit_net(model)  # the ViT a wrapper runs (a review: CAMs of its patch embedding, silently)
        blocks = getattr(net, "blocks", None)
        if reason is None and arch_family(model) == "vit" and (
                not blocks or not hasattr(getattr(net, "patch_embed", None), "grid_size")):
            # torchvision's VisionTransformer is tagged vit too (nn.MultiheadAttention): no blocks (a review)
            reason = (f"{self.name} on a ViT needs a timm VisionTransformer (model.blocks, "
                      f"model.patch_embed.grid_size) to reshape its tokens; got {type(model).__name__}")
        if reason is None and self.finds_layer and arch_family(model) != "vit" \
                and not self.target_layer and (missing := layer_reason(model, x, self.min_grid)):
            reason = f"{self.name}: {missing}"  # no channels-first feature map (timm's Swin): a skip
        return reason

    def layer_for(self, model: nn.Module, x: Tensor) -> tuple[nn.Module, Callable | None]:
        if arch_family(model) == "vit":
            found = vit_network(model)  # a wrapped ViT's own layer, named through the wrapper: net.blocks.-1.norm1
            default = f"{found[0]}.blocks.-1.norm1" if found and found[0] else "blocks.-1.norm1"
            name = self.target_layer or default
            if name == default:
                layer = vit_net(model).blocks[-1].norm1  # type: ignore[index]
            elif problem := attention_problem(model, name, vit=True):  # qkv's columns are no channels (a review)
                raise ValueError(f"{self.name}: {problem}")
            else:
                layer = resolve_module(model, name)
            spatial = tuple(x.shape[2:])  # the grid the network sees: dynamic_img_pad's padded one (a review)
            self.last_info = {"target_layer": name, "grid": list(patch_grid(model, spatial))}
            return layer, vit_reshape_transform(model, spatial)
        if self.target_layer:
            if problem := attention_problem(model, self.target_layer):  # Swin's attention weights (a review)
                raise ValueError(f"{self.name}: {problem}")
            # the grid is read off the CAM's own forward pass (see explain), not an extra one
            self.last_info = {"target_layer": self.target_layer, "grid": []}
            return resolve_module(model, self.target_layer), None
        name, grid_t = find_target_layer(model, x, self.min_grid)
        self.last_info = {"target_layer": name, "grid": list(grid_t)}
        return model.get_submodule(name), None

    def make_cam(self, model: nn.Module, layer: nn.Module, reshape: Callable | None) -> Any:
        """The pytorch-grad-cam object for one call; subclasses pass extra arguments here."""
        return raw_cam_class(self.cam_class)(model=model, target_layers=[layer], reshape_transform=reshape)

    def release(self, model: nn.Module, cam: Any) -> None:
        """Undo what the CAM object did to the model (its hooks), also when the call failed."""
        cam.activations_and_grads.release()

    def explain(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        if arch_family(model) == "vit" and (problem := input_size_problem(model, tuple(x.shape[2:]))):
            raise ValueError(f"{self.name}: {problem}")  # timm's bare AssertionError otherwise (a review)
        layer, reshape = self.layer_for(model, x)
        grid: list[int] = self.last_info["grid"]
        network_input = [x.shape]  # what the network sees: a resized image where it has an input transform
        vit, checked = arch_family(model) == "vit", []

        def check_output(_m: nn.Module, _i: Any, out: Any) -> None:
            """A target_layer set by hand: its grid, read off the CAM's own forward pass; checked there, before
            pytorch-grad-cam reads it (a review: a linear layer gave its "Invalid grads shape"); a ViT's: its
            tokens (a review: ``head`` gave an IndexError in the reshape)."""
            if vit and not checked:  # the first call: Score-CAM and Ablation-CAM run other batches after it
                checked.append(True)
                if problem := token_problem(out, x.shape[0], model, tuple(x.shape[2:])):
                    raise ValueError(f"{self.name}: target_layer {self.target_layer!r} {problem}; {VIT_LAYER_HINT}")
            if vit or grid or not isinstance(out, Tensor):
                return
            if not channels_first(out.shape, network_input[0]):
                raise ValueError(f"{self.name}: target_layer {self.target_layer!r} outputs {tuple(out.shape)} for "
                                 f"an input of {tuple(x.shape)}: not (B, C, *grid) (a linear layer, or channels "
                                 "last as Swin's stages); choose a layer whose output is a channels-first feature map")
            grid.extend(out.shape[2:])

        probe = layer.register_forward_hook(check_output) if self.target_layer and (vit or not grid) else None
        transform = getattr(model, "input_transform", None)
        seen = transform.register_forward_hook(lambda _m, _i, out: network_input.__setitem__(0, out.shape)) \
            if probe is not None and isinstance(transform, nn.Module) else None
        cam = self.make_cam(model, layer, reshape)
        grad_hook, starved = patch_grad_probe(layer, model) if vit and cam.uses_gradients else (None, [])
        cam.compute_input_gradient = True  # a network frozen up to the layer has no gradient there otherwise
        # after make_cam: its hooks see the layer's own output; a layer called twice or of one cell is refused
        with restored_grads(model), kept_output(layer), \
                checked_layer(model, self.last_info["target_layer"], f"{self.name}: target_layer", grid=not vit,
                              found=not self.target_layer):
            try:
                raw = cam(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in target])
            except UncalledLayerError:
                raise ValueError(f"{self.name}: target_layer {self.last_info['target_layer']!r} is never called by "
                                 f"{type(model).__name__}'s forward pass, so it has no output to read; choose a layer "
                                 "the forward pass runs") from None
            finally:
                self.release(model, cam)
                for handle in (probe, seen, grad_hook):
                    if handle is not None:
                        handle.remove()
        if starved and (samples := starved[0].nonzero().flatten().tolist()):
            raise ValueError(f"{self.name}: target_layer {self.last_info['target_layer']!r} receives no gradient on "
                             f"its patch tokens (sample {samples[0]} of the batch; its class token does): the head "
                             "reads only the class token after it, so every map of the patch grid would be 0; choose "
                             "a layer before the last block's attention, e.g. the default blocks.-1.norm1")
        raw_t = torch.as_tensor(np.asarray(raw, dtype=np.float32), device=x.device)
        if self.relu:  # on the layer's grid, before upsampling (module docstring)
            raw_t = raw_t.clamp(min=0)
        if vit:  # 0 past the last whole patch (the model drops them)
            return patch_pixels(raw_t[:, None], model, tuple(x.shape[2:]))[:, 0]
        mode = "bilinear" if x.ndim == 4 else "trilinear"
        return F.interpolate(raw_t[:, None], size=tuple(x.shape[2:]), mode=mode, align_corners=False)[:, 0]


@explainers.register("gradcam")
class GradCAMExplainer(CAMExplainer):
    """Grad-CAM: channel weights = spatial mean of d score / d activation (Selvaraju et al. 2017)."""

    cam_class = GradCAM
    paper = "Selvaraju et al. 2017, Grad-CAM"
    description = "gradient-weighted class activation map (pytorch-grad-cam), ReLU then upsampled"


@explainers.register("gradcam_pp")
class GradCAMPlusPlusExplainer(CAMExplainer):
    """Grad-CAM++: w_c = sum_ij alpha_ij relu(g_ij), alpha = g^2 / (2 g^2 + sum_ij(A) g^3 + 1e-6), g = dS/dA
    (Chattopadhyay et al. 2018, eq. 19, derived for exp(score); applied to the raw score's gradients
    as the library does, pytorch-grad-cam 1.5's 1e-6 in the denominator included: where the denominator is
    small it moves the map, a review measured 1.6-18.5 % of it against the formula without it)."""

    cam_class = GradCAMPlusPlus
    paper = "Chattopadhyay et al. 2018, Grad-CAM++"
    description = "Grad-CAM with higher-order pixel weights (pytorch-grad-cam)"


@explainers.register("xgradcam")
class XGradCAMExplainer(CAMExplainer):
    """XGrad-CAM: w_c = sum_ij (A_ij / sum A) dS/dA_ij (Fu et al. 2020, axiom-based Grad-CAM)."""

    cam_class = XGradCAM
    paper = "Fu et al. 2020, Axiom-based Grad-CAM"
    description = "activation-normalised gradient weights (pytorch-grad-cam)"


@explainers.register("hirescam")
class HiResCAMExplainer(CAMExplainer):
    """HiResCAM: map = sum_c dS/dA_c * A_c, element-wise, no spatial averaging (Draelos & Carin 2020).
    Provably equals the contribution of each location when the head is global pooling + linear."""

    cam_class = HiResCAM
    paper = "Draelos & Carin 2020, Use HiResCAM instead of Grad-CAM"
    description = "element-wise gradient x activation summed over channels (pytorch-grad-cam)"


@explainers.register("layercam")
class LayerCAMExplainer(CAMExplainer):
    """LayerCAM: map = sum_c relu(dS/dA_c) * A_c, element-wise (Jiang et al. 2021)."""

    cam_class = LayerCAM
    paper = "Jiang et al. 2021, LayerCAM"
    description = "positive-gradient-weighted activations, element-wise (pytorch-grad-cam)"


@explainers.register("eigencam")
class EigenCAMExplainer(CAMExplainer):
    """EigenCAM: projection of the (centred) activations on their first principal component
    (Muhammad & Yeasin 2020). Class-agnostic (``target`` is ignored) and gradient-free. The sign of
    an SVD component is arbitrary, so the map may come out negated: ``relu`` defaults to False here
    (a ReLU could zero a negated map) and it is compared under ``abs``."""

    cam_class = EigenCAM
    needs_grad = False
    version = "11"  # gradient-free: the CAMs' 8 changed nothing here (it was 7), their 9, 10 and 11 do
    defaults: ClassVar[dict[str, Any]] = {**CAMExplainer.defaults, "relu": False}
    paper = "Muhammad & Yeasin 2020, Eigen-CAM"
    description = "first principal component of the layer's activations (class-agnostic)"


class _ScoreCAMND(ScoreCAM):
    """pytorch-grad-cam's ScoreCAM weights, generalised to 3D and batched over B x channels.

    Same formula as the library: each channel, upsampled to the input ((bi/tri)linear,
    ``align_corners=True`` as the library's ``UpsamplingBilinear2d``) and min-max scaled, masks the
    input; w = softmax over channels of score_target(x * mask_c). The library's version is 2D only
    and builds all B*C masked inputs at once; this one builds ``batch_size`` at a time.
    """

    batch_size = 32

    def get_cam_weights(self, input_tensor, target_layer, targets, activations, grads):  # type: ignore[no-untyped-def]
        # the activations are already copied out; the hooks would store one more per masked batch
        self.activations_and_grads.release()
        spatial = tuple(input_tensor.shape[2:])
        mode = "bilinear" if len(spatial) == 2 else "trilinear"
        # a ViT: the masks cover the pixels its patches cover, 0 past them (as the maps, explainers.transformer)
        vit = arch_family(self.model) == "vit"
        size, frame = patch_layout(self.model, tuple(activations.shape[2:]), spatial) if vit else (spatial, spatial)
        scores = torch.empty(activations.shape[:2])
        with torch.no_grad():
            acts = torch.from_numpy(activations).to(self.device)
            for b, target in enumerate(targets):
                up = F.interpolate(acts[b:b + 1], size=size, mode=mode, align_corners=True)[0]
                flat = up.flatten(1)
                lo, hi = flat.min(1).values, flat.max(1).values
                up = (up - lo.view(-1, *[1] * len(spatial))) / (hi - lo + 1e-8).view(-1, *[1] * len(spatial))
                if vit:  # padded to (or cropped at) the size the network sees, resized to the input's
                    up = frame_to_input(up[None], frame, spatial)[0]
                for i in range(0, up.shape[0], self.batch_size):
                    masked = input_tensor[b:b + 1] * up[i:i + self.batch_size, None]
                    outputs = self.model(masked)
                    scores[b, i:i + len(outputs)] = torch.stack([target(o) for o in outputs]).float().cpu()
        return torch.softmax(scores, dim=-1).numpy()


@explainers.register("scorecam")
class ScoreCAMExplainer(CAMExplainer):
    """Score-CAM: w_c = softmax_c( S(x * norm(up(A_c))) ), map = sum_c w_c A_c (Wang et al. 2020).

    One forward pass per channel and image, ``batch_size`` (default 32) masked inputs at a time.
    Gradient-free.
    """

    cam_class = _ScoreCAMND
    needs_grad = False
    version = "11"  # gradient-free: the CAMs' 8 changed nothing here (it was 7), their 9 (masks too), 10, 11 do
    paper = "Wang et al. 2020, Score-CAM"
    description = "channel weights from the score of the input masked by each activation map"
    defaults: ClassVar[dict[str, Any]] = {**CAMExplainer.defaults, "batch_size": 32}
    bounds: ClassVar[dict[str, Bound]] = {"batch_size": AT_LEAST_ONE}

    def make_cam(self, model: nn.Module, layer: nn.Module, reshape: Callable | None) -> Any:
        cam = super().make_cam(model, layer, reshape)
        cam.batch_size = self.batch_size
        return cam
