"""How ``longitudinal_folder`` reads its labels CSV ``patient_id,date,path,label``: one row a visit,
each row checked as ``folder`` checks its rows (:mod:`faithbench.datasets.paths`), and refused by
its name where the visit file is of an image format the reader does not read."""

from __future__ import annotations

import csv
import datetime as dt
import os
from pathlib import Path

from faithbench.datasets.images import unread_format
from faithbench.datasets.paths import DataError, csv_date, csv_image, csv_row_problem

Visit = tuple[str, dt.date, Path, str]  # patient id, date, image, label (as written, stripped)
COLUMNS = ("patient_id", "date", "path", "label")


def read_visit_rows(folder: Path, csv_path: Path, lines: list[int] | None = None) -> list[Visit]:
    """The visits of a labels CSV (``utf-8-sig``: Excel's "CSV UTF-8" has a byte-order mark), in
    its row order. Refused with one line naming the line: a missing column, a blank or extra field, an
    image outside ``folder`` or not found, one named twice (one row per image, one patient per image),
    a date that is no ISO ``YYYY-MM-DD``, and a file of a format ``folder``'s reader cannot open, known by
    its name (:func:`~faithbench.datasets.images.unread_format`: ``.nii.gz``, NRRD, …; a held-out review: a
    NIfTI visit passed validate and failed the run). ``lines``, when given, receives each row's line (for
    :func:`label_indices`)."""
    rows: list[Visit] = []
    with csv_path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not set(COLUMNS) <= set(reader.fieldnames):
            raise DataError(f"{csv_path}: expected columns {','.join(COLUMNS)}, got {reader.fieldnames}")
        seen: dict[str, int] = {}  # image (real path) -> its line
        for row in reader:
            line = reader.line_num  # the file's line: blank lines count (enumerate was 1 short after one)
            if problem := csv_row_problem(row, COLUMNS):
                raise DataError(f"{csv_path}: line {line}: {problem}")
            img = csv_image(folder, row["path"], csv_path, line)
            if (first := seen.setdefault(os.path.realpath(img), line)) != line:
                raise DataError(f"{csv_path}: line {line}: the image of line {first} again ({img.name}): one row "
                                "per image")
            if problem := unread_format(img, row["path"], "longitudinal_folder"):
                raise DataError(f"{csv_path}: line {line}: {problem}")
            date = csv_date(row["date"], csv_path, line)
            rows.append((row["patient_id"].strip(), date, img, row["label"].strip()))
            if lines is not None:
                lines.append(line)
    if not rows:
        raise DataError(f"{csv_path}: no rows")
    return rows


def label_indices(labels: list[str], names: tuple[str, ...], csv_path: Path, lines: list[int]) -> list[int]:
    """Each visit's class index: its label's place in ``names``, or a numeric label (ASCII digits) below
    their count, as in ``folder``; any other label is refused with one line naming the CSV's line (a
    held-out review: it named the CSV only, while every other refusal of this CSV names its line)."""
    out: list[int] = []
    for label, line in zip(labels, lines, strict=True):
        if label in names:
            out.append(names.index(label))
        elif label.isascii() and label.isdigit() and int(label) < len(names):
            out.append(int(label))
        else:
            raise DataError(f"{csv_path}: line {line}: label {label!r} is not one of the classes {names}")
    return out


__all__ = ["COLUMNS", "Visit", "label_indices", "read_visit_rows"]
