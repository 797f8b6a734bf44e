"""Executors map :func:`~faithbench.runner.group.run_group` over a run's groups.

``local`` runs the groups one after another in this process, writing cache entries as they are
computed. ``ray`` makes each group a Ray task (``num_cpus=cpus_per_task``,
``num_gpus=gpus_per_task``; a task with a GPU computes on it): the task rebuilds its dataset
from the suite entry, trains or loads the checkpoint and runs its cells with a
:class:`~faithbench.runner.deferred.DeferredCache`, which reads the shared cache and *returns*
the entries it computes; the driver writes them (atomically) as each task returns, so exactly
one process writes the cache. Both give the same :class:`~faithbench.runner.group.GroupOutput`
per group, and the driver writes the tables in plan order: the output folders are the same.

A killed driver loses only the groups in flight. Every Ray node must see the cache folder at
the same path (a shared file system) and have faithbench and its plugins installed; a plugin
registered at run time in the driver (not through an entry point) is imported by each task from its
module, which must be importable there. Warnings raised in a task are re-emitted by the driver.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import math
import numbers
import os
import signal
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from faithbench.config_checks import first_line
from faithbench.models.checkpoint import CheckpointError
from faithbench.runner.deferred import DeferredCache, commit
from faithbench.runner.errors import InputDataError, UsageError
from faithbench.runner.group import GroupOutput, run_group
from faithbench.runner.plan import Group
from faithbench.runner.settings import RunSettings
from faithbench.store import Cache, CacheWriteError

EXECUTORS = ("local", "ray")
MAX_RETRIES = 1  # a task whose worker died (killed for memory, node lost) is retried once


@dataclass(frozen=True)
class RayOptions:
    """Where and how Ray runs the groups: ``address`` joins a cluster, else a local instance with
    ``num_cpus`` CPUs is started (or the one already initialised is used); each group is a task
    needing ``cpus_per_task`` CPUs (a finite number > 0) and ``gpus_per_task`` GPUs (a finite number >= 0; a
    fraction packs several tasks on one), else ``UsageError`` on construction."""

    address: str | None = None
    num_cpus: int | None = None
    cpus_per_task: float = 1.0
    gpus_per_task: float = 0.0

    def __post_init__(self) -> None:
        check_task_resources(self.cpus_per_task, self.gpus_per_task,
                             ("RayOptions.cpus_per_task", "RayOptions.gpus_per_task"))


def check_task_resources(cpus: Any, gpus: Any, names: tuple[str, str] = ("cpus_per_task", "gpus_per_task")) -> None:
    """``UsageError`` unless ``cpus`` is a finite number > 0 and ``gpus`` a finite number >= 0 (``names``: how the
    error calls them). 0 CPUs lifted the limit on concurrent groups (a review); NaN passed a ``< 0`` check and
    failed in Ray after it started, exit 1 (a review: ``--gpus-per-task nan``); inf no node has."""
    for name, value, positive in ((names[0], cpus, True), (names[1], gpus, False)):
        number = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if not number or not math.isfinite(value) or not (value > 0 if positive else value >= 0):
            got = value if number else f"{type(value).__name__} {value!r}"
            raise UsageError(f"{name}: expected a finite number {'>' if positive else '>='} 0, got {got}")


def run_groups(groups: list[Group], settings: RunSettings, cache: Cache, executor: str | RayOptions, bar: Any,
               log: Callable[[str], None], outputs: dict[int, GroupOutput]) -> None:
    """Fill ``outputs[i]`` with the output of ``groups[i]`` (as each finishes, so what finished
    before an error is known to the caller)."""
    if isinstance(executor, RayOptions) or executor == "ray":
        _run_on_ray(groups, settings, cache, executor if isinstance(executor, RayOptions) else RayOptions(),
                    bar, log, outputs)
        return
    for i, group in enumerate(groups):
        def progress(done: float, text: str) -> None:
            if text:
                bar.set_postfix_str(text)
            if done:
                bar.update(done)

        out = run_group(group, settings, cache, progress)
        for line in out.log:
            log(line)
        outputs[i] = out


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[Any]:
    """The Ray already initialised in this process, else a new connection to ``address``, else a
    new local instance with ``num_cpus`` CPUs (shut down at the end), never a cluster that ``RAY_ADDRESS`` or
    Ray's last-started-cluster file names (pass that as ``address``)."""
    try:
        import ray
    except ImportError:
        raise UsageError("executor 'ray' needs the ray package: pip install 'faithbench[ray]'") from None
    if ray.is_initialized():
        yield ray
        return
    main = threading.current_thread() is threading.main_thread()
    sigterm = signal.getsignal(signal.SIGTERM) if main else None
    if address:
        _check_reachable(address)
        try:
            _init(ray, sigterm, address=address, log_to_driver=False)
        except ConnectionError as exc:  # bad input (exit 2): nothing was computed yet
            raise UsageError(f"--ray-address {address}: cannot connect to a Ray cluster there ({first_line(exc)}); "
                             "start one with 'ray start --head' on that node, or leave --ray-address out to start a "
                             "local Ray; a cluster with token authentication (InvalidAuthToken above) needs "
                             "RAY_AUTH_MODE=token in this shell too") from None
    else:  # Ray's default niceness 15 starved the tasks on a busy machine (a review: 6 % CPU each; 533 s at 0)
        os.environ.setdefault("RAY_worker_niceness", "0")
        # "local": a new instance even where RAY_ADDRESS or a 'ray start' cluster on this machine would be joined
        # (a review: the driver then joined that cluster, and with --ray-cpus Ray refused num_cpus)
        _init(ray, sigterm, address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    if callable(sigterm):  # Ray replaces it (a review: SIGTERM aborted the driver, exit 134, not 143)
        signal.signal(signal.SIGTERM, sigterm)
    try:
        yield ray
    finally:
        ray.shutdown()
        if callable(sigterm):  # shutdown resets the signal to its default action (helper 119)
            signal.signal(signal.SIGTERM, sigterm)


def _init(ray: Any, sigterm: Any, **options: Any) -> None:
    """``ray.init(**options)``, logging errors only under ``--quiet`` (a review: its start-up line and its
    token-authentication notice printed under --quiet); a SIGTERM during it reaches Ray's own handler,
    installed there, which exits with code 15 and no word (a review): it is handed to ``sigterm``, the
    caller's handler (faithbench's: exit 143 with its line), after Ray's processes are shut down."""
    from faithbench.progress import bars_disabled

    try:
        ray.init(**options, **({"logging_level": logging.ERROR} if bars_disabled() else {}))
    except SystemExit as exc:
        if exc.code != signal.SIGTERM or not callable(sigterm):
            raise
        ray.shutdown()
        sigterm(signal.SIGTERM, None)
        raise


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """A ``host:port`` (or ``ray://host:port``) that takes no TCP connection within ``timeout``
    seconds: bad input at once (Ray 2.60 retried 20 times, about 14 minutes, before its error)."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", or a form Ray reads otherwise: Ray says what it makes of it
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise UsageError(f"--ray-address {address}: cannot connect to a Ray cluster there ({exc}); start one with "
                         "'ray start --head' on that node, or leave --ray-address out to start a local Ray") from None


@dataclass
class TaskOutput:
    """A Ray task's answer: the group's output and the cache entries to commit, or bad input."""

    output: GroupOutput | None
    pending: list[tuple[str, str, str, Any]]
    input_error: str | None = None
    cache_error: tuple[int, str] | None = None  # a CacheWriteError's errno and message: the driver stops
    warnings: list[tuple[type[Warning], str]] = dataclasses.field(default_factory=list)  # the driver re-warns


def group_task(group: Group, settings: RunSettings, cache_root: str, modules: tuple[str, ...] = (),
               origins: tuple[tuple[str, str], ...] = ()) -> TaskOutput:
    """Run one group without writing anything; the driver commits ``pending`` and re-emits the
    task's ``warnings``. ``modules``: those of the plugins the driver registered at run time, imported
    here first; ``origins``: (``"explainer 'x'"``, registry origin) of the driver's entry-point plugins, for the
    error when a worker lacks one. A task given a GPU (``ray.get_gpu_ids()``) computes on it whatever the
    driver's device setting says."""
    with warnings.catch_warnings(record=True) as caught:
        answer = _group_task(group, settings, cache_root, modules, dict(origins))
    answer.warnings = [(w.category, str(w.message)) for w in caught]
    return answer


def _group_task(group: Group, settings: RunSettings, cache_root: str, modules: tuple[str, ...],
                origins: dict[str, str]) -> TaskOutput:
    from faithbench.config import ensure_plugins_loaded

    ensure_plugins_loaded()
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:  # a review: every cell failed as "unknown explainer ...; valid names"
            return TaskOutput(None, [], input_error=(
                f"executor ray: plugin module {module!r}, registered in the driver, cannot be imported on a Ray "
                f"worker ({type(exc).__name__}: {first_line(exc)}); install it with an entry point on every node, "
                "or put its folder on the workers' PYTHONPATH (ray.init(runtime_env={'env_vars': {'PYTHONPATH': "
                "...}}) before the run)"))
    unknown = _unknown_here(group, settings)
    if origins.get(unknown, "").startswith("entry-point:"):  # a review: the advice was to do what was done
        dist = origins[unknown].removeprefix("entry-point:")
        return TaskOutput(None, [], input_error=(
            f"executor ray: {unknown} comes from an entry point of distribution {dist!r} in the driver, which is "
            f"not installed on a Ray worker: install {dist!r} on every node (or in the cluster's runtime_env)"))
    if unknown:  # registered in the driver by a module other than its class's (an alias of a built-in class)
        return TaskOutput(None, [], input_error=(
            f"executor ray: {unknown} is registered in the driver but not on a Ray worker, after importing "
            f"{', '.join(modules) or 'no plugin module'}: register it in the module that defines its class, or "
            "through an entry point"))
    try:
        import ray

        if ray.is_initialized() and ray.get_gpu_ids():  # get_gpu_ids would start a Ray outside one
            settings = dataclasses.replace(settings, device="cuda")
    except Exception:  # not inside a Ray worker (tests call this directly)
        pass
    torch.set_num_threads(settings.threads)  # the driver's: same checkpoint keys, same numbers
    store = DeferredCache(cache_root)
    try:
        out = run_group(group, settings, store)
    except (InputDataError, CheckpointError) as exc:
        return TaskOutput(None, [], input_error=str(exc))
    except CacheWriteError as exc:  # a lock file it cannot make: the run stops, as a local one does
        return TaskOutput(None, [], cache_error=(exc.errno or 0, str(exc)))
    except Exception as exc:
        out = GroupOutput.failed(group, "task", exc)
    return TaskOutput(out, store.pending)


def _plugin_names(groups: list[Group], settings: RunSettings) -> list[tuple[Any, str]]:
    """(registry, name) of every dataset, model and explainer of ``groups`` and metric of the run, once
    each, sorted by kind and name."""
    from faithbench.registry import datasets, explainers, metrics, models

    names = {(explainers, c.explainer.name) for g in groups for c in g.cells}
    names |= {(metrics, m.name) for m in settings.metrics}
    names |= {(datasets, g.dataset.name) for g in groups} | {(models, g.model.name) for g in groups}
    return sorted(names, key=lambda pair: (pair[0].kind, pair[1]))


def _unknown_here(group: Group, settings: RunSettings) -> str:
    """The first of the group's plugins and the run's metrics that this process does not know."""
    names = _plugin_names([group], settings)
    return next((f"{registry.singular} {name!r}" for registry, name in names if name not in registry), "")


def entry_point_origins(groups: list[Group], settings: RunSettings) -> tuple[tuple[str, str], ...]:
    """(``"explainer 'x'"``, ``"entry-point:<dist>"``) of each of the run's plugins the driver has from an entry
    point: a worker without that distribution cannot know the name (:func:`group_task` says which to install)."""
    pairs = [(f"{registry.singular} {name!r}", registry.origin(name) if name in registry else "")
             for registry, name in _plugin_names(groups, settings)]
    return tuple((label, origin) for label, origin in pairs if origin.startswith("entry-point:"))


def runtime_plugin_modules(groups: list[Group], settings: RunSettings) -> tuple[str, ...]:
    """The modules of the run's plugins registered at run time (origin ``module:<name>``), which a
    Ray worker must import; ``UsageError`` for one defined in ``__main__``, which no worker can."""
    modules = set()
    for registry, name in _plugin_names(groups, settings):
        origin = registry.origin(name) if name in registry else ""
        if origin == "module:__main__":
            raise UsageError(f"executor ray: {registry.singular} {name!r} is defined in the script being run "
                             "(__main__), which Ray workers cannot import: move it into a module of its own")
        if origin.startswith("module:"):
            modules.add(origin.removeprefix("module:"))
    return tuple(sorted(modules))


def _check_resources(ray: Any, options: RayOptions) -> None:
    """A task that no node can hold waits in Ray forever, without a word (a review: ``--gpus-per-task 1``
    on a machine without a GPU, ``--cpus-per-task 4`` with ``--ray-cpus 1``): bad input on a local
    instance; a warning on a cluster (``--ray-address``), whose autoscaler may add such a node."""
    nodes = [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive", True)]
    for flag, need, key in (("--cpus-per-task", options.cpus_per_task, "CPU"),
                            ("--gpus-per-task", options.gpus_per_task, "GPU")):
        most = max((float(r.get(key, 0)) for r in nodes), default=0.0)
        if need > most:
            where = f"the Ray cluster at {options.address}" if options.address else "the local Ray instance"
            message = f"{flag} {need:g}: no node of {where} has more than {most:g} {key}s, so no task could start"
            if not options.address:
                raise UsageError(f"{message}; lower {flag}" + (" or raise --ray-cpus" if key == "CPU" else ""))
            warnings.warn(f"{message} until a node with them joins", UserWarning, stacklevel=2)


def _run_on_ray(groups: list[Group], settings: RunSettings, cache: Cache, options: RayOptions, bar: Any,
                log: Callable[[str], None], outputs: dict[int, GroupOutput]) -> None:
    modules, origins = runtime_plugin_modules(groups, settings), entry_point_origins(groups, settings)
    with ray_session(options.address, options.num_cpus) as ray:
        _check_resources(ray, options)
        task = ray.remote(group_task).options(num_cpus=options.cpus_per_task, num_gpus=options.gpus_per_task,
                                              max_retries=MAX_RETRIES)
        root = str(Path(cache.root).resolve())
        shared = ray.put(settings)
        refs = {task.remote(group, shared, root, modules, origins): i for i, group in enumerate(groups)}
        waiting = list(refs)
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            for ref in done:
                i = refs.pop(ref)  # no reference left: the object store frees the answer (a review: it grew by
                group = groups[i]  # every group's maps until the run ended)
                try:
                    answer = ray.get(ref)
                except ray.exceptions.RayError as exc:  # the worker died or the task was lost
                    answer = TaskOutput(GroupOutput.failed(group, "task", exc), [])
                for category, message in answer.warnings:
                    warnings.warn(message, category, stacklevel=1)
                if answer.input_error or answer.cache_error:
                    for other in waiting:
                        ray.cancel(other)
                    if answer.cache_error:
                        raise CacheWriteError(*answer.cache_error)
                    raise InputDataError(answer.input_error)
                commit(cache, answer.pending)
                assert answer.output is not None
                for line in answer.output.log:
                    log(line)
                outputs[i] = answer.output
                bar.set_postfix_str(f"{group.dataset.label}/{group.model.label}/seed{group.seed}")
                bar.update(len(group.cells))
