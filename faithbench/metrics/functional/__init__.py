"""Pure tensor functions: the math of every metric, unit-tested against hand-computed values."""

from faithbench.metrics.functional.localization import (area_fraction, dilate, pointing_game,
                                                         relevance_mass)
from faithbench.metrics.functional.perturbation import (auc, deletion_auc, feature_ranks, gaussian_blur,
                                                         insertion_auc, make_baseline, perturbation_curve,
                                                         pool_features, step_counts)

__all__ = ["area_fraction", "dilate", "pointing_game", "relevance_mass", "auc", "deletion_auc",
           "feature_ranks", "gaussian_blur", "insertion_auc", "make_baseline", "perturbation_curve",
           "pool_features", "step_counts"]
