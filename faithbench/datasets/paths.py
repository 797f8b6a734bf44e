"""Where real data lives: one setting, the environment variable ``FAITHBENCH_DATA``.

Every dataset that reads files takes a ``root`` parameter that overrides it. Files are
addressed relative to the root (``medmnist/pneumoniamnist.npz``), so a suite names no
machine-specific path and runs wherever the root points at the same files.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

ENV_VAR = "FAITHBENCH_DATA"


class DataError(ValueError):
    """Data that cannot be found or read; the message names the file, folder or setting.

    A ``ValueError`` so that suite validation reports it against the dataset's parameters.
    """


class InputDataError(ValueError):
    """Data that is there but a run cannot use: an empty split, an unreadable sample, a mask whose shape
    does not match its image. The message names the dataset, the split and the sample. Defined here, below
    the suite's validation and the runner, so that validation can raise it too
    (:class:`~faithbench.config.SuiteDataError`); :mod:`faithbench.runner.errors` re-exports it."""


class DataWarning(UserWarning):
    """Data that loads but may not be what was meant (a mask file named like no image); the
    command line prints it as one line, once."""


OFFLINE_VAR = "FAITHBENCH_OFFLINE"


TRUE_VALUES = ("1", "true", "yes", "on")  # huggingface_hub's own set for HF_HUB_OFFLINE
FALSE_VALUES = ("", "0", "false", "no", "off")


def env_true(name: str) -> bool:
    """``$name`` set to 1/true/yes/on, any case and blanks around: the one reading of ``FAITHBENCH_OFFLINE``
    (a review: MedMNIST took 1/true/yes and the hub weights also on, so ``on`` downloaded data offline)."""
    return os.environ.get(name, "").strip().lower() in TRUE_VALUES


def env_problem(name: str) -> str | None:
    """One line where ``$name`` is set to neither a true nor a false word, else None."""
    value = os.environ.get(name, "")
    if value.strip().lower() in TRUE_VALUES + FALSE_VALUES:
        return None
    return f"${name}: expected 1, true, yes or on (or 0, false, no, off, empty: unset), got {value!r}"


def downloads_allowed() -> bool:
    """False when ``$FAITHBENCH_OFFLINE`` is true (:func:`env_true`): a loader then reports a missing
    file at once instead of trying to download it (the tests and CI set it). Set to anything but a true or
    a false word (0/false/no/off, or empty) it is a ValueError (:func:`env_problem`; a review: ``maybe`` or
    ``tru`` silently meant online)."""
    if problem := env_problem(OFFLINE_VAR):
        raise ValueError(problem)
    return not env_true(OFFLINE_VAR)


def data_root(override: str | os.PathLike[str] | None = None) -> Path:
    """The data root: ``override`` (a dataset's ``root`` parameter) or ``$FAITHBENCH_DATA``."""
    if override is not None:
        root, source = Path(override).expanduser(), "the dataset's 'root' parameter"
    else:
        value = os.environ.get(ENV_VAR, "").strip()
        if not value:
            raise DataError(
                f"no data root: set the environment variable {ENV_VAR} to the folder of real data "
                f"(for example shared/data), or give the dataset a 'root' parameter"
            )
        root, source = Path(value).expanduser(), f"the environment variable {ENV_VAR}"
    if not root.is_dir():
        raise DataError(f"data root {root} (from {source}) does not exist or is not a folder")
    return root


def labels_csv(folder: Path, labels: str, root: str | os.PathLike[str] | None = None) -> Path:
    """A dataset's ``labels`` CSV: inside the image ``folder`` if it is there, else :func:`resolve_path`'s (absolute
    or under the data root); not found, the error names both places (a review: it named the data root's only)."""
    if (folder / labels).exists():
        return folder / labels
    try:
        return resolve_path(labels, root, "labels CSV")
    except DataError as exc:
        if Path(labels).expanduser().is_absolute():  # a diff review: not looked for in the folder then
            raise
        raise DataError(f"{exc} (nor in the image folder: {folder / labels})") from None


def resolve_path(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None,
                 what: str = "file", *, must_exist: bool = True) -> Path:
    """``path`` if absolute, else relative to the data root; it must exist unless ``must_exist`` is False."""
    candidate = Path(path).expanduser()
    if not candidate.is_absolute():
        candidate = data_root(root) / candidate
    if must_exist and not candidate.exists():
        raise DataError(f"{what} not found: {candidate}")
    return candidate


def csv_image(folder: Path, given: str, csv_path: Path, line: int) -> Path:
    """The image that ``line`` of a labels CSV names: ``given`` relative to ``folder`` (itself
    absolute, ``os.path.abspath``), as an absolute path under ``folder``; an absolute ``given`` stays
    itself, or is rewritten under ``folder`` when it is the real path of a file there (a data root
    reached through a symbolic link). A ``..`` after a linked folder is the parent of the link's
    target, as the OS resolves it, not of the link (``os.path.abspath`` would drop both). A path
    outside the folder (absolute, or through ``..``) or a missing image is a :class:`DataError`
    naming the line."""
    joined = folder / given
    img = Path(os.path.abspath(joined))
    try:  # strict: a missing file or a link loop on the way is an error here, not a wrong guess
        linked_up = ".." in Path(given).parts and os.path.realpath(joined, strict=True) != os.path.realpath(img)
    except OSError as exc:
        raise DataError(f"{csv_path}: line {line}: image not found: {str(joined)!r} ({exc.strerror})"
                        + _path_hint(given)) from None
    if not img.is_relative_to(folder) or linked_up:
        real, real_folder = Path(os.path.realpath(joined)), Path(os.path.realpath(folder))
        if not real.is_relative_to(real_folder):
            raise DataError(f"{csv_path}: line {line}: expected a path inside the image folder {folder}, "
                            f"got {given!r}")
        img = folder / real.relative_to(real_folder)
    if not img.is_file():
        raise DataError(f"{csv_path}: line {line}: image not found: {str(img)!r}"
                        + (" (a folder)" if img.is_dir() else "") + _path_hint(given))
    return img


def _path_hint(given: str) -> str:
    """Why a CSV path may not be found though it looks right (paths are taken as written, labels are
    stripped; a review: ``a/a0.png `` was "not found" with its trailing space unseen)."""
    hints = []
    if given != given.strip():
        hints.append("it has leading or trailing whitespace, which is part of the path: remove it")
    if "\\" in given:
        hints.append("a backslash is no folder separator here: write folders with '/'")
    return f"; {'; '.join(hints)}" if hints else ""


__all__ = ["ENV_VAR", "OFFLINE_VAR", "TRUE_VALUES", "DataError", "csv_image", "data_root", "downloads_allowed",
           "env_true", "resolve_path"]


def csv_row_problem(row: dict[Any, Any], need: tuple[str, ...]) -> str | None:
    """Why a labels-CSV row cannot be used, or None: more fields than the header, a field of
    ``need`` missing or blank (a short row reads as None); ``folder``'s and ``longitudinal_folder``'s
    readers share it. A held-out review: a blank patient_id merged six rows of four patients into one
    patient '', a blank label became a class '', a short row crashed with AttributeError."""
    # csv.DictReader's place for the fields past the header, blank ones (a trailing comma) aside; a review:
    # the label `pleural effusion, left`, unquoted, became a class 'pleural effusion' without a word
    extra = [v for v in row.get(None) or [] if v.strip()]
    if extra:
        named = len(row) - 1
        return (f"{named + len(row[None])} fields, more than the header's {named} (extra: "
                f"{', '.join(repr(v) for v in extra)}); quote a value that holds a comma")
    empty = [name for name in need if not (row.get(name) or "").strip()]
    return f"empty {', '.join(empty)} (each row needs {', '.join(need)})" if empty else None


def csv_date(given: str, csv_path: Path, line: int) -> dt.date:
    """The ISO date of ``line`` of a labels CSV; a :class:`DataError` naming the line otherwise."""
    try:
        return dt.date.fromisoformat(given.strip())
    except ValueError:
        raise DataError(f"{csv_path}: line {line}: expected an ISO date YYYY-MM-DD, got {given!r}") from None
