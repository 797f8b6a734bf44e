"""Suite files: finding a suite (a path or a built-in name) and reading it with its ``include:`` chain.

A suite is a regular file, or a pipe read once as text (a named FIFO, or bash's process
substitution ``faithbench validate <(generate_suite)``: a path such as ``/dev/fd/63``). Anything
else that exists at the path (a directory, a device such as ``/dev/zero``, a socket) and a
symbolic link that loops or leads nowhere is refused with one line that says what it is, not
"no such suite file". Relative ``include:`` and ``weights:`` paths are read from the suite
file's folder; for a pipe, from the working directory (a process substitution's ``/dev/fd`` is
not where the suite was written).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

from faithbench.config_yaml import YAMLFileError, load_yaml_file

# The built-in suites ship inside the package (``faithbench/suites/*.yaml``, package data), so
# they are found after a non-editable install too; ``benchmarks/`` in the repository links to them.
BUILTIN_DIR = Path(__file__).resolve().parent / "suites"

__all__ = ["BUILTIN_DIR", "SuiteError", "builtin_suites", "read_suite_file", "resolve_suite_path", "suite_folder"]


class SuiteError(ValueError):
    """A suite that cannot be run; the message names the file and the key."""


def builtin_suites() -> list[str]:
    """The names of the built-in suites, sorted (``faithbench list suites``)."""
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml")) if BUILTIN_DIR.is_dir() else []


def suite_folder(path: Path) -> Path:
    """The folder a suite's relative ``include:`` and ``weights:`` paths are read from: the file's
    own, or the working directory for a pipe (``/dev/fd/63``)."""
    return path.parent if path.is_file() else Path()


def _is_pipe(path: Path) -> bool:
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def _not_a_file(path: Path) -> str | None:
    """What ``path`` is when it exists (or is a link) but is neither a regular file nor a pipe:
    ``a directory``, ``a character device``, ``a symbolic link that loops``; None otherwise."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link that loops (too many levels of symbolic links)"
        if os.path.islink(path):
            return f"a symbolic link to {os.readlink(path)}, which does not exist"
        return None
    except ValueError:  # a NUL byte in the name
        return None
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"))
    return next((what for test, what in kinds if test(mode)), None)


def resolve_suite_path(suite: str | Path, relative_to: Path | None = None) -> Path:
    """A YAML file, or the name of a built-in suite (``faithbench/suites/<name>.yaml``). A *file* wins:
    ``suite``, then ``<suite>.yaml`` and ``<suite>.yml`` (so a copy of a built-in you edit, ``quick.yaml``,
    wins over the built-in ``quick``), relative to ``relative_to`` first (for ``include:``), then to the
    working directory; only then is ``suite`` looked up among the built-ins. A directory is never a suite,
    so an output folder ``quick/`` does not shadow ``quick``. A pipe (``<(...)``, a FIFO) is a suite too."""
    candidate = Path(suite).expanduser()
    names = [candidate.name] + ([] if candidate.suffix in (".yaml", ".yml") else
                                [candidate.name + ext for ext in (".yaml", ".yml")])
    folders = [Path()] if relative_to is None or candidate.is_absolute() else [relative_to, Path()]
    for path in (folder / candidate.parent / name for folder in folders for name in names):
        if path.is_file() or _is_pipe(path):
            return path
    builtin = BUILTIN_DIR / f"{suite}.yaml"
    if builtin.is_file():
        return builtin
    known = builtin_suites()
    builtins = ", ".join(known) or "(none)"
    if not str(suite).strip():  # a review: '' read as the working directory
        raise SuiteError(f"'': an empty name, not a suite file, and not a built-in suite (built-ins: {builtins})")
    what = next(filter(None, (_not_a_file(folder / candidate) for folder in folders)), None)
    if what:  # a review: /dev/zero and a symlink loop were "no such suite file"
        raise SuiteError(f"{suite}: {what}, not a suite file, and not a built-in suite (built-ins: {builtins})")
    where = " and ".join(dict.fromkeys(os.path.abspath(folder / candidate.parent) for folder in folders))
    plain = candidate.suffix in (".yaml", ".yml") and candidate.stem in known and str(candidate.parent) == "."
    raise SuiteError(f"{suite}: no such suite file, and not a built-in suite (looked for {' / '.join(names)} in "
                     f"{where}{f'; the built-in is {candidate.stem!r}, without the suffix' if plain else ''}; "
                     f"built-ins: {builtins})")


def read_suite_file(path: Path, seen: tuple[Path, ...] = (), origins: dict[str, Path] | None = None,
                    via: str = "") -> dict[str, Any]:
    """The suite mapping of ``path`` with its ``include:`` chain merged (strict YAML:
    :mod:`faithbench.config_yaml`); ``seen``: the resolved paths of the including files;
    ``origins`` (filled in): the file that wrote each key of the merged mapping; ``via``: the
    including file's ``include:`` key, which an error reading ``path`` begins with."""
    try:
        data = load_yaml_file(path)
    except OSError as exc:
        raise SuiteError(f"{via}{path}: cannot read suite ({exc.strerror or exc})") from None
    except YAMLFileError as exc:
        raise SuiteError(str(exc)) from None
    if not isinstance(data, dict):
        got = "an empty file" if data is None else type(data).__name__  # a review: "got NoneType"
        raise SuiteError(f"{via}{path}: expected a mapping of suite keys (name, datasets, models, …), got {got}")
    include, own = data.pop("include", None), list(data)
    if include is not None:
        if not isinstance(include, str):
            raise SuiteError(f"{path}: include: expected a path or suite name, got {include!r}")
        try:
            inc = resolve_suite_path(include, relative_to=suite_folder(path))
        except SuiteError as exc:
            raise SuiteError(f"{path}: include: {exc}") from None
        chain = seen + (path.resolve(),)
        if inc.resolve() in chain:  # resolved: ../x.yaml and x.yaml are one file
            raise SuiteError(f"{path}: include: circular include of {inc} "
                             f"({' -> '.join(p.name for p in chain + (inc.resolve(),))})")
        data = {**read_suite_file(inc, chain, origins, via=f"{path}: include: "), **data}
    if origins is not None:
        origins.update(dict.fromkeys(own, path))  # after the included file's: this file's keys win
    return data
