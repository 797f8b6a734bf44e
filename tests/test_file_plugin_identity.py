"""The cache identity of a plugin defined in a local source file (a script run as ``python sweep.py``, a local
module no distribution ships): ``source:<digest>+code:<digest>``, where the code digest covers the current
values of the module globals its code reads, as for a notebook plugin (a held-out review: a script swept a
global gain ``K`` over 1, 2, 3 in a loop and got K=1's cached maps back for K=2 and K=3)."""

import importlib
import json
import os
import subprocess
import sys
import textwrap

from pathlib import Path

import numpy as np
import pytest

import faithbench
from faithbench.configurable import package_version

# the faithbench under test, also in a subprocess (a worktree beside an editable install elsewhere)
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(faithbench.__file__).parents[1]),
                                                                os.environ.get("PYTHONPATH")]))}

PLUGIN = """
import numpy as np
from faithbench.configurable import Configurable

K = 1.0
TABLE = {"a": [1, 2]}
W = np.ones(3)

def helper(v):
    return v * sum(TABLE["a"])

class P(Configurable):
    defaults = {}

    def explain(self, x):
        return helper(x) * K * W.sum()
"""


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    (tmp_path / "local_plugin_g.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "local_plugin_g", raising=False)
    package_version.cache_clear()
    yield importlib.import_module("local_plugin_g")
    package_version.cache_clear()


def test_a_file_plugin_key_follows_the_globals_its_code_reads(plugin):
    first = plugin.P().spec()["package"]
    source = package_version("local_plugin_g")  # without the class: the source digest only
    assert source.startswith("source:") and first.startswith(source + "+code:") and len(first) == len(source) + 22
    assert plugin.P().spec()["package"] == first  # unchanged: the same key
    keys = [first]
    for name, value in [("K", 2.0), ("K", 3.0), ("W", np.full(3, 2.0))]:
        setattr(plugin, name, value)
        keys.append(plugin.P().spec()["package"])
    plugin.TABLE["a"].append(3)  # a container the helper reads, changed in place
    keys.append(plugin.P().spec()["package"])
    assert len(set(keys)) == 5 and all(k.startswith(source + "+code:") for k in keys)
    plugin.K, plugin.W = 1.0, np.ones(3)
    plugin.TABLE["a"].pop()
    assert plugin.P().spec()["package"] == first  # the values back: the key back


def test_a_file_plugin_key_still_follows_its_source(plugin, tmp_path):
    first = plugin.P().spec()["package"]
    (tmp_path / "local_plugin_g.py").write_text(PLUGIN + "\n# edited\n")
    package_version.cache_clear()
    assert plugin.P().spec()["package"].split("+")[0] != first.split("+")[0]


KEY_SCRIPT = """
import sys
from faithbench.configurable import Configurable, package_version

K = float(sys.argv[1])
NAMES = {"x", "y", "z"}

class P(Configurable):
    defaults = {}

    def explain(self, x):
        return [K * x for _ in NAMES]

print(package_version(P.__module__, P))
"""


def test_a_script_plugin_key_is_the_same_in_another_process(tmp_path):
    """``python script.py`` (``__main__`` with a file): the same file and globals give the same key in two
    processes (other hash seeds: the set's order differs), another value of a global another key."""
    script = tmp_path / "key_script.py"
    script.write_text(KEY_SCRIPT)

    def key(k: str, seed: int) -> str:
        return subprocess.run([sys.executable, str(script), k], capture_output=True, text=True, check=True,
                              env={**ENV, "PYTHONHASHSEED": str(seed)}).stdout.strip()

    first, again, other = key("1.0", 1), key("1.0", 2), key("2.0", 1)
    assert first.startswith("source:") and "+code:" in first and first == again
    assert other != first and other.split("+")[0] == first.split("+")[0]  # the same source, another global


SWEEP = """
import json, sys
import torch
import faithbench
from faithbench.explainers.base import Explainer
from faithbench.metrics.base import Metric
from faithbench.registry import explainers, metrics
from faithbench.types import Category, MetricInfo

K = 1.0

@explainers.register("sweep_gain_t")
class SweepGain(Explainer):
    needs_grad = False
    defaults = {}

    def explain(self, model, x, target):
        return K * x.mean(1)

@metrics.register("sweep_sum_t")
class SweepSum(Metric):
    info = MetricInfo("sweep_sum_t", higher_is_better=True, category=Category.AXIOMATIC)
    defaults = {}

    def compute(self, ctx, saliency):
        return {"value": saliency.flatten(1).sum(1)}

SUITE = {"name": "sweep_t", "samples": 4, "batch_size": 4, "reliability": 0,
         "datasets": [{"name": "phantom_cxr", "params": {"n": 32, "size": 32}}],
         "models": [{"name": "small_cnn", "params": {"width": 4}, "recipe": {"epochs": 1}}],
         "explainers": ["sweep_gain_t"], "metrics": ["sweep_sum_t"]}
for K in (1.0, 2.0, 3.0):
    r = faithbench.run(SUITE, out_dir=f"{sys.argv[1]}/out_{K}", cache=f"{sys.argv[1]}/cache", progress=False,
                       log=lambda _line: None)
    key = json.load(open(f"{sys.argv[1]}/out_{K}/manifest.json"))["plugin_packages"]["explainers"]["sweep_gain_t"]
    print(json.dumps({"K": K, "key": key, "values": r.results["value"].tolist(),
                      "computed": r.computed["saliency"], "cached": r.cached["saliency"]}))
"""


SWEEP_MODULE = SWEEP[:SWEEP.index("SUITE = ")]


def test_a_sweep_over_a_global_of_a_local_module_recomputes_each_value(tmp_path, monkeypatch):
    """The review's repro in one process, from a local module: K = 1, 2, 3 give x1, x2, x3 (each computed), and
    K = 2 again reads its maps and scores from the cache."""
    from faithbench.registry import explainers, metrics

    (tmp_path / "local_sweep_t.py").write_text(SWEEP_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "local_sweep_t", raising=False)
    suite = {"name": "sweep_t", "samples": 4, "batch_size": 4, "reliability": 0,
             "datasets": [{"name": "phantom_cxr", "params": {"n": 32, "size": 32}}],
             "models": [{"name": "small_cnn", "params": {"width": 4}, "recipe": {"epochs": 1}}],
             "explainers": ["sweep_gain_t"], "metrics": ["sweep_sum_t"]}
    module = importlib.import_module("local_sweep_t")
    try:
        runs = []
        for gain in (1.0, 2.0, 3.0, 2.0):
            module.K = gain
            runs.append(faithbench.run(suite, out_dir=tmp_path / f"out_{len(runs)}", cache=tmp_path / "cache",
                                       progress=False, log=lambda _line: None))
    finally:
        explainers.unregister("sweep_gain_t")
        metrics.unregister("sweep_sum_t")
    base = runs[0].results["value"].to_numpy()
    assert len(base) == 4 and np.abs(base).min() > 0
    for run, gain in zip(runs, (1.0, 2.0, 3.0, 2.0)):
        np.testing.assert_allclose(run.results["value"].to_numpy(), gain * base, rtol=1e-5)
    assert [r.computed["saliency"] for r in runs] == [1, 1, 1, 0] and runs[3].cached["saliency"] == 1
    assert runs[3].results["value"].tolist() == runs[1].results["value"].tolist()


@pytest.mark.slow
def test_a_script_sweeping_a_global_gets_each_value_and_a_rerun_reuses_the_cache(tmp_path):
    """The review's repro, as a script run twice (``__main__`` with a file): each K its own maps (x1, x2, x3), and
    the second process gets the same keys and reads every map from the cache."""
    script = tmp_path / "sweep.py"
    script.write_text(textwrap.dedent(SWEEP))
    env = {**ENV, "FAITHBENCH_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}

    def sweep() -> list[dict]:
        done = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True,
                              env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]

    first, again = sweep(), sweep()
    base = np.array(first[0]["values"])
    assert len(base) == 4 and np.abs(base).min() > 0
    for row, gain in zip(first, (1.0, 2.0, 3.0)):
        np.testing.assert_allclose(row["values"], gain * base, rtol=1e-5)
        assert row["computed"] == 1 and row["cached"] == 0
    assert len({row["key"] for row in first}) == 3 and all(r["key"].startswith("source:") for r in first)
    assert [r["key"] for r in again] == [r["key"] for r in first]  # the same file and globals, another process
    assert [r["values"] for r in again] == [r["values"] for r in first]
    assert all(r["computed"] == 0 and r["cached"] == 1 for r in again)
