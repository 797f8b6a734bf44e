"""docs/architecture.md lists every module and sub-package of faithbench, and nothing else.

The page's tree names each top-level module (``cli.py``), each sub-package (``datasets/``) and
each module of a sub-package on that sub-package's lines. A module added, renamed or removed
without updating the page fails here, so the picture stays the house as it is.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "faithbench"
PAGE = ROOT / "docs" / "architecture.md"


def documented_tree() -> dict[str, set[str]]:
    """{package path relative to faithbench/ ('' for the top): names listed under it}."""
    block = next(b for b in re.findall(r"```\n(.*?)```", PAGE.read_text(), flags=re.S)
                 if b.startswith("faithbench/\n"))
    tree: dict[str, set[str]] = {"": set()}
    stack: list[tuple[int, str]] = []  # (indent, package path) of the open sub-packages
    current = ""
    for line in block.splitlines()[1:]:
        if not line.startswith(" "):
            break  # benchmarks/, docs/, tests/: outside the package
        indent = len(line) - len(line.lstrip())
        head = re.match(r"\s*(\w+/|\w+\.py)\s", line + " ")
        # an entry: a top-level name (indent 2) or a sub-package one level deeper than the open one;
        # a deeper indent is the description column, where a sub-package's modules are listed
        deepest = stack[-1][0] if stack else 2
        if head and (indent == 2 or (head.group(1).endswith("/") and indent <= deepest + 2)):
            name = head.group(1)
            while stack and stack[-1][0] >= indent:
                stack.pop()
            parent = stack[-1][1] if stack else ""
            tree[parent].add(name)
            if name.endswith("/"):
                current = f"{parent}{name}"
                stack.append((indent, current))
                tree.setdefault(current, set())
            else:
                current = parent
            line = line[indent + len(name):]
        if current:
            tree[current] |= set(re.findall(r"\b(\w+\.py)\b", line))
    return tree


def actual_tree() -> dict[str, set[str]]:
    tree: dict[str, set[str]] = {}
    for folder in [PACKAGE, *sorted(p for p in PACKAGE.rglob("*") if p.is_dir() and p.name != "__pycache__")]:
        rel = "" if folder == PACKAGE else f"{folder.relative_to(PACKAGE).as_posix()}/"
        names = {p.name for p in folder.glob("*.py")} | {f"{p.name}/" for p in folder.iterdir()
                                                          if p.is_dir() and p.name != "__pycache__"}
        if rel:
            names.discard("__init__.py")  # a sub-package's __init__ re-exports; not listed
        tree[rel] = names
    return tree


def test_architecture_page_lists_every_module():
    documented, actual = documented_tree(), actual_tree()
    assert documented.keys() == actual.keys(), (sorted(documented), sorted(actual))
    for package in actual:
        missing, extra = actual[package] - documented[package], documented[package] - actual[package]
        assert not missing and not extra, (f"faithbench/{package}: not on the page: {sorted(missing)}; "
                                           f"on the page but not in the code: {sorted(extra)}")


def test_the_parser_reads_a_known_tree():
    tree = documented_tree()
    assert {"registry.py", "store.py", "datasets/", "metrics/", "suites/"} <= tree[""]
    assert "functional/" in tree["metrics/"] and "perturbation.py" in tree["metrics/functional/"]
    assert "lock.py" in tree["runner/"] and "lock.py" not in tree["stats/"]
