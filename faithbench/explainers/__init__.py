"""Explainers: each registers itself in ``faithbench.registry.explainers``."""

from faithbench.explainers.base import Explainer, ExplainerProtocol
from faithbench.explainers.cam import CAMExplainer, GradCAMExplainer
from faithbench.explainers.controls import RandomExplainer, SobelExplainer, sobel_magnitude
from faithbench.explainers.gradient import IntegratedGradientsExplainer, SaliencyExplainer

__all__ = ["Explainer", "ExplainerProtocol", "CAMExplainer", "GradCAMExplainer", "RandomExplainer",
           "SobelExplainer", "sobel_magnitude", "IntegratedGradientsExplainer", "SaliencyExplainer"]
