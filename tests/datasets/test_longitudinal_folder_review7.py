"""Held-out review temporal7 of ``longitudinal_folder``: a class of 1-2 patients, all in train, was not warned
of as ``folder`` warns of it (D1); a label outside ``classes`` was refused without its CSV line (O2); the split
counts are largest remainders as ``folder``'s (D2: 6 patients a class at [0.5, 0.25, 0.25] were 2/2/2)."""

from __future__ import annotations

import re
import warnings
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from faithbench.cli import main
from faithbench.datasets import DataError, DataWarning
from faithbench.datasets.folder import FolderDataset
from faithbench.datasets.longitudinal import LongitudinalFolder

HALVES = (0.5, 0.25, 0.25)


def _write(tmp_path, labels: dict[str, str], visits: int = 2) -> None:
    """Patients ``labels`` (id -> label) of ``visits`` 12x12 PNG visits each; visits.csv (longitudinal_folder)
    and flat.csv (the same rows as ``folder``'s path,label,patient_id)."""
    (tmp_path / "img").mkdir()
    rows, flat = ["patient_id,date,path,label"], ["path,label,patient_id"]
    for k, (pid, label) in enumerate(labels.items()):
        for v in range(visits):
            name = f"{pid}_v{v}.png"
            Image.fromarray(np.full((12, 12), 7 * k + v, dtype=np.uint8)).save(tmp_path / "img" / name)
            rows.append(f"{pid},2021-0{v + 1}-15,{name},{label}")
            flat.append(f"{name},{label},{pid}")
    (tmp_path / "visits.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "flat.csv").write_text("\n".join(flat) + "\n")


def _lf(tmp_path, split="test", **kw):
    kw = {"fractions": HALVES, **kw}
    return LongitudinalFolder(split, path="img", labels="visits.csv", size=12, root=str(tmp_path), **kw)


def _patients(ds) -> list[str]:
    return sorted({ds[i].patient_id for i in range(len(ds))})


RARE = {**{f"n{i}": "neg" for i in range(4)}, **{f"p{i}": "pos" for i in range(4)}, "r0": "rare", "r1": "rare"}


def test_a_class_of_two_patients_is_warned_of_as_folder_warns_of_it(tmp_path):
    """D1: the review's lf_rare (2 'rare' patients) validated and ran without a word; ``folder`` on the same rows
    warned. Now both give the same line (but for the CSV's name), kept for the manifest, from every split."""
    _write(tmp_path, RARE)
    tail = ("class 'rare' (2 patients) has too few patients for one in each split (3 or more): all in train, so the "
            "test split holds no image of it; fractions [0, 0, 1] evaluate fixed weights on every image")
    expected = f"{tmp_path / 'visits.csv'}: {tail}"
    for split in ("train", "val", "test"):
        with pytest.warns(DataWarning, match=f"^{re.escape(expected)}$"):
            ds = _lf(tmp_path, split)
        assert expected in ds.data_warnings  # a run records it in manifest.json
        assert ("r0" in _patients(ds) and "r1" in _patients(ds)) == (split == "train")
    with pytest.warns(DataWarning, match=f"^{re.escape(str(tmp_path / 'flat.csv'))}: {re.escape(tail)}$"):
        FolderDataset("test", path="img", labels="flat.csv", size=12, fractions=HALVES, root=str(tmp_path))


def test_no_warning_with_three_patients_a_class_or_a_train_fraction_of_0(tmp_path):
    _write(tmp_path, {**RARE, "r2": "rare"})
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        ds = _lf(tmp_path)
        assert ds.data_warnings == [] and "rare" in {ds.classes[ds[i].label] for i in range(len(ds))}
        whole = _lf(tmp_path, fractions=(0, 0, 1))  # every image in test: nothing to warn of
    assert len(_patients(whole)) == 11


def test_validate_prints_the_warning(tmp_path, capsys):
    _write(tmp_path, RARE)
    (tmp_path / "suite.yaml").write_text(f"""name: t
seeds: [0]
samples: 2
device: cpu
datasets: [{{name: longitudinal_folder, params: {{path: img, labels: visits.csv, size: 12, seq_len: 2,
            fractions: [0.5, 0.25, 0.25], root: {tmp_path}}}}}]
models: [{{name: temporal_mlp, params: {{backbone: small_cnn, backbone_params: {{width: 2, depth: 1}},
          backbone_recipe: {{epochs: 1}}}}, recipe: {{epochs: 1}}}}]
explainers: [random]
metrics: [temporal_deletion]
""")
    code = main(["validate", str(tmp_path / "suite.yaml")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "visits.csv: class 'rare' (2 patients) has too few patients for one in each split" in err  # was silent
    assert ": ok — suite 't'" in out


@pytest.mark.parametrize("label, line", [("pos", 9), ("²", 9), ("7", 9)])
def test_a_label_outside_classes_is_refused_with_its_line(tmp_path, label, line):
    """O2: ``label 'pos' is not one of the classes ('neg', 'pso')`` named the CSV only (every other refusal of this
    CSV names its line); a superscript digit ('²'.isdigit()) raised int()'s ValueError, no DataError."""
    _write(tmp_path, {f"n{i}": "neg" for i in range(3)} | {f"s{i}": "pso" for i in range(3)})
    text = (tmp_path / "visits.csv").read_text().splitlines()
    text[line - 1] = text[line - 1].rsplit(",", 1)[0] + f",{label}"  # line 9: s1's first visit
    (tmp_path / "visits.csv").write_text("\n".join(text) + "\n")
    expected = f"{tmp_path / 'visits.csv'}: line {line}: label {label!r} is not one of the classes ('neg', 'pso')"
    with pytest.raises(DataError, match=f"^{re.escape(expected)}$"):
        _lf(tmp_path, classes=["neg", "pso"])


def test_a_numeric_label_is_its_class_index(tmp_path):
    _write(tmp_path, {f"n{i}": "0" for i in range(3)} | {f"s{i}": "1" for i in range(3)})
    every = [_lf(tmp_path, s, classes=["neg", "pos"]) for s in ("train", "val", "test")]
    labels = Counter((d[i].patient_id[0], d[i].label) for d in every for i in range(len(d)))
    assert labels == {("n", 0): 6, ("s", 1): 6}


def test_six_patients_a_class_split_3_1_2_not_2_2_2(tmp_path):
    """D2 on the review's data/lf: 6 patients a class at [0.5, 0.25, 0.25] gave train 2 + 2 of 12 patients."""
    _write(tmp_path, {f"n{i}": "neg" for i in range(6)} | {f"p{i}": "pos" for i in range(6)})
    sizes = {s: Counter(p[0] for p in _patients(_lf(tmp_path, s))) for s in ("train", "val", "test")}
    assert sizes == {"train": {"n": 3, "p": 3}, "val": {"n": 1, "p": 1}, "test": {"n": 2, "p": 2}}


def test_sizes_the_old_rounding_cut_alike_keep_the_very_same_patients(tmp_path):
    """5 'neg' (2.5 / 1.25 / 1.25: 3/1/1 both ways) and 4 'pos' (2/1/1), seed 2: the patients of each split as the
    code before this change put them (computed from it)."""
    _write(tmp_path, {f"n{i}": "neg" for i in range(5)} | {f"p{i}": "pos" for i in range(4)})
    got = {s: _patients(_lf(tmp_path, s, seed=2)) for s in ("train", "val", "test")}
    assert got == OLD_PATIENTS


OLD_PATIENTS = {"train": ["n1", "n2", "n3", "p0", "p3"], "val": ["n4", "p2"], "test": ["n0", "p1"]}


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_fractions_that_are_not_finite_are_refused_naming_them(tmp_path, bad):
    """A fuzzing review (clifuzz8 D1): fractions [0.7, 0.1, nan] passed the check (NaN compares False) and failed
    later as 'cannot convert float NaN to integer', not naming fractions."""
    from faithbench.configurable import ParameterError

    _write(tmp_path, {**{f"n{i}": "neg" for i in range(3)}, **{f"p{i}": "pos" for i in range(3)}})
    fractions = [0.7, 0.1, bad]
    with pytest.raises(ParameterError, match=re.escape(f"expected 3 non-negative fractions summing to 1, got "
                                                       f"{fractions}")):
        _lf(tmp_path, fractions=fractions)
    with pytest.raises(ParameterError, match=re.escape(f"folder: expected 3 non-negative fractions summing to 1, "
                                                       f"got {fractions}")):
        FolderDataset("test", path="img", labels="flat.csv", size=12, fractions=fractions, root=str(tmp_path))


def test_a_class_named_twice_is_refused(tmp_path):
    """A fuzzing review (clifuzz8 D2): classes ['0', '0'] were accepted by both folder datasets."""
    from faithbench.configurable import ParameterError

    _write(tmp_path, {**{f"n{i}": "neg" for i in range(3)}, **{f"p{i}": "pos" for i in range(3)}})
    want = re.escape("expected distinct class names, got ['neg', 'neg'] ('neg' twice)")
    with pytest.raises(ParameterError, match="longitudinal_folder: " + want):
        _lf(tmp_path, classes=["neg", "neg"])
    with pytest.raises(ParameterError, match="folder: " + want):
        FolderDataset("test", path="img", labels="flat.csv", size=12, classes=["neg", "neg"], root=str(tmp_path))
    assert _lf(tmp_path, classes=["neg", "pos"]).classes == ("neg", "pos")


def test_csv_lines_are_the_file_s_lines_after_a_blank_line(tmp_path):
    """A diff review: rows were numbered by enumerate, which skips the blank lines the CSV reader skips, so a bad row
    after one was named a line too early."""
    _write(tmp_path, {**{f"n{i}": "neg" for i in range(3)}, **{f"p{i}": "pos" for i in range(3)}})
    visits = (tmp_path / "visits.csv").read_text().splitlines()
    (tmp_path / "visits.csv").write_text("\n".join(visits[:3] + [""] + visits[3:] + ["zz,2021-01-15,gone.png,neg"])
                                         + "\n")
    flat = (tmp_path / "flat.csv").read_text().splitlines()
    (tmp_path / "flat.csv").write_text("\n".join(flat[:3] + [""] + flat[3:] + ["gone.png,neg,zz"]) + "\n")
    line = len(visits) + 2  # the header, the rows, the blank line, then the bad row
    with pytest.raises(DataError, match=rf"visits\.csv: line {line}: "):
        _lf(tmp_path)
    with pytest.raises(DataError, match=rf"flat\.csv: line {line}: "):
        FolderDataset("test", path="img", labels="flat.csv", size=12, fractions=HALVES, root=str(tmp_path))
