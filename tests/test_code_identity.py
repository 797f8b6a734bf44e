"""The cache identity of a plugin defined without a source file (a notebook cell): ``code:<digest>``
covers the module globals its code reads (a held-out review: ``K = 1.0`` edited to ``K = 7.0`` in the
cell, run again, kept the key and re-served the old scores)."""

import subprocess
import sys
import textwrap
import types

import pytest

from faithbench.code_identity import code_digest

PLUGIN_CELL = """
from faithbench.configurable import Configurable

class CellPlugin(Configurable):
    defaults = {}

    def explain(self, x):
        return [helper(v) * K for v in x] + list(np.zeros(2) + sum(TABLE.values()))
"""
HELPER_CELL = """
import numpy as np
K = {k}
TABLE = {{"b": 2, "a": {{"z", "y"}} and 1}}

def helper(v):
    return v + {offset}
"""


@pytest.fixture(params=[None, "<stdin>"])
def notebook(monkeypatch, request):
    """A fresh module without a source file, as a notebook's ``__main__`` (or ``python - < script``'s, whose
    ``__file__`` is ``<stdin>``: a review's repro); ``run(cell)`` executes a cell in it."""
    module = types.ModuleType("nb_ident_t")
    if request.param:
        module.__file__ = request.param
    monkeypatch.setitem(sys.modules, "nb_ident_t", module)

    def run(cell: str) -> None:
        exec(compile(cell, "<ipython-input-1>", "exec"), module.__dict__)

    return module, run


def _key(module) -> str:
    return module.CellPlugin().spec()["package"]


def test_editing_a_global_constant_changes_the_key_and_an_unchanged_rerun_keeps_it(notebook):
    module, run = notebook
    run(HELPER_CELL.format(k=1.0, offset=0) + PLUGIN_CELL)
    first = _key(module)
    run(HELPER_CELL.format(k=1.0, offset=0) + PLUGIN_CELL)  # the same cell again: a new class, the same key
    again = _key(module)
    run(HELPER_CELL.format(k=7.0, offset=0) + PLUGIN_CELL)
    edited = _key(module)
    assert first.startswith("code:") and first == again and edited != first


def test_a_global_edited_in_another_cell_changes_the_key_of_the_same_class(notebook):
    """Only the helper cell is run again: the plugin's class is the same object, so its key is not cached."""
    module, run = notebook
    run(HELPER_CELL.format(k=1.0, offset=0))
    run(PLUGIN_CELL)
    first = _key(module)
    run(HELPER_CELL.format(k=1.0, offset=0))
    assert _key(module) == first
    run(HELPER_CELL.format(k=1.0, offset=5))  # the helper function's code
    helper_edited = _key(module)
    module.K = 2.0
    constant_edited = _key(module)
    module.np = __import__("math")  # a module global is keyed by its name
    assert len({first, helper_edited, constant_edited, _key(module)}) == 4


def test_globals_by_content_files_by_name(notebook):
    """Arrays and tensors count by value; a function from a source file, by its name only."""
    import numpy as np
    import torch

    module, run = notebook
    run("def f():\n    return W, T, FN\n")
    keys = []
    for w, t, fn in [(np.ones(3), torch.ones(2), np.mean), (np.ones(3), torch.ones(2), np.mean),
                     (np.full(3, 2.0), torch.ones(2), np.mean), (np.ones(3), torch.zeros(2), np.mean),
                     (np.ones(3), torch.ones(2), np.median)]:
        module.W, module.T, module.FN = w, t, fn
        keys.append(code_digest(module.f))
    assert keys[0] == keys[1] and len(set(keys)) == 4


def test_cycles_end(notebook):
    """Helpers calling each other, a class naming itself, a list holding itself: one digest, no recursion error."""
    module, run = notebook
    run("def even(n):\n    return n == 0 or odd(n - 1)\n\ndef odd(n):\n    return n != 0 and even(n - 1)\n\n"
        "L = [1]\nL.append(L)\n\n"
        "class C:\n    def m(self):\n        return C, even(2), L\n")
    before = code_digest(module.C)
    assert code_digest(module.C) == before
    run("def odd(n):\n    return n != 0 and not even(n - 1)\n")  # reached from C through even
    assert code_digest(module.C) != before


# a set and a set of frozensets (whose repr follows the hash seed: diff review 16)
SETS = ("S = {'x', 'y', 'z'}\n"
        "F = {frozenset({'p', 'q'}), frozenset({'r', 's', 't'}), frozenset({'u', 'v'}), frozenset({'a', 'z'})}\n")


def test_the_digest_with_globals_does_not_depend_on_the_process(tmp_path):
    """A module global (``np``), a dict and a set read by the code: the same digest under every hash seed."""
    script = tmp_path / "digest.py"
    script.write_text(textwrap.dedent("""
        import sys, types
        from faithbench.code_identity import code_digest
        module = types.ModuleType("nb_ident_p")
        sys.modules["nb_ident_p"] = module
        CELLS = %r
        exec(compile(CELLS, "<ipython-input-2>", "exec"), module.__dict__)
        print(code_digest(module.CellPlugin))
    """ % (HELPER_CELL.format(k=3.0, offset=1) + SETS + PLUGIN_CELL.replace("TABLE.values()", "TABLE.values(), S, F"))))
    outs = {subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True,
                           env={**__import__("os").environ, "PYTHONHASHSEED": str(seed)}).stdout
            for seed in range(1, 9)}  # the frozensets sorted by repr: 2 digests over seeds 1-8
    assert len(outs) == 1 and outs.pop().startswith("code:")


def test_a_cached_helper_is_keyed_by_its_code(notebook):
    """Diff review 16: a helper under functools.lru_cache was keyed by its name only, so an edit of it kept
    the key and re-served the old scores."""
    module, run = notebook
    cell = "import functools\n\n@functools.lru_cache\ndef helper(v):\n    return {}\n"
    run(cell.format(1.0))
    run("def plugin(x):\n    return helper(x)\n")
    first = code_digest(module.plugin)
    run(cell.format(1.0))
    assert code_digest(module.plugin) == first
    run(cell.format(-3.0))
    assert code_digest(module.plugin) != first
