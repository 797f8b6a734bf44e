"""How ``folder`` names its classes: the class names found (numeric labels as indices), and the
warnings of labels that look like typos or lists, of classes without an image and of images
without a mask file in a class whose other images have one."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any
from pathlib import Path

from faithbench.configurable import ParameterError
from faithbench.datasets.paths import DataError
from faithbench.types import edit_distance


def count_images(k: int) -> str:
    """``1 image``, ``2 images``."""
    return f"{k} image" + "s" * (k != 1)


def _typo_of(a: str, b: str) -> bool:
    """Whether class name ``a`` reads as a typo of ``b``: the same but for case (``Well``, ``well``),
    or at most 2 edits apart with lengths within one, neither inside the other (``abnormal`` is
    ``normal`` with a prefix, ``unhealthy`` ``healthy``: two classes), 4 characters or more and the
    same numbers (``grade1``, ``grade2``)."""
    a, b = a.lower(), b.lower()
    if a == b:
        return True
    return (min(len(a), len(b)) >= 4 and abs(len(a) - len(b)) <= 1 and a not in b and b not in a
            and edit_distance(a, b) <= 2 and re.findall(r"\d+", a) == re.findall(r"\d+", b))


def near_labels(labels: list[str], source: Path) -> list[str]:
    """Warnings for each class named like a larger one (``pnuemonia`` beside ``pneumonia``,
    ``Normal`` beside ``NORMAL``; :func:`_typo_of`): without ``classes``, every name found is a
    class, so a typo makes a class of its own. ``longitudinal_folder`` warns of its visit labels with it
    (a review: one visit ``Pos`` among ``pos`` made a 3-output model without a word)."""
    counts = {name: labels.count(name) for name in sorted(set(labels))}
    out = []
    for name, k in counts.items():
        close = [other for other, m in counts.items() if m > k and _typo_of(name, other)]
        if close:
            out.append(f"{source}: class {name!r} ({count_images(k)}) is named like {close[0]!r} "
                       f"({count_images(counts[close[0]])}); a typo makes a class of its own: set the dataset's "
                       "classes to refuse labels that are none of them")
    return out


def list_labels(labels: list[str], source: Path) -> list[str]:
    """One warning when labels look like lists of classes (``nodule|cavity``: parts split by ``|``,
    ``;`` or ``,``): ``folder`` is single-label, so each combination is a class of its own (a
    held-out review's multi-label CSV read as four softmax classes without a word)."""
    found = sorted({name for name in labels if len([p for p in re.split(r"[|;,]", name) if p.strip()]) > 1})
    if not found:
        return []
    looks = "labels look like lists" if len(found) > 1 else "label looks like a list"
    return [f"{source}: {len(found)} {looks} of classes (e.g. {found[0]!r}, "
            f"{count_images(labels.count(found[0]))}): folder is single-label, so each is a class of its own; "
            "multi-label data needs a dataset plugin with multilabel = True and Sample.labels (docs/plugins.md)"]



def class_names(found: list[str], classes: list[str] | None, source: str) -> tuple[str, ...]:
    """``classes``, else the names found, sorted; numeric labels name classes by index from 0, so
    ``0`` to ``K - 1``: a gap is allowed (``1``, ``2``: ``class_0`` is warned of), but more indices
    without an image than with one are refused before any class is made (``0`` and ``100000``, a
    code in the label column, made 100001 classes and hung validate, a held-out review)."""
    if classes is not None:
        return tuple(classes)
    names = sorted(set(found))
    if names and all(f.isascii() and f.isdigit() for f in names):  # '²' is a digit to str.isdigit, not to int()
        k = max(int(f) for f in names) + 1
        distinct = len({int(f) for f in names})
        if k > 2 * distinct:
            raise DataError(f"{source}: numeric labels are class indices from 0: expected at most {2 * distinct} "
                            f"classes (0 to {2 * distinct - 1}) for {distinct} distinct labels, got labels up to "
                            f"{k - 1} ({k} classes, {k - distinct} without an image); set the dataset's classes "
                            "to name each index's class, or use class names as labels")
        return tuple(f"class_{i}" for i in range(k))
    return tuple(names)


def class_problems(labels: list[int], names: tuple[str, ...], source: Path) -> list[str]:
    """Warnings for each class without an image (a model output nothing trains), or one warning when
    only one class has images (explaining a model of fixed weights on one class's images is valid;
    training on it is refused where a model is trained, :func:`check_train_classes`); a
    :class:`DataError` when the dataset has one class only (a one-output model, a held-out review)."""
    counts = Counter(labels)
    held = ", ".join(f"{names[c]!r}: {count_images(k)}" for c, k in sorted(counts.items()))
    if len(names) < 2:
        raise DataError(f"{source}: images of one class only ({held}): expected images of 2 classes or more (or "
                        "the dataset's classes naming 2 or more, to explain a model of fixed weights on these images)")
    if len(counts) < 2:
        empty = ", ".join(repr(name) for c, name in enumerate(names) if c not in counts)
        return [f"{source}: images of one class only ({held}); no image of {empty}: enough to explain a model of "
                "fixed weights, while training a model on it is refused"]
    numeric = all(name == f"class_{i}" for i, name in enumerate(names))
    empty = [name for c, name in enumerate(names) if c not in counts]
    if not empty:
        return []
    why = ("numeric labels are class indices from 0" if numeric
           else ("it is" if len(empty) == 1 else "they are") + " named in the dataset's classes")
    which = (f"class {empty[0]!r} has no image" if len(empty) == 1 else f"{len(empty)} classes have no image "
             f"({', '.join(map(repr, empty[:5]))}{', …' * (len(empty) > 5)})")  # one line, however many
    output = "an output for it" if len(empty) == 1 else "an output for each"
    return [f"{source}: {which} ({why}): the model gets {output} that no image trains"]


def unmasked_images(images: list[tuple[str, int, bool]], names: tuple[str, ...], mask_dir: Path,
                    mask_name: str) -> str | None:
    """One warning of the images without a mask file in the classes where some images have one,
    from ``(image's relative path, class, has a mask file)`` of every split: per class their count,
    and up to 3 names. Such an image gets an empty mask (documented), which for an image of a class
    with masks is likely a forgotten or renamed file (a held-out review: a ``lesion`` test image's
    mask missing made its localisation scores undefined without a word)."""
    masked = {c for _rel, c, has in images if has}
    missing: dict[int, list[str]] = {}
    for rel, c, has in images:
        if c in masked and not has:
            missing.setdefault(c, []).append(rel)
    if not missing:
        return None
    total = Counter(c for _rel, c, _has in images)
    counts = [f"{len(missing[c])} of {total[c]} images of class {names[c]!r}" for c in sorted(missing)]
    some = [rel for c in sorted(missing) for rel in missing[c]][:3]
    k = sum(map(len, missing.values()))
    return (f"{mask_dir}: {' and '.join(counts)} {'have' if k > 1 else 'has'} no mask file (e.g. "
            f"{', '.join(map(repr, some))}) while other images of {'its' if len(missing) == 1 else 'their'} class "
            f"have one: {'it gets' if k == 1 else 'each gets'} an empty {mask_name!r} mask (no finding; its "
            "localisation scores are undefined); a mask has its image's relative path (any image suffix)")


__all__ = ["class_names", "class_problems", "count_images", "list_labels", "near_labels", "unmasked_images"]


def check_folder_params(name: str, fit: Any, channels: Any, fractions: Any, classes: Any) -> None:
    """The parameters ``folder`` and ``longitudinal_folder`` share, each refused in one line naming ``name``: ``fit``,
    ``channels``, ``fractions`` (three, non-negative, summing to 1; NaN too, a fuzzing review: it compared False and
    failed later as 'cannot convert float NaN to integer') and ``classes`` (a list of distinct names: ``['0', '0']``
    was accepted, a fuzzing review)."""
    if fit not in ("crop", "pad", "squash"):
        raise ParameterError(f"{name}: expected fit crop, pad or squash, got {fit!r}")
    if channels not in (1, 3):
        raise ParameterError(f"{name}: expected channels 1 or 3, got {channels}")
    if len(fractions) != 3 or min(fractions) < 0 or not abs(sum(fractions) - 1) <= 1e-6:
        raise ParameterError(f"{name}: expected 3 non-negative fractions summing to 1, got {list(fractions)}")
    if classes is not None and (isinstance(classes, str) or not all(isinstance(c, str) for c in classes)):
        raise ParameterError(f"{name}: expected classes a list of class names, got {classes!r}")  # a str iterated
    if classes is not None and (twice := [c for c, k in Counter(classes).items() if k > 1]):
        raise ParameterError(f"{name}: expected distinct class names, got {list(classes)} ({twice[0]!r} twice)")
