"""Allow-lists of torch.nn leaf modules for the explainers whose rules sit on modules (DeepLIFT, guided
backpropagation): a leaf of torch.nn's that is on no list is refused, so a module a rule does not cover
cannot pass its plain gradient silently (a held-out review: Hardtanh, Softsign, Threshold, LogSigmoid,
RReLU, Hardshrink, Tanhshrink, AdaptiveMaxPool, LPPool were missing from a deny-list, and deeplift returned
maps 3-580 % off summation-to-delta). Leaves defined outside torch.nn are traced instead
(:func:`~faithbench.explainers.graph.foreign_nonlinear_leaves`).
"""

from __future__ import annotations

from collections import Counter

from captum.attr._core.deep_lift import SUPPORTED_NON_LINEAR
from torch import nn

from faithbench.explainers.deeplift_hooks import ADAPTIVE_MAX_POOLS, global_max_pool

# affine in their input in eval mode: DeepLIFT's multipliers and a gradient pass them exactly
LINEAR_LEAVES: tuple[type[nn.Module], ...] = (
    nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d,
    nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d,
    nn.SyncBatchNorm, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout,
    nn.Identity, nn.Flatten, nn.Unflatten, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d, nn.ConstantPad1d,
    nn.ConstantPad2d, nn.ConstantPad3d, nn.ReflectionPad1d, nn.ReflectionPad2d, nn.ReflectionPad3d,
    nn.ReplicationPad1d, nn.ReplicationPad2d, nn.ReplicationPad3d, nn.CircularPad1d, nn.CircularPad2d,
    nn.CircularPad3d, nn.PixelShuffle, nn.PixelUnshuffle, nn.ChannelShuffle, nn.Upsample, nn.UpsamplingNearest2d,
    nn.UpsamplingBilinear2d, nn.Fold, nn.Unfold)
# captum 0.9's DeepLIFT rules (exact types); nn.Softmax's rule is approximate and refused apart
DEEPLIFT_RULE_LEAVES: tuple[type[nn.Module], ...] = tuple(k for k in SUPPORTED_NON_LINEAR if k is not nn.Softmax)
# modules with a rule that captum keeps one input and output of (each must be called once per forward)
DEEPLIFT_STATEFUL_LEAVES: tuple[type[nn.Module], ...] = (*DEEPLIFT_RULE_LEAVES, *ADAPTIVE_MAX_POOLS)
SOFTMAX_LEAVES: tuple[type[nn.Module], ...] = (nn.Softmax, nn.Softmin, nn.LogSoftmax)
# non-linear but not activations: guided backpropagation passes their gradients, as the method does
GUIDED_PASSED_LEAVES: tuple[type[nn.Module], ...] = (
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
    nn.LPPool1d, nn.LPPool2d, nn.LPPool3d, nn.FractionalMaxPool2d, nn.FractionalMaxPool3d, nn.LayerNorm,
    nn.GroupNorm, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d, nn.LocalResponseNorm, nn.RMSNorm)


def _torch_nn_leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(path, module) of the leaves of ``model`` defined in torch.nn."""
    return [(name, m) for name, m in model.named_modules()
            if not list(m.children()) and type(m).__module__.startswith("torch.nn.")]


def deeplift_unruled_leaves(model: nn.Module) -> list[tuple[str, str]]:
    """(type name, path) of each torch.nn leaf neither linear nor under a captum DeepLIFT rule (a global adaptive
    max-pool gets captum's max-pool rule: :func:`~faithbench.explainers.deeplift_hooks.global_max_pool`) nor a
    softmax (refused apart): its plain gradient would pass, which is not DeepLIFT."""
    return [(type(m).__name__, name) for name, m in _torch_nn_leaves(model)
            if not isinstance(m, LINEAR_LEAVES) and type(m) not in DEEPLIFT_RULE_LEAVES
            and not global_max_pool(m) and not isinstance(m, SOFTMAX_LEAVES)]


def unguided_leaves(model: nn.Module) -> Counter:
    """Type name -> count of the torch.nn leaves guided backpropagation would leave unguided: every one that
    is not an nn.ReLU, linear, or a pooling or norm layer."""
    return Counter(type(m).__name__ for _, m in _torch_nn_leaves(model)
                   if not isinstance(m, (nn.ReLU, *LINEAR_LEAVES, *GUIDED_PASSED_LEAVES)))


def by_type(leaves: list[tuple[str, str]]) -> list[str]:
    """(type name, path) pairs as one entry per type in order of appearance: 'Type (path)' where one module has
    it, else 'Type (n modules: first path, ...)' (a diff review: every instance listed made a 1,758-character
    line on torchvision's efficientnet_b0, 5,652 on efficientnet_b7)."""
    paths: dict[str, list[str]] = {}
    for kind, path in leaves:
        paths.setdefault(kind, []).append(path)
    return [f"{kind} ({found[0]})" if len(found) == 1 else f"{kind} ({len(found)} modules: {found[0]}, ...)"
            for kind, found in paths.items()]
