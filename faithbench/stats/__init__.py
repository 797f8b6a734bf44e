"""Statistics of faithbench: paired non-parametric tests, bootstrap CIs and result tables.

After Demšar 2006, "Statistical Comparisons of Classifiers over Multiple Data Sets" (JMLR):
per (dataset, model, metric) a Friedman test with Nemenyi
post-hoc and critical difference (Demšar 2006), pairwise two-sided Wilcoxon signed-rank
tests with Holm adjustment (Holm 1979) and rank-biserial effect sizes (Kerby 2014), one-sided
Wilcoxon tests against the random control, and 95% percentile bootstrap CIs of the mean.
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
from faithbench.stats.tables import (
    agreement_table,
    friedman_table,
    leaderboard,
    nemenyi_table,
    overall_ranks,
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
    "mean_ranks",
    "nemenyi",
    "nemenyi_table",
    "overall_ranks",
    "pairwise_table",
    "pairwise_wilcoxon",
    "rank_biserial",
    "versus_control",
    "wilcoxon_pair",
]
