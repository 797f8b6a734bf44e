"""The "class at chance" warning (a held-out review, round 6): it sent the reader to the maps explaining a class
that no map explained (``target: predicted``, a class the model never predicts: no such stratum in strata.csv),
and a model at chance got one such line per class and seed, "though the macro AUC may", beside its own warning."""

from __future__ import annotations

import pandas as pd

from faithbench.stats.chance import model_warnings, weak_class_messages


def _row(dataset: str, seed: int, macro_low: float, classes=("alpha", "beta", "gamma"), gamma_low: float = 0.12):
    row = {"dataset": dataset, "model": "cnn", "seed": seed, "auc": 0.7, "auc_ci_low": macro_low,
           "auc_ci_high": 0.88, "auc_ci_min_class_n": 8}
    for name, low in zip(classes, (0.87, 0.54, gamma_low)):
        row.update({f"ovr_n_{name}": 8, f"ovr_auc_{name}": 0.5, f"ovr_auc_ci_low_{name}": low,
                    f"ovr_auc_ci_high_{name}": 0.742})
    return row


def _samples(dataset: str, seed: int, targets: list[int]) -> list[dict]:
    return [{"dataset": dataset, "model": "cnn", "seed": seed, "sample_id": f"s{i}", "target": t}
            for i, t in enumerate(targets)]


def test_a_class_no_map_explains_is_said_to_be_explained_by_none():
    models = pd.DataFrame([_row("tri", 0, 0.577), _row("tri", 1, 0.555)])
    samples = pd.DataFrame(_samples("tri", 0, [0, 1, 1, 0]) + _samples("tri", 1, [0, 1, 2]))
    messages = weak_class_messages(models, samples=samples)
    assert messages == [
        "class at chance: tri / cnn (seed 0), class gamma has a one-vs-rest test AUC 95% CI [0.120, 0.742] that "
        "does not lie above 0.5 though the macro AUC may; no map explains it (its images are explained as other "
        "classes, under whose strata strata.csv puts them)",
        "class at chance: tri / cnn (seed 1), class gamma has a one-vs-rest test AUC 95% CI [0.120, 0.742] that "
        "does not lie above 0.5 though the macro AUC may; the maps explaining it say little (strata.csv breaks "
        "the scores down by explained class)"]  # seed 1 explains class 2 once
    assert model_warnings(models, samples)[0] == messages[0]
    assert weak_class_messages(models)[0].endswith("say little (strata.csv breaks the scores down by explained "
                                                   "class)")  # without samples.csv: as before


def test_class_order_is_not_guessed_from_a_dataset_sharing_names_in_other_columns():
    # "other" fills gamma and delta: the union of columns may have put tri's classes in another order
    models = pd.DataFrame([_row("tri", 0, 0.577), _row("other", 0, 0.6, classes=("delta", "gamma", "eps"),
                                                       gamma_low=0.9)])
    samples = pd.DataFrame(_samples("tri", 0, [0, 1]))
    (message,) = weak_class_messages(models, samples=samples)
    assert message.startswith("class at chance: tri / cnn (seed 0), class gamma") and "say little" in message
    same = pd.DataFrame([_row("tri", 0, 0.577), _row("tri444", 0, 0.6, gamma_low=0.9)])  # the same classes
    assert "no map explains it" in weak_class_messages(same, samples=samples)[0]


def test_a_checkpoint_at_chance_gets_no_class_at_chance_lines():
    models = pd.DataFrame([_row("noise4", 0, 0.262, gamma_low=0.15), _row("noise4", 1, 0.357, gamma_low=0.2),
                           _row("tri", 0, 0.577)])
    messages = model_warnings(models)
    assert messages[0].startswith("model at chance: noise4 / cnn (seed 0, 1)")
    assert [m[:45] for m in messages[1:]] == ["class at chance: tri / cnn (seed 0), class ga"]
