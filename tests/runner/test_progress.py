"""The suite's progress bar moves as cells advance (per batch), not once per group."""

from faithbench.config import suite_from_dict
from faithbench.runner.executors import run_groups
from faithbench.runner.plan import plan
from faithbench.runner.settings import RunSettings
from faithbench.store import Cache

TINY = {"name": "tiny_progress", "samples": 8, "batch_size": 2,
        "datasets": [{"name": "phantom_cxr", "params": {"n": 32, "size": 32}}],
        "models": [{"name": "small_cnn", "params": {"width": 4}, "recipe": {"epochs": 1}}],
        "explainers": ["random", "sobel"], "metrics": ["pointing_game"]}


class Bar:
    def __init__(self) -> None:
        self.updates: list[float] = []
        self.texts: list[str] = []

    def update(self, n: float) -> None:
        self.updates.append(n)

    def set_postfix_str(self, text: str) -> None:
        self.texts.append(text)


def test_the_bar_advances_per_batch_and_sums_to_the_cells(tmp_path):
    suite = suite_from_dict(TINY)
    groups = plan(suite)
    bar, outputs = Bar(), {}
    run_groups(groups, RunSettings.from_suite(suite), Cache(tmp_path / "cache"), "local", bar, lambda m: None, outputs)
    assert sum(bar.updates) == sum(len(g.cells) for g in groups) == 2
    assert len([u for u in bar.updates if u > 0]) == 4  # 8 samples in batches of 2: four steps of half a cell
    assert bar.updates[0] == 0.5
    assert any("random" in t for t in bar.texts) and any("sobel" in t for t in bar.texts)
