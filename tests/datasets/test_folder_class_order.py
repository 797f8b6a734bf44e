"""The order of ``classes`` names the outputs only (held-out review newuser13, D1): ``folder`` and
``longitudinal_folder`` drew each class's shuffle from one generator in class-index order, so
``classes: [normal, lesion]`` moved 6 of the 8 test images of ``[lesion, normal]`` to train. The
classes are now drawn in sorted-name order (numeric labels by index); the ids pinned below are the
old code's without ``classes``, which must stay."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from PIL import Image

from faithbench.datasets.folder import FolderDataset
from faithbench.datasets.folder_split import draw_ranks
from faithbench.datasets.longitudinal import LongitudinalFolder

FRACTIONS = (0.5, 0.17, 0.33)


@pytest.fixture()
def root(tmp_path):
    """24 8x8 PNGs img00..img23 and four CSVs: two.csv (``lesion`` every third image, else ``normal``,
    one patient each), three.csv (``b``, ``a``, ``c`` in turn), num.csv (indices 0, 1, 2, 3, 4, 10 in
    turn: ``class_10`` sorts before ``class_2`` by name) and visits.csv (12 patients of 2 visits,
    labels ``10`` and ``2`` by patient in turn)."""
    (tmp_path / "img").mkdir()
    two, three, num = ["path,label,patient_id"], ["path,label"], ["path,label"]
    visits = ["patient_id,date,path,label"]
    for i in range(24):
        Image.fromarray(np.full((8, 8), 10 * i, np.uint8)).save(tmp_path / "img" / f"img{i:02d}.png")
        two.append(f"img{i:02d}.png,{'normal' if i % 3 else 'lesion'},p{i:02d}")
        three.append(f"img{i:02d}.png,{'bac'[i % 3]}")
        num.append(f"img{i:02d}.png,{[0, 1, 2, 3, 4, 10][i % 6]}")
        visits.append(f"q{i // 2:02d},2021-0{i % 2 + 1}-15,img{i:02d}.png,{['10', '2'][(i // 2) % 2]}")
    for name, lines in (("two", two), ("three", three), ("num", num), ("visits", visits)):
        (tmp_path / f"{name}.csv").write_text("\n".join(lines) + "\n")
    return tmp_path


def _ids(root, labels, split="test", **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = FolderDataset(split, path="img", labels=labels, size=8, root=str(root), fractions=FRACTIONS, **kw)
    return [ds[i].id[3:5] for i in range(len(ds))]


def test_draw_ranks_follow_names_and_written_indices_not_the_class_index():
    # classes [normal, lesion]: lesion (index 1) is drawn first, as without classes (sorted names)
    assert draw_ranks([("normal", 0), ("lesion", 1), ("normal", 0)], ("normal", "lesion")) == {1: 0, 0: 1}
    assert draw_ranks([("normal", 1), ("lesion", 0)], ("lesion", "normal")) == {0: 0, 1: 1}
    # numeric labels (class_0 .. class_10): by index, not by name ('class_10' < 'class_2')
    names = tuple(f"class_{i}" for i in range(11))
    assert draw_ranks([("10", 10), ("2", 2), ("0", 0)], names) == {0: 0, 2: 1, 10: 2}
    # indices written with named classes keep their index order whatever the names
    assert draw_ranks([("1", 1), ("0", 0)], ("z", "a")) == {0: 0, 1: 1}


def test_the_default_splits_are_the_old_codes(root):
    # pinned from the code before the fix (folder version 7): without classes nothing moves
    assert _ids(root, "two.csv") == ["09", "23", "07", "21", "11", "22", "18", "19"]
    assert _ids(root, "two.csv", n=4) == ["09", "23", "07", "21"]
    assert _ids(root, "three.csv") == ["10", "23", "06", "08", "21", "22", "18", "19", "05"]
    assert _ids(root, "num.csv") == ["15", "05", "20", "10", "13", "18"]


def test_the_order_of_classes_moves_no_image(root):
    default = {s: _ids(root, "two.csv", s) for s in ("train", "val", "test")}
    for classes in (["lesion", "normal"], ["normal", "lesion"]):  # was: test 12, 10, 07, 00, 01, 23, 03, 19
        assert {s: _ids(root, "two.csv", s, classes=classes) for s in ("train", "val", "test")} == default
        assert _ids(root, "two.csv", n=4, classes=classes) == ["09", "23", "07", "21"]  # the subset too
    for classes in itertools.permutations("abc"):
        assert _ids(root, "three.csv", classes=list(classes)) == ["10", "23", "06", "08", "21", "22", "18", "19", "05"]
    # numeric labels: classes only renames the indices
    assert _ids(root, "num.csv", classes=[f"k{i}" for i in range(11)]) == ["15", "05", "20", "10", "13", "18"]


def test_longitudinal_folder_ignores_the_order_of_classes(root):
    def entries(**kw):
        ds = LongitudinalFolder("test", path="img", labels="visits.csv", size=8, root=str(root),
                                fractions=FRACTIONS, **kw)
        return [f"{pid}:{k}" for pid, k in ds.entries]

    pinned = ["q10:0", "q05:0", "q06:0", "q07:1", "q06:1", "q05:1", "q07:0", "q10:1"]  # the old code's default
    assert entries() == pinned
    assert entries(classes=["10", "2"]) == pinned
    assert entries(classes=["2", "10"]) == pinned  # was: q11, q04, q07, q06
