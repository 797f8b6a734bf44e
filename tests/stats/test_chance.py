"""A checkpoint whose test AUC is undefined (a test split with one class) cannot be told to beat
chance: its (dataset, model) is marked at chance; one cached before the CI columns existed is not."""

import numpy as np
import pandas as pd
import pytest
import torch

from faithbench.stats.chance import (at_chance_message, mark_models_at_chance, model_warnings, models_at_chance,
                                     single_class_models)

NAN = np.nan


def _models(**columns):
    base = {"dataset": ["d", "d", "e", "f"], "model": ["m", "m", "m", "m"], "seed": [0, 1, 0, 0]}
    return pd.DataFrame({**base, **columns})


def test_an_undefined_auc_is_at_chance_and_a_missing_ci_is_not():
    models = _models(auc=[0.95, NAN, 0.9, NAN], auc_ci_low=[0.9, NAN, NAN, NAN], auc_ci_high=[0.99, NAN, NAN, NAN])
    table = models_at_chance(models)
    # d/m seed 1: one class in the test split; e/m: an AUC with no CI (cached before the CI columns)
    assert table[["dataset", "model", "seeds", "auc_undefined"]].values.tolist() == [["d", "m", "1", "1"],
                                                                                   ["f", "m", "0", "0"]]
    assert table["cis"].tolist() == [(), ()]  # no CI to show
    board = pd.DataFrame({"dataset": ["d", "e", "f"], "model": "m", "mean": [1.0, 2.0, 3.0]})
    assert mark_models_at_chance(board, models)["model_at_chance"].tolist() == [True, False, True]


def test_a_ci_at_chance_and_an_undefined_auc_together():
    models = _models(auc=[0.55, NAN, 0.9, 0.9], auc_ci_low=[0.41, NAN, 0.8, 0.8], auc_ci_high=[0.6, NAN, 0.95, 0.95])
    row = next(models_at_chance(models).itertuples(index=False))
    assert (row.seeds, row.cis, row.auc_undefined) == ("0, 1", (("0", 0.41, 0.6),), "1")
    message = at_chance_message(row)
    assert message.startswith("model at chance: d / m (seed 0, 1) has a test AUC 95% CI that contains 0.5 (seed 0: "
                              "[0.410, 0.600]) and has an undefined test AUC for seed 1")
    assert "nan" not in message


def test_the_message_of_an_undefined_auc_shows_no_interval():
    models = _models(auc=[NAN, 0.9, 0.9, 0.9], auc_ci_low=[NAN, 0.8, 0.8, 0.8], auc_ci_high=[NAN, 0.95, 0.95, 0.95])
    (row,) = models_at_chance(models).itertuples(index=False)
    message = at_chance_message(row)
    assert "undefined test AUC for seed 0" in message and "CI" not in message and "nan" not in message


def test_without_an_auc_column_nothing_is_marked():
    models = _models(auc_ci_low=[NAN] * 4, auc_ci_high=[NAN] * 4)  # can't tell evaluated from not: leave unmarked
    assert models_at_chance(models).empty


def test_a_model_below_chance_is_marked_too():
    # a random-weights model: AUC 0.424, CI [0.372, 0.477]; d/m seed 1 and e/m above chance
    models = _models(auc=[0.424, 0.9, 0.9, 0.51], auc_ci_low=[0.372, 0.8, 0.8, 0.5],
                     auc_ci_high=[0.477, 0.95, 0.95, 0.6])
    table = models_at_chance(models)
    assert table[["dataset", "model", "seeds"]].values.tolist() == [["d", "m", "0"], ["f", "m", "0"]]  # 0.5 included
    message = at_chance_message(next(table.itertuples(index=False)))
    assert "CI that lies below 0.5 (seed 0: [0.372, 0.477])" in message
    board = pd.DataFrame({"dataset": ["d", "e", "f"], "model": "m", "mean": [1.0, 2.0, 3.0]})
    assert mark_models_at_chance(board, models)["model_at_chance"].tolist() == [True, False, True]


def test_a_multilabel_class_at_chance_is_marked_under_a_macro_auc_that_is_not():
    """A held-out review: multi-label leaderboards are per class, but only the macro CI decided, so
    a class at chance (its own CI containing 0.5) under a good macro AUC was never marked."""
    from faithbench.models.training import auc_ci, class_auc_cis, multilabel_metrics

    torch.manual_seed(0)
    y = (torch.rand(200, 2) > 0.5).long()
    logits = torch.randn(200, 2) + y * torch.tensor([3.0, 0.0])  # nodule learned, cavity not
    metrics = multilabel_metrics(logits, y, ("nodule", "cavity"))
    prob = logits.sigmoid().numpy()
    assert (metrics["auc_ci_low"], metrics["auc_ci_high"]) == auc_ci(prob, y.numpy())  # the same resamples
    cis = class_auc_cis(prob, y.numpy())
    assert [(metrics[f"auc_ci_low_{c}"], metrics[f"auc_ci_high_{c}"]) for c in ("nodule", "cavity")] == cis
    assert metrics["auc_ci_low"] > 0.5 and cis[0][0] > 0.5 and cis[1][0] <= 0.5 <= cis[1][1]
    models = pd.DataFrame([{"dataset": "d", "model": "m", "seed": 0, "auc": metrics["auc"], **{
        k: v for k, v in metrics.items() if k.startswith("auc_ci")}}])
    (row,) = models_at_chance(models).itertuples(index=False)
    assert row.model == "m (class cavity)" and at_chance_message(row).startswith(
        f"model at chance: d / m (class cavity) (seed 0) has a test AUC 95% CI that contains 0.5 (seed 0: "
        f"[{cis[1][0]:.3f}, {cis[1][1]:.3f}])")
    board = pd.DataFrame({"dataset": "d", "model": "m", "class": ["nodule", "cavity"], "mean": [1.0, 2.0]})
    assert mark_models_at_chance(board, models)["model_at_chance"].tolist() == [False, True]


def test_a_multilabel_class_absent_from_the_test_split_is_marked():
    """A held-out review: class c had no positive test sample (AUC and CI NaN), was not marked and its
    rows kept their significance stars; the macro AUC averaged the two other classes."""
    from faithbench.models.training import multilabel_metrics

    g = torch.Generator().manual_seed(0)
    y = (torch.rand(60, 3, generator=g) > 0.5).long()
    y[:, 2] = 0  # class c absent
    logits = torch.randn(60, 3, generator=g) + 4 * y
    metrics = multilabel_metrics(logits, y, ("a", "b", "c"))
    assert np.isnan(metrics["auc_c"]) and np.isnan(metrics["auc_ci_low_c"])
    assert metrics["auc"] == pytest.approx((metrics["auc_a"] + metrics["auc_b"]) / 2)
    models = pd.DataFrame([{"dataset": "d", "model": "m", "seed": 0, **{
        k: v for k, v in metrics.items() if k.startswith("auc")}}])
    (row,) = models_at_chance(models).itertuples(index=False)
    assert (row.model, row.auc_undefined, row.cis) == ("m (class c)", "0", ())
    assert "has an undefined test AUC for seed 0" in at_chance_message(row)
    board = pd.DataFrame({"dataset": "d", "model": "m", "class": ["a", "b", "c"], "mean": [1.0, 2.0, 3.0]})
    assert mark_models_at_chance(board, models)["model_at_chance"].tolist() == [False, False, True]
    # without the per-class AUC column (an older table), a NaN CI decides
    older = models.drop(columns=["auc_a", "auc_b", "auc_c"])
    assert mark_models_at_chance(board, older)["model_at_chance"].tolist() == [False, False, True]


def test_each_checkpoint_at_chance_shows_its_own_ci_and_its_own_verdict():
    """A held-out review: seeds 0 and 1 of weak_net had [0.482, 0.645] and [0.458, 0.619]; the warning
    printed [0.458, 0.645], an interval of no checkpoint, and decided 'contains' on it."""
    models = pd.DataFrame({"dataset": "d", "model": "m", "seed": [0, 1, 2], "auc": [0.56, 0.54, 0.42],
                           "auc_ci_low": [0.482, 0.458, 0.35], "auc_ci_high": [0.645, 0.619, 0.49]})
    (row,) = models_at_chance(models).itertuples(index=False)
    assert row.cis == (("0", 0.482, 0.645), ("1", 0.458, 0.619), ("2", 0.35, 0.49))
    message = at_chance_message(row)
    assert ("has a test AUC 95% CI that contains 0.5 (seed 0: [0.482, 0.645]; seed 1: [0.458, 0.619]) and has a "
            "test AUC 95% CI that lies below 0.5 (seed 2: [0.350, 0.490])") in message
    assert "[0.350, 0.645]" not in message and "[0.458, 0.645]" not in message


def test_a_checkpoint_predicting_one_class_is_warned_of_but_not_marked():
    """A held-out review: weak_net predicted class 0 for every sample (accuracy 0.514), AUC CI [0.557,
    0.660] above chance: nothing said so."""
    models = pd.DataFrame({"dataset": "d", "model": ["m", "m", "k"], "seed": [0, 1, 0], "accuracy": [0.514, 0.9, 0.5],
                           "auc": [0.6, 0.9, 0.6], "auc_ci_low": [0.557, 0.8, 0.55], "auc_ci_high": [0.66, 0.95, 0.65],
                           "predicted_classes": [1, 2, 1]})
    table = single_class_models(models)
    assert table.values.tolist() == [["d", "k", "0", "0.500"], ["d", "m", "0", "0.514"]]
    assert models_at_chance(models).empty  # the marking rule is the AUC CI's, unchanged
    (message, _) = model_warnings(models)
    assert message.startswith("model predicts one class: d / k (seed 0, test accuracy 0.500) predicts the same class")
    assert single_class_models(models.drop(columns="predicted_classes")).empty  # cached before the column: none


def test_a_multi_class_class_never_learned_or_absent_is_warned_of():
    """A held-out review (helper 126): the at-chance rule read the macro AUC only, so a class the model never
    learned (its own AUC 0.306, CI [0.077, 0.600]) under a macro CI [0.870, 0.944], and a class absent from
    the test split, went without a word. models.csv has each class's one-vs-rest AUC and CI (more than two
    classes), and the warnings name them."""
    from sklearn.metrics import roc_auc_score

    from faithbench.models.training import classification_metrics
    from faithbench.stats.chance import weak_class_messages

    rng = np.random.default_rng(0)
    y = torch.tensor(np.repeat(np.arange(4), 10))
    logits = torch.tensor(rng.normal(size=(40, 5)), dtype=torch.float32)
    logits[np.arange(40), y] += 3.0  # classes a-d learned, e has no test sample
    logits[y == 2, 2] -= 6.0  # ... but c is not
    metrics = classification_metrics(logits, y, ("a", "b", "c", "d", "e"))
    prob = logits.softmax(-1).numpy()
    for c, name in enumerate("abcd"):
        assert metrics[f"ovr_auc_{name}"] == pytest.approx(roc_auc_score(y.numpy() == c, prob[:, c]))
        assert metrics[f"ovr_n_{name}"] == 10
    assert metrics["ovr_n_e"] == 0 and np.isnan(metrics["ovr_auc_e"]) and metrics["auc_ci_low"] > 0.5
    models = pd.DataFrame([{"dataset": "blood", "model": "cnn", "seed": 0, **metrics},
                           {"dataset": "other", "model": "cnn", "seed": 0, "auc": 0.9, "auc_ci_low": 0.8}])
    messages = weak_class_messages(models)
    assert len(messages) == 2 and "blood / cnn (seed 0), class c has a one-vs-rest test AUC 95% CI [" in messages[0]
    assert messages[1] == ("class without test samples: blood / cnn (seed 0), class e has none, so the macro test "
                           "AUC leaves it out")
    assert model_warnings(models)[-2:] == messages
    assert not any(k.startswith("ovr_") for k in classification_metrics(logits[:, :2], y % 2, ("a", "b")))


def test_a_model_no_better_than_the_majority_class_is_warned_of():
    """Helper 130: a shortcut model with accuracy 0.480 (AUC CI [0.668, 0.761], both classes predicted) had no
    warning, and 10 of its 16 maps explained 'normal' on lesion images."""
    from faithbench.models.training import classification_metrics
    from faithbench.stats.chance import majority_messages

    y = torch.tensor([0] * 13 + [1] * 12)  # majority 13/25 = 0.52
    logits = torch.zeros(25, 2)  # ranks well (AUC 0.86), thresholds badly: 2 normals and 1 lesion called lesion
    logits[:13, 1] = torch.tensor([*torch.linspace(-3, -2, 11).tolist(), 0.5, 0.6])
    logits[13:, 1] = torch.tensor([*torch.linspace(-1.5, -0.5, 11).tolist(), 0.7])
    metrics = classification_metrics(logits, y)
    assert metrics["majority"] == pytest.approx(0.52) and metrics["predicted_classes"] == 2
    assert metrics["accuracy"] <= 0.52 and metrics["auc"] > 0.5
    models = pd.DataFrame([{"dataset": "shortcut", "model": "cnn", "seed": 0, **metrics},
                           {"dataset": "plain", "model": "cnn", "seed": 0, "accuracy": 0.99, "majority": 0.5,
                            "predicted_classes": 2},
                           {"dataset": "one", "model": "cnn", "seed": 0, "accuracy": 0.5, "majority": 0.5,
                            "predicted_classes": 1}])  # warned of as predicting one class, not twice
    assert majority_messages(models) == [
        f"model no better than the majority class: shortcut / cnn (seed 0) has a test accuracy of "
        f"{metrics['accuracy']:.3f}, at most 0.520, the share of the test split's most frequent class; under target: "
        "predicted many of its maps explain a class other than the label (strata.csv breaks the scores down by "
        "explained class)"]
    assert majority_messages(models)[0] in model_warnings(models)
    assert majority_messages(models.drop(columns="majority")) == []  # cached before the column


def test_a_ci_left_undefined_for_too_few_test_samples_is_at_chance_naming_the_counts():
    """A fuzzing review (clifuzz5 F6): 1 test image per class gave AUC 1.0, CI [1.0, 1.0], not flagged. The
    CI is now NaN (fewer than 5 of a class, ``auc_ci_min_class_n``) and the model at chance with the reason."""
    models = _models(auc=[1.0, 0.9, 0.9, 0.9], auc_ci_low=[NAN, 0.8, NAN, NAN], auc_ci_high=[NAN, 0.95, NAN, NAN],
                     auc_ci_min_class_n=[1, 40, 4, NAN])  # f/m: cached before the column, not marked
    table = models_at_chance(models)
    assert table[["dataset", "seeds", "ci_too_few"]].values.tolist() == [["d", "0", "seed 0: 1"],
                                                                          ["e", "0", "seed 0: 4"]]
    assert at_chance_message(next(table.itertuples(index=False))) == (
        "model at chance: d / m (seed 0) has too few test samples of a class for a test AUC CI (the smallest "
        "class's samples: seed 0: 1; at least 5 of each are needed) and an exact test (Mann-Whitney; more than two "
        "classes: label permutations of the macro AUC) does not show it above chance (one-sided p >= 0.05, "
        "`auc_exact_p`); its leaderboard rows are marked model_at_chance and get no significance marks")
    board = pd.DataFrame({"dataset": ["d", "e", "f"], "model": "m", "mean": [1.0, 2.0, 3.0]})
    assert mark_models_at_chance(board, models)["model_at_chance"].tolist() == [True, True, False]


def test_too_few_for_a_ci_but_shown_above_chance_by_the_exact_test_is_not_at_chance():
    """A diff review: every binary model on kermany_cxr40's 8-image test split (4 + 4) was marked at chance
    under the 5-per-class rule, a perfect ranking too. The exact one-sided Mann-Whitney p of a perfect 4 + 4
    ranking is 1 / C(8, 4) = 1/70 < 0.05, so that model is not at chance; 1 + 1 (p 0.5) and 3 + 3 (1/20) are."""
    from faithbench.models.auc import auc_exact_p

    def exact(n: int) -> float:
        return auc_exact_p(np.arange(2 * n, dtype=float), np.repeat([0, 1], n))  # positives score highest

    assert exact(4) == pytest.approx(1 / 70) and exact(1) == pytest.approx(0.5) and exact(3) == pytest.approx(0.05)
    # tied scores (a diff review): the exact U distribution without ties gave 0.044; of the 45 ways to pick the
    # 2 positives among these 10 scores, 3 reach the observed U = 15 (mid-ranks), so the tie-aware p is 3/45
    tied = auc_exact_p(np.array([2.0, 2, 0, 0, 0, 0, 0, 1, 1, 2]), np.repeat([1, 0], [2, 8]))
    assert tied == pytest.approx(3 / 45)
    models = pd.DataFrame({"dataset": ["d", "e", "f", "g"], "model": "m", "seed": 0, "auc": 1.0, "auc_ci_low": NAN,
                           "auc_ci_high": NAN, "auc_ci_min_class_n": [4, 1, 3, 4],
                           "auc_exact_p": [exact(4), exact(1), exact(3), NAN]})
    table = models_at_chance(models)  # NaN p (no column in an older models.csv): still marked
    assert table[["dataset", "ci_too_few"]].values.tolist() == [["e", "seed 0: 1"], ["f", "seed 0: 3"],
                                                                 ["g", "seed 0: 4"]]
    message = at_chance_message(next(table.itertuples(index=False)))
    assert "(Mann-Whitney; more than two classes: label permutations of the macro AUC) does not show it" in message


def test_exact_p_of_a_class_of_one_sample_with_tied_scores():
    """A diff review: with ties, scipy's permutation_test refuses a group of one sample, and a multi-label
    checkpoint (constant scores, a class with 1 positive) failed every cell. One sample's U depends only on its
    midrank, equally likely at each of the n places: p = share of the n midranks at least as favourable."""
    from faithbench.models.auc import auc_exact_p
    from faithbench.models.training import classification_metrics, multilabel_metrics

    one_pos = np.array([1, 0, 0, 0])
    assert auc_exact_p(np.array([3.0, 1, 1, 0]), one_pos) == pytest.approx(1 / 4)  # ranked first of 4
    assert auc_exact_p(np.array([1.0, 1, 0, 2]), one_pos) == pytest.approx(3 / 4)  # U = 1.5 of places 0, 1.5, 1.5, 3
    assert auc_exact_p(np.array([1.0, 1, 1, 1]), one_pos) == 1.0
    assert auc_exact_p(np.array([2.0, 1, 1, 0]), 1 - one_pos) == 1.0  # the one negative scores highest
    assert auc_exact_p(np.array([0.0, 2, 2, 3]), 1 - one_pos) == pytest.approx(1 / 4)  # ... lowest
    assert auc_exact_p(np.array([1.0, 1, 0, 2]), 1 - one_pos) == pytest.approx(3 / 4)  # tied with a positive
    y = torch.tensor([[1, 0], [0, 0], [1, 0], [0, 1], [1, 0], [0, 0], [1, 0], [0, 0]])
    metrics = multilabel_metrics(torch.zeros(8, 2), y, ("a", "b"))  # a constant model
    assert (metrics["auc_ci_min_class_n_b"], metrics["auc_exact_p_b"]) == (1, 1.0)
    binary = classification_metrics(torch.zeros(8, 2), y[:, 1], ("neg", "b"))
    assert binary["auc_exact_p"] == 1.0


def test_a_multilabel_class_of_few_positives_gets_no_ci_and_is_at_chance_as_binary_data_would_be():
    """A held-out review: class b with 1 positive of 8, ranked first, got the CI [1.0, 1.0] and no mark,
    where the same scores as a binary model got no CI (fewer than 5 of a class) and, with the exact
    p 1/8, were at chance. Class a's 4 + 4 perfect ranking (p 1/70) is not at chance, as in binary data."""
    from faithbench.models.training import classification_metrics, multilabel_metrics

    y = torch.tensor([[1, 1], [0, 0], [1, 0], [0, 0], [1, 0], [0, 0], [1, 0], [0, 0]])
    za = torch.tensor([3.0, -3, 2, -2, 2.5, -1, 1.5, -2.5])
    zb = torch.tensor([2.0, -1, -1.5, -2, -0.5, -1.2, -0.8, -0.3])
    metrics = multilabel_metrics(torch.stack([za, zb], 1), y, ("a", "b"))
    binary = classification_metrics(torch.stack([torch.zeros(8), zb], 1), y[:, 1], ("neg", "b"))
    assert metrics["auc_b"] == 1.0 and np.isnan(metrics["auc_ci_low_b"]) and np.isnan(metrics["auc_ci_high_b"])
    assert (metrics["auc_ci_min_class_n_b"], metrics["auc_exact_p_b"]) == (1, pytest.approx(1 / 8))
    assert metrics["auc_exact_p_b"] == binary["auc_exact_p"] and binary["auc_ci_min_class_n"] == 1
    assert (metrics["auc_ci_min_class_n_a"], metrics["auc_exact_p_a"]) == (4, pytest.approx(1 / 70))
    models = pd.DataFrame([{"dataset": "d", "model": "m", "seed": 0, **metrics}])
    (row,) = models_at_chance(models).itertuples(index=False)
    assert (row.model, row.ci_too_few, row.cis) == ("m (class b)", "seed 0: 1", ())
    assert "(one-sided p >= 0.05, `auc_exact_p_b`)" in at_chance_message(row)
    board = pd.DataFrame({"dataset": "d", "model": "m", "class": ["a", "b"], "mean": [1.0, 2.0]})
    assert mark_models_at_chance(board, models)["model_at_chance"].tolist() == [False, True]
    # with 5 of each side the class gets its CI and no exact p
    many = multilabel_metrics(torch.tensor([[2.0], [1], [3], [4], [5], [-1], [-2], [-3], [-4], [-5]]),
                              torch.tensor([[1]] * 5 + [[0]] * 5), ("c",))
    assert (many["auc_ci_low_c"], many["auc_ci_min_class_n_c"]) == (1.0, 5) and "auc_exact_p_c" not in many


def test_beats_random_is_false_on_the_rows_of_a_class_at_chance():
    """A held-out review: leaderboard.csv kept beats_random True on the rows of class c, marked at chance,
    while the rendered tables withheld the mark. p_vs_random keeps the test's p; an empty one stays empty."""
    models = pd.DataFrame([{"dataset": "d", "model": "m", "seed": 0, "auc": 0.9, "auc_ci_low": 0.8,
                            "auc_ci_high": 0.95, "auc_a": 0.9, "auc_ci_low_a": 0.8, "auc_ci_high_a": 0.95,
                            "auc_c": NAN, "auc_ci_low_c": NAN, "auc_ci_high_c": NAN}])
    board = pd.DataFrame({"dataset": "d", "model": "m", "class": ["a", "c", "c"], "explainer": ["g", "g", "s"],
                          "p_vs_random": [0.01, 0.01, NAN], "beats_random": [True, True, None],
                          "p_worse_than_random": [0.02, 0.02, NAN], "worse_than_random": [True, True, None]})
    marked = mark_models_at_chance(board, models)
    assert marked["model_at_chance"].tolist() == [False, True, True]
    for flag, p in (("beats_random", "p_vs_random"), ("worse_than_random", "p_worse_than_random")):  # * and °
        assert marked[flag].tolist()[:2] == [True, False] and pd.isna(marked[flag].iloc[2])
        assert marked[p].tolist()[:2] == [board[p][0]] * 2


def test_the_message_names_the_exact_p_column_of_the_row_not_one_parsed_from_the_model_label():
    """A model whose own label ends in "(class a)" is no multi-label class: its message names `auc_exact_p`."""
    models = pd.DataFrame({"dataset": ["d"], "model": ["net (class a)"], "seed": 0, "auc": 1.0, "auc_ci_low": NAN,
                           "auc_ci_high": NAN, "auc_ci_min_class_n": [1], "auc_exact_p": [0.5]})
    (row,) = models_at_chance(models).itertuples(index=False)
    assert row.exact_p == "auc_exact_p" and "(one-sided p >= 0.05, `auc_exact_p`)" in at_chance_message(row)


def test_a_test_auc_far_below_half_says_the_classes_may_be_swapped():
    """Held-out review newuser13: labels normal/lesion without classes sort to lesion = 0, so a model trained
    with lesion = 1 scored accuracy 0.0 and AUC 0.0, and was only called no better than the majority class."""
    from faithbench.models.training import classification_metrics
    from faithbench.stats.chance import majority_messages

    y = torch.tensor([0] * 4 + [1] * 4)
    logits = torch.zeros(8, 2)
    logits[:, 1] = torch.tensor([2.0, 3, 4, 5, -2, -3, -4, -5])  # every class the wrong way round
    metrics = classification_metrics(logits, y)
    assert metrics["auc"] == pytest.approx(0.0) and metrics["accuracy"] == pytest.approx(0.0)
    weak = {"accuracy": 0.4, "majority": 0.5, "predicted_classes": 2}
    models = pd.DataFrame([{"dataset": "d", "model": "m", "seed": 0, **metrics},
                           {"dataset": "e", "model": "m", "seed": 0, **weak, "auc": 0.26},
                           {"dataset": "f", "model": "m", "seed": 0, **weak}])  # no auc column value: no hint
    messages = majority_messages(models)
    assert messages[0] == (
        "model no better than the majority class: d / m (seed 0) has a test accuracy of 0.000, at most 0.500, the "
        "share of the test split's most frequent class; under target: predicted many of its maps explain a class "
        "other than the label (strata.csv breaks the scores down by explained class); its test AUC of 0.000, far "
        "below 0.5, ranks the classes the wrong way round, as a model whose classes are swapped does: check that "
        "the dataset's classes are in the order of the model's outputs (classes:; without it, class names are "
        "sorted)")
    assert len(messages) == 3 and not any("swapped" in m for m in messages[1:])
