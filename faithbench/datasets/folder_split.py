"""How ``folder`` cuts its images into splits: patients (the CSV's, a pattern's or each image),
a patient-level split stratified by class, and the errors of a split that cannot train or is empty."""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from faithbench.datasets.paths import DataError

Row = tuple[Path, str, "str | None"]  # image, label, patient id given by the CSV


def draw_ranks(labels: Iterable[tuple[str, int]], names: Sequence[str]) -> dict[int, int]:
    """Each class's place in the seeded draws of :func:`patient_split` and
    :func:`~faithbench.datasets.base.stratified_order`, from ``(label as written, class index)``
    pairs: classes written as indices (``0``, ``1``, ``10``) in numeric order, then classes written
    by name in sorted-name order. The draws share one generator, so their order decides which
    patients each class gets; in class-index order, ``classes: [normal, lesion]`` moved 6 of 8 test
    images of ``[lesion, normal]`` (the default) to train (a held-out review). Without ``classes``
    this is the class-index order (sorted names, or numeric labels' indices), so those splits stay."""
    keys: dict[int, tuple[int, int | str]] = {}
    for label, c in labels:
        key: tuple[int, int | str] = (1, names[c]) if label == names[c] else (0, c)
        keys[c] = min(keys.get(c, key), key)
    return {c: rank for rank, c in enumerate(sorted(keys, key=keys.__getitem__))}


def split_counts(n: int, fractions: tuple[float, float, float]) -> tuple[int, int, int]:
    """How many of a class's ``n`` patients go to train, val and test: largest remainders (Hamilton) on
    ``n × fractions``, each split gets the whole part of its share, the patients left over go one each to
    the largest fractional parts (ties to test, then val, then train); then val or test, of a positive
    fraction but left empty, takes one patient from the split furthest above its share. Every count is
    thus within 1 of ``n × fraction`` unless that minimum moved it. Exceptions: with a train fraction
    above 0 a class of 1 or 2 patients is all in train (:func:`few_patients` warns of it); with a train
    fraction of 0 a single patient goes to test when test has a positive fraction (every run needs a
    test split). E.g. 6 patients at
    ``[0.5, 0.25, 0.25]``: 3/1/2 (rounding val and test each and train the rest gave 2/2/2, a
    held-out review); 8 at ``[0.6, 0.2, 0.2]``: 5/1/2 (was 4/2/2)."""
    if fractions[0] > 0 and n < 3:
        return n, 0, 0
    if fractions[0] == 0 and n == 1 and fractions[2] > 0:
        return 0, 0, 1
    shares = [round(f * n, 9) for f in fractions]  # 0.7 * 10 is 7.000000000000001
    counts = [int(q) for q in shares]
    by_rest = sorted(range(3), key=lambda k: (round(shares[k] - counts[k], 9), k), reverse=True)  # 5.6 - 5 < 1.6 - 1
    for k in range(n - sum(counts)):
        counts[by_rest[k % 3]] += 1
    for k in (1, 2):  # val and test (a train fraction too small for a class is refused: check_train_patients)
        if fractions[k] > 0 and counts[k] == 0:
            donor = max((j for j in range(3) if counts[j] > 1), key=lambda j: (counts[j] - shares[j], -j))
            counts[donor] -= 1
            counts[k] += 1
    return counts[0], counts[1], counts[2]


def patient_split(groups: dict[str, int], fractions: tuple[float, float, float], seed: int) -> dict[str, str]:
    """Patient id -> split, stratified by each patient's class, the classes drawn in increasing
    order of ``groups``' values (``folder`` passes :func:`draw_ranks`, so the split does not follow
    the order of ``classes``); seeded. Each class's counts are :func:`split_counts` (largest
    remainders; ``folder`` version 9, ``longitudinal_folder`` version 5). Every class with at least
    3 patients has at least one in each split of a positive fraction; a fraction of 0 leaves its
    split empty (it took one patient of each class, a held-out review). With a train fraction above
    0, a class of 1 or 2 patients is all in train (:func:`few_patients` warns of it); with a train
    fraction of 0 every patient is in val or test, small classes and the rounding's rest too, so
    ``[0, 0, 1]`` puts every image in test (a review: a class of 2 patients vanished from it)."""
    out: dict[str, str] = {}
    rng = random.Random(seed)
    for label in sorted(set(groups.values())):
        patients = sorted(p for p, c in groups.items() if c == label)
        rng.shuffle(patients)
        n_train, n_val, _n_test = split_counts(len(patients), fractions)
        for k, p in enumerate(patients):
            out[p] = "train" if k < n_train else ("val" if k < n_train + n_val else "test")
    return out


def few_patients(groups: dict[str, int], fractions: list[float], names: tuple[str, ...], source: Path) -> str | None:
    """One warning naming the classes too small (1 or 2 patients) for a patient in each split: with a
    train fraction above 0 they are all in train, so the test split holds none of their images (a
    review: silent at the default fractions)."""
    if fractions[0] == 0 or not (fractions[1] > 0 or fractions[2] > 0):
        return None
    counts = Counter(groups.values())
    small = [f"{names[c]!r} ({k} patient{'s' * (k != 1)})" for c, k in sorted(counts.items()) if k < 3]
    if not small:
        return None
    which = f"class {small[0]} has" if len(small) == 1 else f"classes {', '.join(small)} have"
    return (f"{source}: {which} too few patients for one in each split (3 or more): all in train, so the test split "
            f"holds no image of {'it' if len(small) == 1 else 'them'}; fractions [0, 0, 1] evaluate fixed weights "
            "on every image")


SPLIT_NAMES = ("train", "val", "test")
ORDINALS = ("first", "second", "third")


def empty_split(split: str, fractions: list[float], images: int, patients: int) -> str:
    """The error of an empty split: which fraction to raise (a trained model needs a val split,
    every run a test split)."""
    k = SPLIT_NAMES.index(split)
    why = (f"fractions {fractions} give it 0" if fractions[k] == 0
           else f"fractions {fractions} give it no patient of {patients}")
    return (f"folder: split {split!r} is empty ({why}; {images} images, {patients} patients): raise its fraction "
            f"(the {ORDINALS[k]}) above 0; a trained model needs a val split, every run a test split")


def check_train_patients(groups: dict[str, int], assignment: dict[str, str], names: tuple[str, ...],
                         fractions: list[float], folder: Path) -> None:
    """Refuse ``fractions`` that leave a class with patients no training patient (its images in
    val/test only: the model never sees it; a held-out review found it silent with 3 classes)."""
    for c, name in enumerate(names):
        where = Counter(assignment[p] for p, label in groups.items() if label == c)
        if where and not where["train"]:
            split = ", ".join(f"{where[s]} {s}" for s in SPLIT_NAMES)
            raise DataError(f"folder {folder}: fractions {fractions} leave class {name!r} no training patient "
                            f"({sum(where.values())} patients: {split}): raise the train fraction (the first)")


def mixed_patients(entries: list[tuple[Path, int, str]], groups: dict[str, int], names: tuple[str, ...],
                   source: Path) -> str | None:
    """One warning naming a patient whose images carry different labels (a normal and an abnormal
    study) and its counts: the split stratifies it by its first image's label (``groups``), and each
    image keeps its own label. A held-out review found such patients accepted silently."""
    counts: dict[str, Counter[int]] = {}
    for _img, label, pid in entries:
        counts.setdefault(pid, Counter())[label] += 1
    mixed = [pid for pid, c in counts.items() if len(c) > 1]
    if not mixed:
        return None
    held = ", ".join(f"{k} {names[c]!r}" for c, k in sorted(counts[mixed[0]].items()))
    return (f"{source}: {len(mixed)} of {len(counts)} patients have images of different labels (e.g. patient "
            f"{mixed[0]!r}: {held}); such a patient goes to one split, stratified by its first image's label "
            f"({names[groups[mixed[0]]]!r} for {mixed[0]!r}), and each image keeps its own label")


def patient_ids(rows: list[Row], pattern: re.Pattern[str] | None, folder: Path) -> tuple[list[str], str | None]:
    """Each row's patient: the CSV's, else ``pattern``'s first group (or match) in the file name,
    else the image itself; and a warning when the pattern leaves some file names unmatched (a
    :class:`DataError` when it matches none: a typo silently made every image its own patient)."""
    out: list[str] = []
    missed: list[str] = []
    tried = 0
    for img, _label, given in rows:
        m = None
        if pattern is not None and not given:
            tried += 1
            m = pattern.search(img.name)
            missed += [] if m else [img.name]
        own = m.group(1) if m and m.groups() else (m.group(0) if m else img.relative_to(folder).as_posix())
        out.append(given or own)
    if pattern is None or not missed:
        return out, None
    head = f"folder: patient_pattern {pattern.pattern!r} matches"
    if len(missed) == tried:
        raise DataError(f"{head} none of the {tried} file names (e.g. {missed[0]!r}): expected a regex whose first "
                        "group, searched in the file name, is the patient id")
    return out, (f"{head} {tried - len(missed)} of {tried} file names; the other {len(missed)} (e.g. "
                 f"{missed[0]!r}) are each a patient of their own")


__all__ = ["check_train_patients", "draw_ranks", "empty_split", "few_patients", "mixed_patients", "patient_ids",
           "patient_split", "split_counts"]
