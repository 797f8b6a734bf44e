"""What a Ray task needs from the driver beyond the group (a held-out review of the Ray executor):
the modules of plugins registered at run time, the warnings raised in the task, the driver's
SIGTERM handler. The task function is called directly here; a real Ray runs it in test_ray.py."""

from __future__ import annotations

import logging
import types
import warnings

import pytest
import torch

from faithbench.config import suite_from_dict
from faithbench.explainers.base import Explainer
from faithbench.registry import explainers
from faithbench.runner import executors
from faithbench.runner.errors import InputDataError, UsageError
from faithbench.runner.plan import plan
from faithbench.store import CacheCorruptionWarning

SUITE = {"name": "w", "samples": 4, "batch_size": 4,
         "datasets": [{"name": "phantom_cxr", "params": {"n": 16, "size": 32}}],
         "models": [{"name": "small_cnn", "recipe": {"epochs": 1}}], "explainers": ["saliency"],
         "metrics": ["sparseness"]}


def _registered(name: str, module: str):
    cls = type(name, (Explainer,), {"__module__": module, "explain": lambda self, model, x, target: x.sum(1)})
    explainers.register(name)(cls)
    return cls


def test_a_task_imports_the_drivers_runtime_plugin_modules_or_says_why_it_cannot(tmp_path):
    # before: every cell failed as "unknown explainer 'x'; valid names: ..." (a typo's message), the run "partial"
    group = plan(suite_from_dict(SUITE))[0]
    answer = executors.group_task(group, None, str(tmp_path), modules=("faithbench_no_such_plugin_module",))
    assert answer.output is None and answer.input_error.startswith(
        "executor ray: plugin module 'faithbench_no_such_plugin_module', registered in the driver, cannot be "
        "imported on a Ray worker (ModuleNotFoundError: No module named 'faithbench_no_such_plugin_module'); ")
    assert "PYTHONPATH" in answer.input_error


def test_the_runtime_plugin_modules_of_a_run_and_a_script_plugin_refused():
    _registered("wk_local_plugin", "my_local_plugins")
    _registered("wk_script_plugin", "__main__")
    try:
        metrics = types.SimpleNamespace(metrics=())
        groups = plan(suite_from_dict({**SUITE, "explainers": ["saliency", "wk_local_plugin"]}))
        assert executors.runtime_plugin_modules(groups, metrics) == ("my_local_plugins",)
        assert executors.runtime_plugin_modules(plan(suite_from_dict(SUITE)), metrics) == ()  # built-ins only
        with pytest.raises(UsageError, match=r"^executor ray: explainer 'wk_script_plugin' is defined in the script "
                                             r"being run \(__main__\), which Ray workers cannot import"):
            executors.runtime_plugin_modules(plan(suite_from_dict({**SUITE, "explainers": ["wk_script_plugin"]})),
                                             metrics)
    finally:
        explainers.unregister("wk_local_plugin")
        explainers.unregister("wk_script_plugin")


def test_a_tasks_warnings_come_back_to_the_driver(tmp_path, monkeypatch):
    # before: a corrupted cache entry recomputed on a worker was told to no one (locally: a warning line)
    def run_group(group, settings, store):
        warnings.warn("cache entry saliency/ab12 is corrupted; recomputing", CacheCorruptionWarning)
        raise InputDataError("stop here")

    monkeypatch.setattr(executors, "run_group", run_group)
    settings = types.SimpleNamespace(threads=torch.get_num_threads(), metrics=())
    answer = executors.group_task(plan(suite_from_dict(SUITE))[0], settings, str(tmp_path))
    assert answer.input_error == "stop here"
    assert answer.warnings == [(CacheCorruptionWarning, "cache entry saliency/ab12 is corrupted; recomputing")]


def test_a_name_the_worker_does_not_know_after_the_imports_stops_the_run(tmp_path):
    # helper 119: a built-in class registered under a new name from the user's module has its class's
    # module (faithbench's), so no module was imported and every cell failed as "unknown explainer"
    from faithbench.explainers.gradient import SaliencyExplainer
    explainers.register("wk_alias")(type("WkAlias", (SaliencyExplainer,), {"__module__": "faithbench.wk"}))
    try:
        group = plan(suite_from_dict({**SUITE, "explainers": ["wk_alias"]}))[0]
    finally:
        explainers.unregister("wk_alias")  # as on a worker
    settings = types.SimpleNamespace(threads=torch.get_num_threads(), metrics=())
    answer = executors.group_task(group, settings, str(tmp_path))
    assert answer.input_error == ("executor ray: explainer 'wk_alias' is registered in the driver but not on a Ray "
                                  "worker, after importing no plugin module: register it in the module that defines "
                                  "its class, or through an entry point")


def test_an_entry_point_plugin_the_worker_lacks_names_its_distribution(tmp_path):
    """A held-out review: an explainer of an entry point installed on the driver only was met with "register it
    ... through an entry point", which it was; the distribution to install on the workers was not named."""
    from faithbench.explainers.gradient import SaliencyExplainer
    explainers.register("wk_ep", origin="entry-point:r7hidden")(type("WkEp", (SaliencyExplainer,), {}))
    try:
        group = plan(suite_from_dict({**SUITE, "explainers": ["wk_ep"]}))[0]
        settings = types.SimpleNamespace(threads=torch.get_num_threads(), metrics=())
        origins = executors.entry_point_origins([group], settings)
    finally:
        explainers.unregister("wk_ep")  # as on a worker without the distribution
    assert origins == (("explainer 'wk_ep'", "entry-point:r7hidden"),)
    answer = executors.group_task(group, settings, str(tmp_path), (), origins)
    assert answer.input_error == ("executor ray: explainer 'wk_ep' comes from an entry point of distribution "
                                  "'r7hidden' in the driver, which is not installed on a Ray worker: install "
                                  "'r7hidden' on every node (or in the cluster's runtime_env)")


SIGTERM_SCRIPT = """
import signal, sys
from faithbench.runner.executors import ray_session
signal.signal(signal.SIGTERM, lambda s, f: (print("handled", flush=True), sys.exit(0)))
with ray_session(num_cpus=1):
    print("inside", signal.getsignal(signal.SIGTERM).__name__, flush=True)
signal.raise_signal(signal.SIGTERM)  # while the driver writes its tables
print("not reached", flush=True)
"""


def test_a_local_ray_keeps_the_drivers_sigterm_handler_during_and_after_the_session():
    """Helper 116: Ray replaced the CLI's handler (exit 134, not 143, on SIGTERM); helper 119: its
    shutdown reset the signal to its default action, so a SIGTERM while the tables were written killed
    the driver outright. In a child process: a regression must not kill the test session."""
    pytest.importorskip("ray", reason="ray is not installed")
    import os
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", SIGTERM_SCRIPT], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0 and done.stdout.split() == ["inside", "<lambda>", "handled"], done.stderr[-2000:]


NICE_SCRIPT = """
import os, ray
from faithbench.runner.executors import ray_session
with ray_session(num_cpus=1):
    print(ray.get(ray.remote(lambda: os.nice(0)).remote()), flush=True)
"""


def test_a_local_ray_started_by_faithbench_runs_its_tasks_at_normal_priority():
    """A review: Ray's workers ran at niceness 15 and crawled on a busy machine (6 % CPU each). Without an
    address the instance is a new local one, whatever RAY_ADDRESS (or a 'ray start' cluster here) says (a review:
    the driver joined that cluster, and with --ray-cpus Ray refused num_cpus)."""
    pytest.importorskip("ray", reason="ray is not installed")
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "RAY_worker_niceness"}
    done = subprocess.run([sys.executable, "-c", NICE_SCRIPT], capture_output=True, text=True, timeout=300,
                          env={**env, "PYTHONPATH": os.pathsep.join(sys.path), "RAY_ADDRESS": "127.0.0.1:9"})
    assert done.returncode == 0 and done.stdout.split()[-1] == str(os.nice(0)), done.stderr[-2000:]


def test_a_task_no_node_can_hold_is_refused_on_a_local_ray_and_warned_of_on_a_cluster():
    """Helper 132: --gpus-per-task 1 without a GPU, or --cpus-per-task 4 with --ray-cpus 1, waited
    in Ray for ever without a word (still waiting after 200 s)."""
    two_nodes = types.SimpleNamespace(nodes=lambda: [
        {"Alive": True, "Resources": {"CPU": 2.0}}, {"Alive": True, "Resources": {"CPU": 3.0, "GPU": 1.0}},
        {"Alive": False, "Resources": {"CPU": 64.0, "GPU": 8.0}}])  # a dead node holds nothing
    executors._check_resources(two_nodes, executors.RayOptions(cpus_per_task=3, gpus_per_task=1))
    with pytest.raises(UsageError, match=r"^--cpus-per-task 4: no node of the local Ray instance has more than 3 "
                                         r"CPUs, so no task could start; lower --cpus-per-task or raise --ray-cpus$"):
        executors._check_resources(two_nodes, executors.RayOptions(cpus_per_task=4))  # 5 CPUs in all, 3 at most
    with pytest.raises(UsageError, match=r"^--gpus-per-task 2: .* more than 1 GPUs, so no task could start; lower "
                                         r"--gpus-per-task$"):
        executors._check_resources(two_nodes, executors.RayOptions(gpus_per_task=2))
    with pytest.warns(UserWarning, match=r"--gpus-per-task 2: no node of the Ray cluster at h:1 has more than 1 GPUs, "
                                         r"so no task could start until a node with them joins"):
        executors._check_resources(two_nodes, executors.RayOptions(address="h:1", gpus_per_task=2))


def test_a_sigterm_while_ray_starts_reaches_the_drivers_handler():
    """Helper 137: Ray's own handler, installed during ray.init, exited with code 15 and no word; the
    driver's handler (the CLI's: exit 143 with its line) now gets it, after Ray is shut down."""
    calls = []

    class FakeRay:
        def init(self, **options):
            calls.append(("init", options))
            raise SystemExit(15)  # what Ray's handler does on SIGTERM

        def shutdown(self):
            calls.append(("shutdown",))

    class Stopped(Exception):
        pass

    def handler(signum, frame):
        calls.append(("handler", signum))
        raise Stopped

    with pytest.raises(Stopped):
        executors._init(FakeRay(), handler, num_cpus=1)
    assert calls == [("init", {"num_cpus": 1}), ("shutdown",), ("handler", 15)]
    with pytest.raises(SystemExit):  # another exit code, or no handler of the driver's: Ray's exit stands
        executors._init(FakeRay(), None, num_cpus=1)


@pytest.mark.parametrize("quiet, expected", [("1", {"num_cpus": 1, "logging_level": logging.ERROR}),
                                             ("", {"num_cpus": 1})])
def test_ray_logs_errors_only_under_quiet(monkeypatch, quiet, expected):
    """A review: Ray's start-up line and its token-authentication notice printed under --quiet."""
    from faithbench.runner import executors

    calls = []

    class FakeRay:
        def init(self, **options):
            calls.append(options)

    monkeypatch.setenv("FAITHBENCH_QUIET", quiet)
    executors._init(FakeRay(), None, num_cpus=1)
    assert calls == [expected]


@pytest.mark.parametrize("field, value, expected", [
    ("cpus_per_task", float("nan"), "RayOptions.cpus_per_task: expected a finite number > 0, got nan"),
    ("cpus_per_task", float("inf"), "RayOptions.cpus_per_task: expected a finite number > 0, got inf"),
    ("cpus_per_task", 0, "RayOptions.cpus_per_task: expected a finite number > 0, got 0"),
    ("cpus_per_task", True, "RayOptions.cpus_per_task: expected a finite number > 0, got bool True"),
    ("gpus_per_task", float("nan"), "RayOptions.gpus_per_task: expected a finite number >= 0, got nan"),
    ("gpus_per_task", float("inf"), "RayOptions.gpus_per_task: expected a finite number >= 0, got inf"),
    ("gpus_per_task", -0.25, "RayOptions.gpus_per_task: expected a finite number >= 0, got -0.25"),
    ("gpus_per_task", "1", "RayOptions.gpus_per_task: expected a finite number >= 0, got str '1'"),
])
def test_ray_options_refuse_what_ray_cannot_schedule(field, value, expected):
    """A review: NaN GPUs per task passed and failed inside Ray after it started (exit 1); 0 CPUs lifted the
    limit on concurrent groups; the API's RayOptions took both without a check."""
    with pytest.raises(UsageError) as caught:
        executors.RayOptions(**{field: value})
    assert str(caught.value) == expected


def test_ray_options_take_fractions_and_zero_gpus():
    options = executors.RayOptions(cpus_per_task=0.5, gpus_per_task=0)
    assert (options.cpus_per_task, options.gpus_per_task) == (0.5, 0)
    assert executors.RayOptions(cpus_per_task=2, gpus_per_task=0.25).gpus_per_task == 0.25
