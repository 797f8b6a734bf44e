"""Each class's split counts (held-out review temporal7 D2): val and test were each rounded (half to
even) and train took the rest, so 6 patients at [0.5, 0.25, 0.25] split 2/2/2 (train 33 %). They are
now largest remainders on n x fractions (``folder`` 9, ``longitudinal_folder`` 5); where the old
rounding already gave those counts, the very same patients land in each split (pinned from the old code)."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from faithbench.datasets.folder_split import patient_split

FRACTIONS = [(0.5, 0.25, 0.25), (0.6, 0.2, 0.2), (0.7, 0.1, 0.2), (0.8, 0.1, 0.1), (0, 0.5, 0.5), (0, 0.3, 0.7),
             (0.8, 0, 0.2), (0.5, 0.5, 0), (0.34, 0.33, 0.33), (0.9, 0.05, 0.05), (0.1, 0.45, 0.45)]


def _counts(n: int, fractions, seed: int = 0) -> tuple[int, int, int]:
    where = Counter(patient_split({f"p{i}": 0 for i in range(n)}, fractions, seed).values())
    return where["train"], where["val"], where["test"]


# n, fractions, (train, val, test) by hand: the whole parts of n x fractions, the rest one each to the largest
# fractional parts (ties to test, then val, then train), then val/test of a positive fraction at least 1
HAND = [
    (6, (0.5, 0.25, 0.25), (3, 1, 2)),  # 3 / 1.5 / 1.5: one left, val and test tie -> test (old 2/2/2)
    (7, (0.6, 0.2, 0.2), (4, 1, 2)),  # 4.2 / 1.4 / 1.4 (old 5/1/1)
    (8, (0.6, 0.2, 0.2), (5, 1, 2)),  # 4.8 / 1.6 / 1.6: train .8, then test .6 (old 4/2/2)
    (10, (0.5, 0.25, 0.25), (5, 2, 3)),  # 5 / 2.5 / 2.5 (old 6/2/2)
    (12, (0.6, 0.2, 0.2), (7, 2, 3)),  # 7.2 / 2.4 / 2.4 (old 8/2/2)
    (12, (0.7, 0.1, 0.2), (8, 1, 3)),  # 8.4 / 1.2 / 2.4: train and test tie at .4 -> test (old 9/1/2)
    (14, (0.8, 0.1, 0.1), (11, 1, 2)),  # 11.2 / 1.4 / 1.4 (old 12/1/1)
    (25, (0.7, 0.1, 0.2), (17, 3, 5)),  # 17.5 / 2.5 / 5: train and val tie at .5 -> val (old 18/2/5)
    (5, (0, 0.3, 0.7), (0, 1, 4)),  # 1.5 / 3.5 (old 0/2/3)
    # the same as before
    (16, (0.1, 0.45, 0.45), (2, 7, 7)),  # 1.6 / 7.2 / 7.2: train .6 first
    (3, (0.9, 0.05, 0.05), (1, 1, 1)),  # 2.7 / .15 / .15 -> 3/0/0, then val and test one each from train
    (3, (0.8, 0, 0.2), (2, 0, 1)),  # a fraction of 0 leaves its split empty
    (8, (0.7, 0.1, 0.2), (5, 1, 2)),  # 5.6 / .8 / 1.6: val .8, then test .6 (5.6 - 5 < 1.6 - 1 in floats)
    (10, (0.7, 0.1, 0.2), (7, 1, 2)),  # 0.7 * 10 is 7.000000000000001 in floats
    (2, (0.7, 0.1, 0.2), (2, 0, 0)),  # a class of 2: all in train (warned of)
    (1, (0, 0.5, 0.5), (0, 0, 1)),  # train 0: a single patient goes to test
    (2, (0, 0.9, 0.1), (0, 1, 1)),  # 1.8 / .2 -> 2/0, then test one from val
    (4, (0, 0, 1), (0, 0, 4)),
]


@pytest.mark.parametrize("n, fractions, expected", HAND)
def test_split_counts_are_largest_remainders(n, fractions, expected):
    assert _counts(n, fractions) == expected
    assert _counts(n, fractions, seed=7) == expected  # the seed picks which patients, not how many


def _closest(n: int, fractions) -> float:
    """The least sum of squared deviations from n x fractions over every (train, val, test) summing to n."""
    return min(sum((c - f * n) ** 2 for c, f in zip((a, b, n - a - b), fractions))
               for a in range(n + 1) for b in range(n + 1 - a))


@pytest.mark.parametrize("fractions", FRACTIONS)
def test_counts_are_the_closest_to_the_shares_where_no_minimum_applies(fractions):
    """A cross-check by brute force: largest remainders minimise the squared deviation from the shares; where
    every positive share is at least 1 (no val/test minimum to enforce), the counts reach that minimum, each
    within 1 of its share. Everywhere: counts sum to n, a 0 fraction gives 0, val and test of a positive
    fraction get a patient once a class has 3 (2 with a train fraction of 0)."""
    for n in range(1, 41):
        counts = _counts(n, fractions)
        assert sum(counts) == n
        assert all(c == 0 for c, f in zip(counts, fractions) if f == 0), (n, counts)
        if fractions[0] > 0 and n < 3:
            assert counts == (n, 0, 0)
            continue
        if n > 1:  # train 0: one patient goes to test
            assert all(c >= 1 for c, f in zip(counts[1:], fractions[1:]) if f > 0), (n, counts)
        if all(f * n >= 1 for f in fractions if f > 0):
            assert all(abs(c - f * n) < 1 for c, f in zip(counts, fractions)), (n, counts)
            assert sum((c - f * n) ** 2 for c, f in zip(counts, fractions)) == pytest.approx(_closest(n, fractions))


# computed with the code before this change (git archive of main at 9716c88), sizes whose counts it already had
OLD = {
    "one_8_default": ({f"p{i}": 0 for i in range(8)}, (0.7, 0.1, 0.2), 0,
                      {"train": ["p0", "p1", "p2", "p4", "p5"], "val": ["p3"], "test": ["p6", "p7"]}),
    "one_12_halves": ({f"p{i:02d}": 0 for i in range(12)}, (0.5, 0.25, 0.25), 3,
                      {"train": ["p00", "p01", "p06", "p07", "p10", "p11"], "val": ["p02", "p04", "p05"],
                       "test": ["p03", "p08", "p09"]}),
    "two_classes": ({**{f"a{i}": 0 for i in range(10)}, **{f"b{i}": 1 for i in range(5)}}, (0.7, 0.1, 0.2), 1,
                    {"train": ["a0", "a3", "a5", "a6", "a7", "a8", "a9", "b2", "b3", "b4"], "val": ["a4", "b0"],
                     "test": ["a1", "a2", "b1"]}),
}


@pytest.mark.parametrize("case", sorted(OLD))
def test_sizes_the_old_rounding_cut_alike_keep_the_very_same_patients(case):
    groups, fractions, seed, expected = OLD[case]
    got = patient_split(groups, fractions, seed)
    assert {s: sorted(p for p in got if got[p] == s) for s in ("train", "val", "test")} == expected


def test_the_review_sizes():
    """The review's scripts/split2.py: 6 at [0.5, 0.25, 0.25] gave 2/2/2, 12 at [0.6, 0.2, 0.2] 8/2/2, 8 at
    [0.6, 0.2, 0.2] 4/2/2; each split is now within one patient of its share."""
    got = {(n, fr): _counts(n, fr) for n, fr in itertools.product((6, 8, 12), [(0.5, 0.25, 0.25), (0.6, 0.2, 0.2)])}
    assert got == {(6, (0.5, 0.25, 0.25)): (3, 1, 2), (8, (0.5, 0.25, 0.25)): (4, 2, 2),
                   (12, (0.5, 0.25, 0.25)): (6, 3, 3), (6, (0.6, 0.2, 0.2)): (4, 1, 1),
                   (8, (0.6, 0.2, 0.2)): (5, 1, 2), (12, (0.6, 0.2, 0.2)): (7, 2, 3)}
