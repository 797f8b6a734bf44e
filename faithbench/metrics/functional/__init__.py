"""Pure tensor functions: the math of every metric, unit-tested against hand-computed values."""

from faithbench.metrics.functional.chexlocalize import (binarize, chexlocalize_hit, chexlocalize_iou, otsu_threshold,
                                                          random_iou_chance, segment, tune_gate, tune_threshold)
from faithbench.metrics.functional.faithfulness_extra import (Scorer, faithfulness_correlation, faithfulness_estimate,
                                                               feature_attribution, feature_ids, monotonicity,
                                                               monotonicity_correlation, monotonicity_curve,
                                                               random_subsets, random_subsets_by_size, sensitivity_n,
                                                               subset_correlation, subset_deltas, whole_features)
from faithbench.metrics.functional.faithfulness_regions import (box_sums, infidelity, infidelity_from_terms,
                                                                infidelity_squares, infidelity_terms, irof, mean_ranks,
                                                                patch_removal_curve, selectivity, square_draws,
                                                                square_masks, sufficiency)
from faithbench.metrics.functional.road import linear_imputation, road_curve, road_score
from faithbench.metrics.functional.localization import (area_fraction, auprc, auprc_chance, bounding_box, dilate,
                                                         iou_chance,
                                                         iou_top_k, pointing_game, relevance_mass, relevance_rank,
                                                         top_fraction)
from faithbench.metrics.functional.perturbation import (BASELINES, abpc, aopc, aopc_curve, auc, deletion_auc,
                                                         deletion_curve, feature_ranks, gaussian_blur, insertion_auc,
                                                         insertion_curve, make_baseline, perturbation_curve,
                                                         pool_features, region_deletion_correlation,
                                                         region_deletion_deltas, score_logits, seeded, step_counts)
from faithbench.metrics.functional.randomization import (block_logit_changes, cascading_randomization_curve,
                                                          data_randomization, independent_randomization_curve,
                                                          mprt_cascading, mprt_independent, parameter_blocks,
                                                          random_logit, random_other_class, randomize_block)
from faithbench.metrics.functional.regions import (REGION_SCORES, grid_edges, grid_masks, grid_names, region_scores,
                                                    stack_regions)
from faithbench.metrics.functional.temporal import (per_visit, temporal_curve, temporal_deletion_auc,
                                                    temporal_insertion_auc, visit_importance, visit_pointing,
                                                    visit_pointing_game, visit_ranks, visit_relevance_mass,
                                                    visits_valid)
from faithbench.metrics.functional.robustness import (argmax_cell, cell_means, consistency, continuity_ratio,
                                                       explain_perturbed, gaussian_noise, lipschitz_ratio,
                                                       normalise_by_max, prediction_changed, reduce_draws, sensitivity,
                                                       translations, uniform_noise)
from faithbench.metrics.functional.stability import (relative_input_stability, relative_output_stability,
                                                      relative_representation_stability, representation_reader)
from faithbench.metrics.functional.complexity import complexity, effective_complexity, sparseness
from faithbench.metrics.functional.axiomatic import (completeness_gap, input_invariance,
                                                      non_sensitivity, shifted_model)
from faithbench.metrics.functional.mprt import (discrete_entropy, efficient_mprt, randomized_copy, smooth_explain,
                                                smooth_mprt, smoothing_noise)
from faithbench.metrics.functional.mask_overlap import attribution_localisation, roc_auc, top_k_intersection
from faithbench.metrics.functional.focus import build_mosaic, focus, mosaic_plan, tile_mask
from faithbench.metrics.functional.similarity import (SIMILARITIES, hog_pearson, minmax, pearson, rankdata,
                                                       similarity, spearman, spearman_abs, spearman_abs_matrix, ssim,
                                                       ssim_matrix)

__all__ = [
    # localisation
    "area_fraction", "auprc", "auprc_chance", "bounding_box", "dilate", "iou_chance", "iou_top_k", "pointing_game",
    "relevance_mass", "relevance_rank", "top_fraction",
    # CheXlocalize
    "binarize", "chexlocalize_hit", "chexlocalize_iou", "otsu_threshold", "random_iou_chance", "segment",
    "tune_gate", "tune_threshold",
    # perturbation
    "BASELINES", "abpc", "aopc", "aopc_curve", "auc", "deletion_auc", "deletion_curve", "feature_ranks",
    "gaussian_blur", "insertion_auc", "insertion_curve", "make_baseline", "perturbation_curve", "pool_features",
    "region_deletion_correlation", "region_deletion_deltas", "score_logits", "seeded", "step_counts",
    # faithfulness (issue 15)
    "Scorer", "faithfulness_correlation", "faithfulness_estimate", "feature_attribution", "feature_ids",
    "monotonicity", "monotonicity_correlation", "monotonicity_curve", "random_subsets", "random_subsets_by_size",
    "sensitivity_n", "subset_correlation", "subset_deltas", "whole_features", "infidelity", "infidelity_from_terms",
    "infidelity_terms", "infidelity_squares", "square_draws", "square_masks", "box_sums",
    "irof", "mean_ranks", "patch_removal_curve", "selectivity", "sufficiency", "linear_imputation", "road_curve",
    "road_score",
    # randomisation
    "block_logit_changes", "cascading_randomization_curve", "data_randomization", "independent_randomization_curve",
    "mprt_cascading",
    "mprt_independent", "parameter_blocks", "random_logit", "random_other_class", "randomize_block",
    # regions
    "REGION_SCORES", "grid_edges", "grid_masks", "grid_names", "region_scores", "stack_regions",
    # temporal
    "per_visit", "temporal_curve", "temporal_deletion_auc", "temporal_insertion_auc", "visit_importance",
    "visit_pointing", "visit_pointing_game", "visit_ranks", "visit_relevance_mass", "visits_valid",
    # similarity
    "SIMILARITIES", "hog_pearson", "minmax", "pearson", "rankdata", "similarity", "spearman", "spearman_abs",
    "spearman_abs_matrix", "ssim", "ssim_matrix",
    # robustness
    "argmax_cell", "cell_means", "consistency", "continuity_ratio", "explain_perturbed", "gaussian_noise",
    "lipschitz_ratio", "normalise_by_max", "prediction_changed", "reduce_draws", "sensitivity", "translations",
    "uniform_noise",
    "relative_input_stability", "relative_output_stability", "relative_representation_stability",
    "representation_reader",
    # complexity and axiomatic
    "complexity", "effective_complexity", "sparseness", "completeness_gap", "input_invariance",
    "non_sensitivity", "shifted_model",
    # randomisation revisited
    "discrete_entropy", "efficient_mprt", "randomized_copy", "smooth_explain", "smooth_mprt", "smoothing_noise",
    # more localisation
    "attribution_localisation", "roc_auc", "top_k_intersection", "build_mosaic", "focus", "mosaic_plan", "tile_mask",
]
