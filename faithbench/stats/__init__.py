"""Statistics of faithbench: paired non-parametric tests, bootstrap CIs and result tables.

After Demšar 2006, "Statistical Comparisons of Classifiers over Multiple Data Sets" (JMLR):
per (dataset, model, metric) a Friedman test with Nemenyi
post-hoc and critical difference (Demšar 2006), pairwise two-sided Wilcoxon signed-rank
tests with Holm adjustment (Holm 1979) and rank-biserial effect sizes (Kerby 2014), one-sided
Wilcoxon tests against the random control, and 95% percentile bootstrap CIs of the mean. The
medical-imaging analyses: repeatability/reproducibility of maps (Arun et al. 2021), metric
reliability (MetaQuantus idea, Hedström et al. 2023) and the stratified analysis.
"""

from faithbench.stats.bootstrap import bootstrap_ci
from faithbench.stats.paired import (
    FriedmanResult,
    critical_difference,
    friedman,
    holm,
    mean_ranks,
    nemenyi,
    pairwise_wilcoxon,
    rank_biserial,
    versus_control,
    wilcoxon_pair,
)
from faithbench.stats.overall import overall_nemenyi, overall_ranks
from faithbench.stats.reliability import metric_reliability, reliability_footnote
from faithbench.stats.repeatability import repeatability_table
from faithbench.stats.strata import stratify
from faithbench.stats.tables import (
    agreement_table,
    friedman_table,
    leaderboard,
    nemenyi_table,
    pairwise_table,
)

__all__ = [
    "FriedmanResult",
    "agreement_table",
    "bootstrap_ci",
    "critical_difference",
    "friedman",
    "friedman_table",
    "holm",
    "leaderboard",
    "metric_reliability",
    "mean_ranks",
    "nemenyi",
    "nemenyi_table",
    "overall_nemenyi",
    "overall_ranks",
    "pairwise_table",
    "pairwise_wilcoxon",
    "rank_biserial",
    "reliability_footnote",
    "repeatability_table",
    "stratify",
    "versus_control",
    "wilcoxon_pair",
]
