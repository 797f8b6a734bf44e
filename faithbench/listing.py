"""What ``faithbench list`` prints of a plugin: its tags and the first sentence of its description,
whole (:func:`describe`), and with ``--params`` its parameters and their defaults (:func:`parameters`);
:func:`write_lines` writes a command's standard output in one write.
"""

from __future__ import annotations

import inspect
import re
import sys
from typing import Any

__all__ = ["describe", "first_sentence", "parameters", "write_lines"]

_NONE = "(no description)"  # a plugin without a docstring (a review: listed as a lone ".")
_ABBREVIATIONS = ("al", "e.g", "i.e", "cf", "vs", "etc", "approx", "Fig", "Eq", "resp")


def first_sentence(doc: str) -> str:
    """The first sentence of a docstring, whole: lines joined, RST double backticks dropped and
    cross-references reduced to their last name (``:func:`~a.b.f``` -> f), cut at the first full
    stop (or ? !) that is outside brackets, followed by a space or the end, and not an
    abbreviation ("et al.", "e.g.")."""
    text = " ".join(doc.replace("``", "").split())
    text = re.sub(r":\w+:`~?(?:[\w.]*\.)?([\w]+)`", r"\1", text)
    depth = 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif ch in ".?!" and depth == 0 and (i + 1 == len(text) or text[i + 1] == " "):
            word = text[:i].rsplit(" ", 1)[-1].lstrip("(\"'")
            if ch == "." and word in _ABBREVIATIONS:
                continue
            return text[: i + 1]
    return text


def describe(kind: str, obj: object) -> str:
    """``[tags] sentence`` for a plugin of ``kind`` (explainers: family, dimensions, architectures;
    metrics: category, direction). An explainer's ``description`` is written as a phrase: it is
    printed as a sentence (a review: 30 lower-case fragments)."""
    doc = (getattr(obj, "description", "") or first_sentence(obj.__doc__ or "")).strip() or _NONE
    if kind == "explainers":
        word = doc.split(" ", 1)[0]  # a word, not a symbol: "x * d score / dx" stays x (a review)
        letters = word.replace("-", "")  # input-gradient, gradient-weighted: words
        doc = (doc[:1].upper() + doc[1:] if len(word) > 1 and letters.isalpha() and letters.islower() else doc) \
            + ("" if doc.endswith((".", "?", "!")) or doc == _NONE else ".")
        dims = "/".join(f"{d}D" for d in sorted(getattr(obj, "dims", ())))
        if getattr(obj, "sequences", False):  # (T, H, W): a patient's visits, not a volume
            dims = "visits"
        archs = ",".join(sorted(getattr(obj, "architectures", ())))
        return f"[{getattr(obj, 'family', '?')}; {dims}; {archs}] {doc}"
    if kind == "metrics":
        info = obj.info  # type: ignore[attr-defined]
        arrow = "↑" if info.higher_is_better else "↓"
        from faithbench.types import category_name

        return f"[{category_name(info.category)}; {arrow}] {doc}"
    return doc


_LEFT_OUT = ("split",)  # given by the runner (`root`, a dataset's own data root, is a parameter: a review)


def parameters(obj: Any) -> str:
    """``name=default, ...``: an explainer's or metric's ``defaults``; a dataset's or model
    builder's keyword-only parameters with their defaults (the channels, classes and input size of
    a model come from the dataset)."""
    defaults = getattr(obj, "defaults", None)
    if not isinstance(defaults, dict):
        try:
            signature = inspect.signature(obj)
        except (TypeError, ValueError):
            return ""
        defaults = {name: p.default for name, p in signature.parameters.items()
                    if p.kind is p.KEYWORD_ONLY and p.default is not p.empty and name not in _LEFT_OUT}
    return ", ".join(f"{name}={value!r}" for name, value in defaults.items())


def write_lines(lines: list[str]) -> int:
    """Standard output's lines in ONE write(2), flushed; returns 0 (exit code). With ``PYTHONUNBUFFERED=1``
    each ``print`` is a write (its newline another), and ``| head`` quitting between two made a listing that
    fits the pipe's buffer exit 141 (a review); one write of it fills the buffer before the reader can quit."""
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    sys.stdout.flush()
    return 0
