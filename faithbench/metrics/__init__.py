"""Metrics: thin registered classes over the pure functions of ``functional``."""

from faithbench.metrics import functional
from faithbench.metrics.base import EvalContext, ForwardCounter, Metric, MetricOutput, postprocess
from faithbench.metrics.chexlocalize import CheXlocalizeHit, CheXlocalizeIoU
from faithbench.metrics.class_sensitivity import ClassSensitivity
from faithbench.metrics.faithfulness import (ABPC, AOPC, DeletionAUC, InsertionAUC, LeRFAOPC, MoRFAOPC,
                                             PerturbationMetric, RegionDeletionCorrelation)
from faithbench.metrics.faithfulness_extra import (IROF, ROAD, ExtraFaithfulness, FaithfulnessCorrelation,
                                                   FaithfulnessEstimate, Monotonicity, MonotonicityCorrelation,
                                                   ROADLeRF, ROADMoRF, Selectivity, SensitivityN, Sufficiency)
from faithbench.metrics.infidelity import Infidelity
from faithbench.metrics.localization import (AUPRC, IoUTop5, IoUTop10, IoUTop20, IoUTop40, IoUTopK, PointingGame,
                                             RelevanceMass, RelevanceRank)
from faithbench.metrics.temporal import (TemporalDeletion, TemporalInsertion, VisitPointing, VisitPointingGame,
                                         VisitRelevanceMass)
from faithbench.metrics.randomization import (DataRandomization, MPRTCascading, MPRTIndependent, RandomizationMetric,
                                              RandomLogit)
from faithbench.metrics.regions import RegionSaliency
from faithbench.metrics.robustness import (AvgSensitivity, Consistency, Continuity, LocalLipschitz, MaxSensitivity,
                                           RobustnessMetric)
from faithbench.metrics.stability import (RelativeInputStability, RelativeOutputStability,
                                          RelativeRepresentationStability)
from faithbench.metrics.complexity import Complexity, EffectiveComplexity, Sparseness
from faithbench.metrics.axiomatic import Completeness, InputInvariance, NonSensitivity
from faithbench.metrics.mprt import EfficientMPRT, SmoothMPRT
from faithbench.metrics.mask_overlap import ROCAUC, AttributionLocalisation, Focus, TopKIntersection

__all__ = ["functional", "EvalContext", "ForwardCounter", "Metric", "MetricOutput", "postprocess",
           "PerturbationMetric", "DeletionAUC", "InsertionAUC", "ABPC", "AOPC", "MoRFAOPC", "LeRFAOPC",
           "RegionDeletionCorrelation",
           "ExtraFaithfulness", "FaithfulnessCorrelation", "FaithfulnessEstimate", "Monotonicity",
           "MonotonicityCorrelation", "SensitivityN", "IROF", "Selectivity", "Infidelity", "ROAD", "ROADMoRF",
           "ROADLeRF", "Sufficiency",
           "PointingGame", "RelevanceMass", "RelevanceRank", "IoUTopK", "IoUTop5", "IoUTop10", "IoUTop20",
           "IoUTop40", "AUPRC",
           "RandomizationMetric", "MPRTCascading", "MPRTIndependent", "RandomLogit", "DataRandomization",
           "ClassSensitivity", "RegionSaliency", "CheXlocalizeIoU", "CheXlocalizeHit",
           "TemporalDeletion", "TemporalInsertion", "VisitPointing", "VisitPointingGame", "VisitRelevanceMass",
           "RobustnessMetric", "LocalLipschitz", "MaxSensitivity", "AvgSensitivity", "Continuity", "Consistency",
           "RelativeInputStability", "RelativeRepresentationStability", "RelativeOutputStability",
           "Sparseness", "Complexity", "EffectiveComplexity", "Completeness", "NonSensitivity", "InputInvariance",
           "SmoothMPRT", "EfficientMPRT", "AttributionLocalisation", "TopKIntersection", "ROCAUC", "Focus"]
