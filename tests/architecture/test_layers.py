"""The house's shape, checked from the source: floors, no import circles, small functions and modules.

Each module of ``faithbench`` sits on a floor; it may import its own floor's packages and those
below, never one above (issue: "no import from a higher floor"). Every import counts, also one
inside a function: a lazy import is still an arrow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import faithbench

ROOT = Path(faithbench.__file__).resolve().parent

# floor of each top-level module or package of faithbench
FLOORS = {
    "types": 0, "store": 0, "configurable": 0, "code_identity": 0, "registry": 0, "device": 0, "names": 0,
    "progress": 0, "scores": 0, "seeds": 0,
    "datasets": 1, "explainers": 1, "metrics": 1, "stats": 1,
    "models": 2, "reports": 2,
    "config": 3, "config_files": 3, "config_yaml": 3, "config_checks": 3, "config_types": 3, "config_messages": 3,
    "metric_checks": 3, "model_checks": 3, "region_checks": 3,
    "runner": 4,
    "cli": 5, "listing": 5, "": 6,  # "": faithbench/__init__.py, the public API
}
MAX_RUNNER_PARAMETERS = 8
MAX_MODULE_LINES = 400


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _sources() -> dict[str, ast.Module]:
    return {_module(p): ast.parse(p.read_text(), str(p)) for p in sorted(ROOT.rglob("*.py"))}


def _imports(tree: ast.Module, modules: set[str] = frozenset()) -> set[str]:
    """The faithbench modules ``tree`` imports; ``from pkg import mod`` names ``pkg.mod`` when that
    is one of ``modules`` (or ``pkg`` is faithbench itself), else ``pkg``."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "faithbench":
                out |= {f"faithbench.{a.name}" for a in node.names}
            elif node.module.startswith("faithbench."):
                subs = {f"{node.module}.{a.name}" for a in node.names} & set(modules)
                out |= subs
                if len(subs) < len(node.names):
                    out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("faithbench")}
    return out


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_module_has_a_floor():
    missing = sorted({_top(m) for m in _sources()} - set(FLOORS))
    assert not missing, f"add these to FLOORS: {missing}"


def test_no_import_from_a_higher_floor():
    upward = []
    for module, tree in _sources().items():
        for target in _imports(tree):
            if FLOORS[_top(target)] > FLOORS[_top(module)]:
                upward.append(f"{module} -> {target}")
    assert upward == []


def test_no_import_circle():
    sources = _sources()
    graph = {m: {t for t in _imports(tree, set(sources)) if t in sources and t != m} for m, tree in sources.items()}
    cycles, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(path[path.index(nxt):] + [nxt]) if nxt in path else f"{node} -> {nxt}")
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_checker_sees_a_circle_and_an_upward_import(tmp_path):
    """The checks above can fail: a toy tree with both defects is caught by the same helpers."""
    a = ast.parse("from faithbench.runner.run import x\n")
    assert _imports(a) == {"faithbench.runner.run"}
    assert FLOORS[_top("faithbench.runner.run")] > FLOORS[_top("faithbench.models.checkpoint")]
    lazy = ast.parse("def f():\n    from faithbench import store\n")
    assert _imports(lazy) == {"faithbench.store"}


def _parameters(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    a = fn.args
    n = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs) + (a.vararg is not None) + (a.kwarg is not None)
    if a.args and a.args[0].arg in ("self", "cls"):
        n -= 1
    return n


def test_no_runner_function_takes_more_than_eight_parameters():
    wide = [f"{module}.{fn.name}: {_parameters(fn)}"
            for module, tree in _sources().items() if module.startswith("faithbench.runner")
            for fn in ast.walk(tree) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
            and _parameters(fn) > MAX_RUNNER_PARAMETERS]
    assert wide == []


@pytest.mark.parametrize("path", sorted(ROOT.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_over_400_lines(path):
    assert len(path.read_text().splitlines()) <= MAX_MODULE_LINES
