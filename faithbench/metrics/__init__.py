"""Metrics: thin registered classes over the pure functions of ``functional``."""

from faithbench.metrics import functional
from faithbench.metrics.base import EvalContext, ForwardCounter, Metric, postprocess
from faithbench.metrics.faithfulness import DeletionAUC, InsertionAUC
from faithbench.metrics.localization import PointingGame, RelevanceMass

__all__ = ["functional", "EvalContext", "ForwardCounter", "Metric", "postprocess", "DeletionAUC",
           "InsertionAUC", "PointingGame", "RelevanceMass"]
