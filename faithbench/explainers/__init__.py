"""Explainers: each registers itself in ``faithbench.registry.explainers``.

Families: ``cam`` (pytorch-grad-cam), ``gradient`` (captum, incl. ``lrp``), ``perturbation``
(occlusion, LIME, KernelSHAP via captum; RISE; temporal occlusion), ``transformer`` (attention, rollout, Chefer),
``control`` (random, sobel, center_prior).
"""

from faithbench.explainers.ablation import AblationCAMExplainer
from faithbench.explainers.base import Explainer, ExplainerProtocol
from faithbench.explainers.cam import (CAMExplainer, EigenCAMExplainer, GradCAMExplainer, GradCAMPlusPlusExplainer,
                                       HiResCAMExplainer, LayerCAMExplainer, ScoreCAMExplainer, XGradCAMExplainer)
from faithbench.explainers.controls import (CenterPriorExplainer, RandomExplainer, SobelExplainer,
                                            center_gaussian, sobel_magnitude)
from faithbench.explainers.fullgrad import FullGradExplainer
from faithbench.explainers.gradient import (DeepLiftExplainer, GradientSHAPExplainer, GuidedBackpropExplainer,
                                            GuidedGradCAMExplainer, InputXGradientExplainer,
                                            IntegratedGradientsExplainer, SaliencyExplainer, SmoothGradExplainer)
from faithbench.explainers.lrp import LRPEpsilonZPlusExplainer, LRPExplainer, lrp_unsupported_layers
from faithbench.explainers.perturbation import (KernelSHAPExplainer, LimeExplainer, OcclusionExplainer,
                                                RISEExplainer, patch_feature_mask, rise, rise_masks)
from faithbench.explainers.temporal import TemporalOcclusionExplainer, visit_drops
from faithbench.explainers.transformer import (AttentionExplainer, AttentionRolloutExplainer, CheferExplainer,
                                               attention_rollout, gradient_weighted_rollout,
                                               readout_weights, recorded_attention, token_map)

__all__ = [
    "Explainer", "ExplainerProtocol",
    "CAMExplainer", "GradCAMExplainer", "GradCAMPlusPlusExplainer", "XGradCAMExplainer", "HiResCAMExplainer",
    "LayerCAMExplainer", "EigenCAMExplainer", "ScoreCAMExplainer", "AblationCAMExplainer", "FullGradExplainer",
    "SaliencyExplainer", "IntegratedGradientsExplainer", "InputXGradientExplainer", "SmoothGradExplainer",
    "GradientSHAPExplainer", "DeepLiftExplainer", "GuidedBackpropExplainer", "GuidedGradCAMExplainer",
    "LRPEpsilonZPlusExplainer", "LRPExplainer", "lrp_unsupported_layers",
    "OcclusionExplainer", "LimeExplainer", "KernelSHAPExplainer", "RISEExplainer", "patch_feature_mask",
    "rise", "rise_masks", "TemporalOcclusionExplainer", "visit_drops",
    "AttentionExplainer", "AttentionRolloutExplainer", "CheferExplainer", "attention_rollout",
    "gradient_weighted_rollout", "readout_weights", "recorded_attention", "token_map",
    "RandomExplainer", "SobelExplainer", "CenterPriorExplainer", "center_gaussian", "sobel_magnitude",
]
