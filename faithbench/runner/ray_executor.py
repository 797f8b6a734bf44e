"""The Ray executor: each cell a Ray task; the driver alone writes the cache and the tables.

Division of work:

1. The driver trains (or loads) every checkpoint first, into the cache
   (:func:`faithbench.runner.run.run_suite`), so no two tasks train the same model.
2. Each cell becomes one task (``num_cpus=cpus_per_task``, ``num_gpus=gpus_per_task``). A task
   rebuilds its dataset from the suite entry, loads the checkpoint from the shared cache
   folder, streams its samples, and computes with a :class:`DeferredCache`: it reads entries
   that exist and *returns* the ones it computes, with its rows. It never writes.
3. As each task returns, the driver writes its cache entries (atomically) and keeps its rows;
   the tables are written in plan order at the end, so they are identical to a local run's.

A killed driver loses only the cells in flight. Every node must see the cache folder at the
same path (a shared file system) and have faithbench and its plugins installed; plugins
registered at runtime in the driver only (not through an entry point) do not exist in tasks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from faithbench.config import PluginSpec, RegionSpec, Suite
from faithbench.store import Cache
from faithbench.runner.errors import InputDataError, UsageError
from faithbench.runner.execute import CellResult, DeferredCache, commit, failure_row, iter_batches, run_cell
from faithbench.runner.plan import Cell, Group

MAX_RETRIES = 1  # a task whose worker died (killed for memory, node lost) is retried once


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[Any]:
    """The Ray already initialised in this process, else a new connection to ``address``, else a
    new local instance with ``num_cpus`` CPUs (shut down at the end)."""
    try:
        import ray
    except ImportError:
        raise UsageError("executor 'ray' needs the ray package: pip install 'faithbench[ray]'") from None
    if ray.is_initialized():
        yield ray
        return
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def cell_task(cell: Cell, cache_root: str, metric_specs: list[PluginSpec], n_samples: int, batch_size: int,
              target_mode: str, needs_permuted: bool, subset: str = "all",
              regions: RegionSpec | None = None) -> CellResult:
    """Run one cell without writing anything; the driver commits ``result.pending``."""
    from faithbench.config import ensure_plugins_loaded
    from faithbench.models.checkpoint import CheckpointError
    from faithbench.runner.run import build_splits, open_group

    ensure_plugins_loaded()
    store = DeferredCache(cache_root)
    try:
        splits = build_splits(cell.dataset)
        data, ckpt, twin = open_group(Group(cell.dataset, cell.model, cell.seed, (cell,)), splits, store,
                                      needs_permuted)
        if ckpt.origin == "trained" or (twin is not None and twin.origin == "trained"):
            raise RuntimeError(f"checkpoint of {cell.model.label} was not in the cache at {cache_root}: every Ray "
                               f"node must see the driver's cache folder at the same path")
        store.pending.clear()  # nothing of the checkpoint's to commit
        batches = iter_batches(splits[2], cell.dataset.label, n_samples, batch_size, ckpt.model, target_mode,
                               subset)
        result = run_cell(cell, data, metric_specs, store, batches, regions)
    except (InputDataError, CheckpointError) as exc:
        return CellResult(cell, input_error=str(exc))
    except Exception as exc:
        result = CellResult(cell, failures=[failure_row(cell, "task", exc)])
    result.pending = store.pending
    return result


def run_cells_on_ray(cells: list[Cell], suite: Suite, cache: Cache, n_samples: int, needs_permuted: bool, *,
                     address: str | None = None, num_cpus: int | None = None, cpus_per_task: float = 1.0,
                     gpus_per_task: float = 0.0, bar: Any = None) -> list[CellResult]:
    """Run ``cells`` as Ray tasks; write each task's cache entries as it returns. Returns the
    results in completion order. Bad input met in a task cancels the rest and raises."""
    with ray_session(address, num_cpus) as ray:
        task = ray.remote(cell_task).options(num_cpus=cpus_per_task, num_gpus=gpus_per_task,
                                             max_retries=MAX_RETRIES)
        root = str(Path(cache.root).resolve())
        specs = ray.put(list(suite.metrics))
        refs = {task.remote(cell, root, specs, n_samples, suite.batch_size, suite.target, needs_permuted,
                            suite.subset, suite.regions): cell
                for cell in cells}
        waiting, out = list(refs), []
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            for ref in done:
                cell = refs[ref]
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as exc:  # the worker died or the task was lost
                    result = CellResult(cell, failures=[failure_row(cell, "task", exc)])
                if result.input_error:
                    for other in waiting:
                        ray.cancel(other)
                    raise InputDataError(result.input_error)
                commit(cache, result.pending)
                result.pending = []
                out.append(result)
                if bar is not None:
                    bar.set_postfix_str(cell.name)
                    bar.update(1)
        return out
