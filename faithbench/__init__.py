"""faithbench: how faithful are saliency maps of medical-imaging classifiers?

Public API::

    import faithbench
    faithbench.list_explainers("*cam*")
    explainer = faithbench.create_explainer("gradcam")            # built-ins and plugins
    metric = faithbench.create_metric("deletion_auc", steps=20)
    dataset = faithbench.create_dataset("phantom_cxr", split="test", n=64)
    model = faithbench.create_model("small_cnn", in_chans=1, num_classes=2, input_size=(64, 64))
    suite = faithbench.load_suite("quick")                        # a name, a YAML path or a dict
    result = faithbench.run(suite, out_dir="reports/quick")
"""

from __future__ import annotations

import contextlib
import numbers
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from faithbench import registry
from faithbench.registry import Registry, RegistryError

__version__ = "0.1.0"


def _check_type(where: str, name: str, value: Any, types: type | tuple[type, ...], expected: str) -> None:
    """A TypeError naming the function, the parameter and what it expects (a review: ``run(5)``,
    ``out_dir=42`` and ``list_metrics(3)`` gave "expected str, bytes or os.PathLike object, not int")."""
    if not isinstance(value, types) or isinstance(value, bool):
        raise TypeError(f"{where}: {name} expects {expected}, got {type(value).__name__}")


def _pattern(where: str, pattern: Any) -> str:
    _check_type(where, "pattern", pattern, str, "a shell-style pattern (a str such as '*cam*')")
    return pattern


def _name(where: str, kind: str, name: Any, example: str) -> str:
    """The registry name a factory was given, or a TypeError naming ``name`` (a review: ``create_metric(5)`` was a
    bare AttributeError "'int' object has no attribute 'lower'")."""
    _check_type(where, "name", name, str, f"a registered {kind} name (a str such as {example!r})")
    return name


def _plugins() -> None:
    from faithbench.config import ensure_plugins_loaded

    ensure_plugins_loaded()


def list_explainers(pattern: str = "*") -> list[str]:
    """The registered explainer names (built-ins and installed plugins) matching the shell-style
    ``pattern`` (``"*cam*"``), sorted; :func:`create_explainer` builds one."""
    _plugins()
    return registry.explainers.names(_pattern("list_explainers", pattern))


def list_metrics(pattern: str = "*") -> list[str]:
    """The registered metric names matching the shell-style ``pattern`` (``"*auc*"``), sorted;
    :func:`create_metric` builds one."""
    _plugins()
    return registry.metrics.names(_pattern("list_metrics", pattern))


def list_datasets(pattern: str = "*") -> list[str]:
    """The registered dataset names matching the shell-style ``pattern`` (``"phantom*"``), sorted;
    :func:`create_dataset` builds one."""
    _plugins()
    return registry.datasets.names(_pattern("list_datasets", pattern))


def list_models(pattern: str = "*") -> list[str]:
    """The registered architecture names matching the shell-style ``pattern``, sorted (a suite's
    model entry may also name ``timm:``, ``torchvision:``, ``monai:`` or ``package.module:callable``
    builders, which are not listed); :func:`create_model` builds one."""
    _plugins()
    return registry.models.names(_pattern("list_models", pattern))


def create_explainer(name: str, **params: Any) -> Any:
    """An explainer by registry name (built-in or plugin), with its parameters checked:
    ``explainer(model, x, target) -> saliency (B, *spatial)``."""
    return registry.explainers.get(_name("create_explainer", "explainer", name, "gradcam"))(**params)


def create_metric(name: str, **params: Any) -> Any:
    """A metric by registry name (built-in or plugin), with its parameters checked. Called on an
    :class:`~faithbench.metrics.base.EvalContext` holding the inputs and the saliency:
    ``metric(EvalContext(model, x, target, label, saliency, masks={}, predict=ForwardCounter(model)))``
    (both from :mod:`faithbench.metrics.base`)
    returns a :class:`~faithbench.metrics.base.MetricOutput` whose ``value`` is (B,)."""
    return registry.metrics.get(_name("create_metric", "metric", name, "deletion_auc"))(**params)


def _check_params(name: str, target: Any, params: dict[str, Any]) -> None:
    """A :class:`~faithbench.configurable.ParameterError` for a parameter ``target`` does not take or a
    value of the wrong type, as a suite's validation gives (a review: ``create_dataset(..., sise=3)`` was a
    raw TypeError where ``create_metric`` names the parameter and the valid ones)."""
    from faithbench.config_checks import check_kwargs
    from faithbench.config_types import check_param_types
    from faithbench.configurable import ParameterError

    check_kwargs(name, target, params, ParameterError, part="")
    check_param_types(name, target, params, ParameterError, part="")


def create_dataset(name: str, split: str = "test", **params: Any) -> Any:
    """A split (``train``, ``val`` or ``test``) of a dataset by registry name, with its parameters
    checked (:class:`~faithbench.configurable.ParameterError`)."""
    from faithbench.configurable import ParameterError

    cls = registry.datasets.get(_name("create_dataset", "dataset", name, "phantom_cxr"))
    if split not in ("train", "val", "test"):
        raise ParameterError(f"{name}: split expects 'train', 'val' or 'test', got {split!r}")
    _check_params(name, cls, params)
    return cls(split=split, **params)


def create_model(name: str, *, in_chans: int, num_classes: int, input_size: tuple[int, ...], **params: Any) -> Any:
    """An architecture by registry name, built for ``in_chans`` channels, ``num_classes`` classes
    and the spatial ``input_size`` (2 or 3 ints; random init; a suite entry adds weights or a recipe),
    with its parameters checked (:class:`~faithbench.configurable.ParameterError`)."""
    from faithbench.configurable import ParameterError
    from faithbench.models.architectures import build_model

    builder = registry.models.get(_name("create_model", "model", name, "small_cnn"))
    for key, value in (("in_chans", in_chans), ("num_classes", num_classes)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:  # a review: 0 classes
            raise ParameterError(f"{name}: {key} expects an int >= 1, got {value!r}")
    if (not isinstance(input_size, (tuple, list)) or len(input_size) not in (2, 3)
            or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 1 for n in input_size)):
        raise ParameterError(f"{name}: input_size expects the spatial size, 2 or 3 ints >= 1 such as (64, 64), "
                             f"got {input_size!r}")
    _check_params(name, builder, params)
    return build_model(name, int(in_chans), int(num_classes), tuple(int(n) for n in input_size), **params)


def load_suite(suite: str | Path | dict[str, Any]) -> Any:
    """Load and validate a suite: a YAML path, a built-in name (``quick``) or a dict of suite keys."""
    from faithbench.config import load_suite as _load

    _check_type("load_suite", "suite", suite, (str, os.PathLike, dict), "a path, a built-in suite name or a dict")
    return _load(suite)


_RUN_SETTINGS = ("limit", "device", "cache", "executor", "progress", "log", "report")


def run(suite: Any = "quick", out_dir: str | Path | None = None, **kwargs: Any) -> Any:
    """Run a suite (a :class:`~faithbench.config.Suite`, a dict of suite keys, a YAML path or a
    built-in name) into ``out_dir`` (default ``reports/<suite name>``); returns a
    :class:`~faithbench.runner.result.RunResult`: its ``status`` is ``ok``, ``partial`` when some cells
    failed or ``failed`` when cells failed and no result row was computed (``faithbench run``'s exit
    codes 0, 3 and 1); the tidy tables as DataFrames (``results``, ``curves``, ``models``, ``cost``,
    ``skipped``, ``failures``, ``regions``); ``computed``, ``cached`` and ``device``.

    Keyword arguments, those of ``faithbench run``'s flags: ``limit`` (cap on the samples per
    dataset, ``--limit``: an int >= 1), ``device`` (``--device``, or a ``torch.device``; default the suite's, ``auto``),
    ``cache`` (a folder, ``--cache``, or a :class:`~faithbench.store.Cache`; default ``$FAITHBENCH_CACHE`` or
    ``~/.cache/faithbench``), ``executor`` (``local``, ``ray`` or a
    :class:`~faithbench.runner.executors.RayOptions`), ``progress`` (False: no progress bars,
    ``--quiet``; ``FAITHBENCH_QUIET=1`` silences them too), ``log`` (a callable taking each log line, and
    faithbench's warnings such as "model at chance" and the suite's validation warnings, such as "no 'random'
    control"; default ``print``, the warnings then to stderr) and
    ``report`` (False: the tables only, the checkpoints' warnings still logged;
    :func:`~faithbench.reports.writer.build_report` builds the rest later). The caller's torch (the CPU's,
    and every GPU's on a CUDA run or where CUDA was started), NumPy
    and ``random`` generators are as they were after the run.

    Raises (each importable from ``faithbench``): :class:`TypeError` for an argument of the wrong
    type; :class:`~faithbench.config.SuiteError` for a suite that does not validate;
    :class:`~faithbench.runner.errors.UsageError` for an unknown keyword, a bad ``limit``, ``device`` or
    ``executor``, a ``$FAITHBENCH_OFFLINE`` that is neither a true nor a false word, or an ``out_dir`` or cache that
    cannot be written or is ``''`` (omit it for the default);
    :class:`~faithbench.runner.errors.OutputInUseError` when another run writes ``out_dir``;
    :class:`~faithbench.runner.errors.InputDataError` (data it cannot use) and
    :class:`~faithbench.models.errors.CheckpointError` (weights it cannot use) before or while computing;
    :class:`~faithbench.store.CacheWriteError` when the cache cannot store an entry. ``SuiteError``,
    ``UsageError``, ``InputDataError`` and ``CheckpointError`` are ``ValueError``s, ``OutputInUseError`` is
    a ``RuntimeError`` and ``CacheWriteError`` an ``OSError``. A failing explainer or metric is not raised:
    it is a row of ``failures``, and the run goes on."""
    from faithbench.config import Suite
    from faithbench.datasets.paths import OFFLINE_VAR, env_problem
    from faithbench.runner.errors import FolderError, OutputInUseError, UsageError
    from faithbench.runner.run import default_out_dir, run_suite
    from faithbench.runner.settings import check_limit, check_limit_fits, resolve_device
    from faithbench.store import Cache

    _check_type("run", "suite", suite, (str, os.PathLike, dict, Suite),
                "a path, a built-in suite name, a dict or a Suite")
    if out_dir is not None:
        _check_type("run", "out_dir", out_dir, (str, os.PathLike), "a folder (a str or a path) or None")
    if kwargs.get("cache") is not None:
        _check_type("run", "cache", kwargs["cache"], (str, os.PathLike, Cache), "a folder (a str or a path), a Cache "
                    "or None")
    if kwargs.get("log") is not None and not callable(kwargs["log"]):  # else it fails mid-run, at a log line
        raise TypeError(f"run: log expects a callable taking each log line (print, list.append) or None, got "
                        f"{type(kwargs['log']).__name__}")
    _check_run_types(kwargs)
    unknown = sorted(set(kwargs) - set(_RUN_SETTINGS))  # a review: these named run_suite and --device
    if unknown:
        raise UsageError(f"run: unknown setting {unknown[0]!r}; expected {', '.join(_RUN_SETTINGS[:-1])} or report")
    for name, value in (("out_dir", out_dir), ("cache", kwargs.get("cache"))):  # Path('') is the cwd (a review)
        if isinstance(value, (str, os.PathLike)) and not str(os.fspath(value)).strip():
            raise UsageError(f"run: {name}: expected a folder, got an empty string (omit {name} for the default)")
    if problem := env_problem(OFFLINE_VAR):  # read deep in the loaders, where it named a dataset's params (a review)
        raise UsageError(f"run: {problem}")
    limit = check_limit(kwargs.get("limit"), "run: limit")
    if kwargs.get("device") is not None:  # checked here to name run's argument; the run resolves it again
        resolve_device(kwargs["device"], "run: device", cpu="device='cpu'")
    with _suite_warnings_to(kwargs.get("log")):
        if isinstance(suite, Suite):  # built in code: validate the names as a YAML file would be
            import warnings

            from faithbench.config import SuiteWarning, suite_from_dict

            with warnings.catch_warnings():
                if suite.warned:  # load_suite warned of it as it is (a review: each warning twice, from here too)
                    warnings.simplefilter("ignore", SuiteWarning)
                source = suite.source if suite.source != "<suite>" else "<Suite>"  # its file's name, where it has one
                suite = suite_from_dict(suite.model_dump(exclude_unset=True), source=source)
        else:
            suite = load_suite(suite)
    if limit:  # a limit too small for a metric, named as run's argument (a review: "--limit 1: ...")
        check_limit_fits(suite, limit, "run: limit")
    out = Path(out_dir) if out_dir is not None else default_out_dir(suite)
    try:
        return run_suite(suite, out, **kwargs)
    except FolderError as exc:  # named as run's arguments, not the CLI's --out and --cache (a review)
        name = {"out": "out_dir", "cache": f"cache ({exc.origin or 'or $FAITHBENCH_CACHE'})"}[exc.argument]
        hint = "; choose another with cache= or $FAITHBENCH_CACHE" if exc.origin else ""
        raise UsageError(f"run: {name}: {exc.path}: {exc.problem}{hint}") from None
    except OutputInUseError as exc:  # named as run's argument, not the CLI's --out (a held-out review)
        if exc.path is None:
            raise
        raise OutputInUseError(f"run: out_dir: {exc.path}: another faithbench run (pid {exc.holder}) is writing to "
                               f"this output folder; wait for it to finish (or give this run another out_dir)",
                               exc.path, exc.holder) from None


@contextlib.contextmanager
def _suite_warnings_to(log: Any) -> Iterator[None]:
    """Within: the suite's validation warnings (:class:`~faithbench.config.SuiteWarning`: a metric skipped on a
    dataset, a model paired with none, no random control) go to ``log``, one line each, when it is given (a
    held-out review: ``run(log=lines.append)`` got "model at chance" but not these); other warnings, and all
    of them without ``log``, stay Python warnings (stderr). The caller's warning filters apply."""
    if log is None:
        yield
        return
    import warnings

    from faithbench.config import SuiteWarning

    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            yield
    finally:  # also before an error, which may refer to them; outside the recording (shown, not recorded again)
        for w in caught:
            if issubclass(w.category, SuiteWarning):
                log(str(w.message))
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _check_run_types(kwargs: dict[str, Any]) -> None:
    """:func:`run`'s TypeErrors for ``device``, ``executor``, ``progress`` and ``report``; a ``torch.device``
    becomes its name in ``kwargs`` (a review: ``device=torch.device('cpu')`` and ``device=5`` were raw
    AttributeErrors, ``executor=5`` ran locally, ``progress='no'`` drew the bars)."""
    from faithbench.reports.arguments import is_true_or_false
    from faithbench.runner.executors import RayOptions

    device = kwargs.get("device")
    if type(device).__module__ == "torch" and type(device).__name__ == "device":
        kwargs["device"] = device = str(device)  # validated as the string it names: 'cuda:1'
    if device is not None:
        _check_type("run", "device", device, str, "a device name ('auto', 'cpu', 'cuda', 'cuda:N'), a "
                    "torch.device or None")
    if kwargs.get("executor") is not None:
        _check_type("run", "executor", kwargs["executor"], (str, RayOptions), "'local', 'ray', a RayOptions or None")
    for name in (n for n in ("progress", "report") if n in kwargs):
        if not is_true_or_false(kwargs[name]):
            raise TypeError(f"run: {name} expects True or False, got {type(kwargs[name]).__name__}")
        kwargs[name] = bool(kwargs[name])  # np.True_ as True


# the errors a user catches and what a run returns, from their modules on first use: `import faithbench` stays
# light (no torch, pandas or pydantic)
_LAZY = {"SuiteError": "faithbench.config", "ParameterError": "faithbench.configurable",
         "UsageError": "faithbench.runner.errors", "InputDataError": "faithbench.runner.errors",
         "OutputInUseError": "faithbench.runner.errors", "CheckpointError": "faithbench.models.errors",
         "CacheWriteError": "faithbench.store", "RunFolderError": "faithbench.reports.writer",
         "RunResult": "faithbench.runner.result", "build_report": "faithbench.reports.writer"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'faithbench' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["Registry", "RegistryError", "registry", "list_explainers", "list_metrics", "list_datasets",
           "list_models", "create_explainer", "create_metric", "create_dataset", "create_model", "load_suite",
           "run", "__version__", *_LAZY]
