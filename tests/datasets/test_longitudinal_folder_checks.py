"""``longitudinal_folder``'s label and file-format checks (held-out review longfolder4): a label typo is
warned of as ``folder`` warns of it, a visit file of a format the reader does not read is refused by its
name at validate, and ``meta["n_visits"]`` counts the patient's visits up to the sample, not the kept ones."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from PIL import Image

from faithbench.cli import main
from faithbench.datasets import DataError, DataWarning
from faithbench.datasets.folder import FolderDataset
from faithbench.datasets.longitudinal import LongitudinalFolder

N_PATIENTS = 8


def _write(tmp_path, typo_row: int | None = None, last: str = "png") -> list[str]:
    """8 patients of 3 visits (20x20 PNGs), patients 0-3 'neg', 4-7 'pos'; row ``typo_row`` labelled 'Pos';
    patient p1's last visit a file of suffix ``last``. Writes visits.csv (longitudinal_folder) and
    flat.csv (the same rows as ``folder``'s path,label,patient_id); returns the labels in row order."""
    (tmp_path / "img").mkdir()
    rows, flat, labels = ["patient_id,date,path,label"], ["path,label,patient_id"], []
    for p in range(N_PATIENTS):
        for v in range(3):
            name = f"p{p}_v{v}." + (last if (p, v) == (1, 2) else "png")
            png = tmp_path / "img" / f"p{p}_v{v}.png"
            Image.fromarray(np.full((20, 20), 10 * p + v, dtype=np.uint8)).save(png)
            png.rename(tmp_path / "img" / name)  # the same bytes under another suffix (or none) where asked
            label = "neg" if p < 4 else "pos"
            if len(labels) == typo_row:
                label = "Pos"
            labels.append(label)
            rows.append(f"p{p},2021-0{v + 1}-15,{name},{label}")
            flat.append(f"{name},{label},p{p}")
    (tmp_path / "visits.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "flat.csv").write_text("\n".join(flat) + "\n")
    return labels


def _lf(tmp_path, split="test", **kw):
    return LongitudinalFolder(split, path="img", labels="visits.csv", size=20, fractions=(0.5, 0.25, 0.25),
                              root=str(tmp_path), **kw)


def test_a_label_typo_is_warned_of_as_folder_warns_of_it(tmp_path):
    """Review D1: one visit labelled 'Pos' among 11 'pos' made classes ('Pos', 'neg', 'pos') without a word;
    ``folder`` warned of the same labels. Now both give the same warning, naming the counts."""
    labels = _write(tmp_path, typo_row=13)  # p4's 2nd visit
    assert labels.count("Pos") == 1 and labels.count("pos") == 11 and labels.count("neg") == 12
    expected = (f"{tmp_path / 'visits.csv'}: class 'Pos' (1 image) is named like 'pos' (11 images); a typo makes a "
                "class of its own: set the dataset's classes to refuse labels that are none of them")
    with pytest.warns(DataWarning, match=f"^{re.escape(expected)}$"):
        ds = _lf(tmp_path)
    assert ds.classes == ("Pos", "neg", "pos")  # warned, not refused: the names found are still the classes
    assert expected in ds.data_warnings  # a run records it in manifest.json
    with pytest.warns(DataWarning, match="class 'Pos' \\(1 image\\) is named like 'pos' \\(11 images\\)"):
        FolderDataset("test", path="img", labels="flat.csv", size=20, fractions=(0.5, 0.25, 0.25),
                      root=str(tmp_path))  # the same rule, the same words
    # every split warns (validate builds each), and `classes` refuses the typo instead of warning
    with pytest.warns(DataWarning, match="named like 'pos'"):
        _lf(tmp_path, split="train")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        with pytest.raises(DataError, match="label 'Pos' is not one of the classes \\('neg', 'pos'\\)"):
            _lf(tmp_path, classes=["neg", "pos"])


def test_clean_labels_warn_of_nothing(tmp_path):
    _write(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        ds = _lf(tmp_path)
    assert ds.classes == ("neg", "pos") and ds.data_warnings == []


@pytest.mark.parametrize("suffix", ["nii.gz", "nii", "nrrd", "mgz", "mha", "svg"])
def test_a_visit_file_of_a_format_the_reader_does_not_read_is_refused_by_name(tmp_path, suffix):
    """Review D2: a row naming img/p08_v1.nii.gz passed validate and failed only when the run read it. It is
    now refused when the dataset is built (no image read), one line naming the CSV line and the path."""
    _write(tmp_path, last=suffix)
    line = 1 + 1 * 3 + 2 + 1  # header, p0's 3 rows, p1's 3rd row
    expected = (f"{tmp_path / 'visits.csv'}: line {line}: 'p1_v2.{suffix}' is of an image format that "
                "longitudinal_folder does not read: expected .png, .jpg, .jpeg, .bmp, .tif, .tiff, .dcm; convert it "
                "to PNG (a DICOM file: name it .dcm)")
    for split in ("train", "val", "test"):  # whichever split holds p1
        with pytest.raises(DataError, match=f"^{re.escape(expected)}$"):
            _lf(tmp_path, split=split)


@pytest.mark.parametrize("suffix", ["gif", "webp"])
def test_a_visit_pillow_opens_is_read_as_before(tmp_path, suffix):
    """A reread: the refusal also took .gif and .webp rows, which the reader opens (Pillow) and which ran before;
    only formats it cannot open are refused."""
    _write(tmp_path)
    Image.fromarray(np.full((20, 20), 12, dtype=np.uint8)).save(tmp_path / "img" / f"p1_v2.{suffix}")
    text = (tmp_path / "visits.csv").read_text().replace("p1_v2.png", f"p1_v2.{suffix}")
    (tmp_path / "visits.csv").write_text(text)
    every = [_lf(tmp_path, s) for s in ("train", "val", "test")]
    p1 = [d[i] for d in every for i in range(len(d)) if d[i].patient_id == "p1"]
    last = next(s for s in p1 if s.meta["n_visits"] == 3)
    assert round(float(last.image[0, -1, 5, 5]) * 255) == 12


def test_a_dicom_file_without_its_suffix_is_refused_and_readable_suffixes_pass(tmp_path):
    """A DICOM file without .dcm (``DICM`` after its preamble) is no PNG to the reader: refused as ``folder``'s
    scan skips it. An upper-case ``.PNG`` is a PNG and passes."""
    _write(tmp_path, last="PNG")
    every = [_lf(tmp_path, s) for s in ("train", "val", "test")]
    p1 = [d[i] for d in every for i in range(len(d)) if d[i].patient_id == "p1"]
    last = next(s for s in p1 if s.meta["n_visits"] == 3)
    assert len(p1) == 3 and round(float(last.image[0, -1, 5, 5]) * 255) == 12  # p1's 3rd visit: 10 * 1 + 2
    (tmp_path / "img" / "p1_v2.PNG").write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 64)
    (tmp_path / "img" / "p1_v2.PNG").rename(tmp_path / "img" / "p1_v2")
    text = (tmp_path / "visits.csv").read_text().replace("p1_v2.PNG", "p1_v2")
    (tmp_path / "visits.csv").write_text(text)
    with pytest.raises(DataError, match=r"line 7: 'p1_v2' is of an image format that longitudinal_folder does not "
                                        r"read"):
        _lf(tmp_path)


def test_validate_warns_of_the_typo_and_refuses_the_nifti_visit(tmp_path, capsys):
    """The command line: validate prints the typo warning and ok (exit 0); a NIfTI visit is exit 2 in one line."""
    suite = """name: t
seeds: [0]
samples: 2
device: cpu
datasets: [{name: longitudinal_folder, params: {path: img, labels: visits.csv, size: 20, seq_len: 3,
            fractions: [0.5, 0.25, 0.25], root: ROOT}}]
models: [{name: temporal_mlp, params: {backbone: small_cnn, backbone_params: {width: 2, depth: 1},
          backbone_recipe: {epochs: 1}}, recipe: {epochs: 1}}]
explainers: [random]
metrics: [temporal_deletion]
"""
    for case, kw in (("typo", {"typo_row": 13}), ("nifti", {"last": "nii.gz"})):
        here = tmp_path / case
        here.mkdir()
        _write(here, **kw)
        (here / "suite.yaml").write_text(suite.replace("ROOT", str(here)))
        code = main(["validate", str(here / "suite.yaml")])
        out, err = capsys.readouterr()
        if case == "typo":
            assert code == 0, err
            assert "class 'Pos' (1 image) is named like 'pos' (11 images)" in err
            assert ": ok — suite 't'" in out
        else:
            assert code == 2, out + err
            lines = err.strip().splitlines()
            assert len(lines) == 1 and "line 7: 'p1_v2.nii.gz' is of an image format" in lines[0], err


def test_n_visits_counts_the_patients_visits_up_to_the_sample_not_the_kept_ones(tmp_path):
    """Review note: meta["n_visits"] is 4-5 where 3 visits are kept; the docs now say which count it is."""
    (tmp_path / "img").mkdir()
    rows = ["patient_id,date,path,label"]
    for p in range(8):
        for v in range(5):
            Image.fromarray(np.full((20, 20), 20 * p + v, dtype=np.uint8)).save(tmp_path / "img" / f"p{p}_v{v}.png")
            rows.append(f"p{p},2021-0{v + 1}-01,p{p}_v{v}.png,{'ab'[p % 2]}")
    (tmp_path / "visits.csv").write_text("\n".join(rows) + "\n")
    every = [LongitudinalFolder(s, path="img", labels="visits.csv", size=20, seq_len=3,
                                fractions=(0.5, 0.25, 0.25), root=str(tmp_path)) for s in ("train", "val", "test")]
    seen = 0
    for d in every:
        for i in range(len(d)):
            s = d[i]
            v = int(s.id.rsplit("_v", 1)[1].split(".")[0])
            assert s.meta["n_visits"] == v + 1  # every visit up to this one, the truncated ones too
            assert sum(s.meta["valid"]) == min(v + 1, 3)  # the kept count
            seen += 1
    assert seen == 40
