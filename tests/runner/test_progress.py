"""The suite's progress bar moves as each cell of a group finishes a batch, not once per group;
the metric-reliability phase after the cells shows a count in the bar's postfix."""

import re

from faithbench.config import suite_from_dict
from faithbench.runner.executors import run_groups
from faithbench.runner.plan import plan
from faithbench.runner.settings import RunSettings
from faithbench.store import Cache

TINY = {"name": "tiny_progress", "samples": 8, "batch_size": 2, "reliability": 0,
        "datasets": [{"name": "phantom_cxr", "params": {"n": 32, "size": 32}}],
        "models": [{"name": "small_cnn", "params": {"width": 4}, "recipe": {"epochs": 1}}],
        "explainers": ["random", "sobel"], "metrics": ["pointing_game"]}


class Bar:
    """A fake tqdm bar: the sequence of (what, increment) it was given."""

    def __init__(self) -> None:
        self.events: list[tuple[str, float | str]] = []

    def update(self, n: float) -> None:
        self.events.append(("update", n))

    def set_postfix_str(self, text: str) -> None:
        self.events.append(("text", text))

    @property
    def updates(self) -> list[float]:
        return [n for kind, n in self.events if kind == "update"]

    @property
    def texts(self) -> list[str]:
        return [t for kind, t in self.events if kind == "text"]


def _run(suite_dict, cache):
    suite = suite_from_dict(suite_dict)
    groups = plan(suite)
    bar = Bar()
    run_groups(groups, RunSettings.from_suite(suite), cache, "local", bar, lambda m: None, {})
    return bar, sum(len(g.cells) for g in groups)


def _cell_steps(bar: Bar) -> list[tuple[str, float]]:
    """(the cell named last, the increment) of each update."""
    steps, last = [], ""
    for kind, value in bar.events:
        if kind == "text":
            last = str(value)
        else:
            steps.append((last.rsplit("/", 2)[-2], value))
    return steps


def test_the_bar_advances_as_each_cell_ends_a_batch_and_sums_to_the_cells(tmp_path):
    bar, cells = _run(TINY, Cache(tmp_path / "cache"))
    assert cells == 2 and sum(bar.updates) == 2
    # 8 samples in batches of 2: each cell advances a quarter of a cell per batch, in turn
    assert _cell_steps(bar) == [("random", 0.25), ("sobel", 0.25)] * 4
    assert any("random" in t for t in bar.texts) and any("sobel" in t for t in bar.texts)


def test_a_one_batch_group_moves_after_each_cell_also_when_resumed(tmp_path):
    """A review: with samples <= batch_size the bar stayed at 0 % until every cell of the group had
    run (0.0/14 for 7 minutes, then 14.0/14); a rerun reads the batches from the cache and counts alike."""
    one_batch = {**TINY, "batch_size": 8}
    cache = Cache(tmp_path / "cache")
    for _ in range(2):  # computed, then resumed from the cache
        bar, cells = _run(one_batch, cache)
        assert _cell_steps(bar) == [("random", 1.0), ("sobel", 1.0)]  # a whole cell each
        assert sum(bar.updates) == cells == 2


def test_the_reliability_phase_counts_its_re_scorings(tmp_path):
    """A review: the bar sat at 100 % for 37 s of re-scoring with no count; the postfix now counts
    (cell, condition) re-scorings: 2 explainers x 2 perturbed conditions (random, a control, ranks in none)."""
    suite = {**TINY, "reliability": 4, "explainers": ["saliency", "input_x_gradient", "random"],
             "metrics": [{"name": "deletion_auc", "params": {"steps": 4}}]}
    bar, _ = _run(suite, Cache(tmp_path / "cache"))
    counts = [re.search(r"metric reliability of small_cnn on phantom_cxr: (\d)/(\d) re-scored, now (\S+) under", t)
              for t in bar.texts]
    seen = [(int(m[1]), int(m[2])) for m in counts if m]
    assert seen == [(0, 4), (1, 4), (2, 4), (3, 4)]
