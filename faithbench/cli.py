"""``faithbench run | list | validate | report``.

Exit codes: 0 success (every cell ran, or was skipped as unsupported, and some result was
computed); 1 a run that failed while computing (every cell failed, or the run stopped), or a
``list`` pattern that matches nothing; 2 bad input (a suite, a name, a parameter, a file, a
sample), a suite of which nothing applies (validation refuses one where no metric applies to
any dataset or no explainer supports any model; the run, when every cell or metric was skipped
otherwise: no result row; the tables and ``skipped.csv`` with the reasons are written), or bad
usage (an output folder another run is writing, an unwritable ``--out`` or cache); 3 partial:
some cells failed (``failures.csv`` lists them) and the tables hold every other cell; 130
interrupted (Ctrl-C), 143 terminated (SIGTERM), 141 standard output closed (``faithbench list | head``).
Errors are one line, usage errors too (``faithbench: error: argument --limit: ...``, not argparse's usage block
first); ``--debug`` (before or after the sub-command) shows the traceback.
``--quiet`` (of ``run`` and ``report``) silences every progress bar, training bars included
(``FAITHBENCH_QUIET=1``, :mod:`faithbench.progress`).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import traceback
import warnings
from pathlib import Path
from typing import Any, NoReturn

from faithbench.configurable import ParameterError, installed_version
from faithbench.listing import describe, first_sentence, parameters, write_lines
from faithbench.registry import RegistryError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_PARTIAL = 0, 1, 2, 3


class InputError(Exception):
    """Bad input from the user: exit code 2."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's or ``kill``'s stop): handled like Ctrl-C, exit code 143."""


class _Parser(argparse.ArgumentParser):  # its sub-commands' parsers too (add_subparsers' parser_class)
    def error(self, message: str) -> NoReturn:  # one line, as the README promises, not the usage block first
        self.exit(EXIT_BAD_INPUT, f"faithbench: error: {message} (see {self.prog} --help)\n")


_SIGTERM = threading.Event()  # set by the handler: Ray's wait re-raises a plain KeyboardInterrupt (a review)


def _on_sigterm(signum: int, frame: object) -> None:
    _SIGTERM.set()
    raise Terminated()


def _load_suite(name: str) -> object:
    """``load_suite``, its warnings shown by :func:`_show_warning` (also when it raises: an error
    may refer to them)."""
    from faithbench import config

    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", config.SuiteWarning)
            return config.load_suite(name)
    finally:  # also before an error, which may refer to them; outside the recording, which would
        for w in caught:  # append each warning shown again to the list being shown (a review: it never ended)
            _show_warning(w.message, w.category, w.filename, w.lineno)


_shown: set[str] = set()  # the messages of faithbench's warnings shown by this command
_python_showwarning = warnings.showwarning


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """faithbench's own warnings (a suite's, a dataset's: a dataset built for each split warns once
    per split; a corrupted cache entry recomputed) as one line each, once per message; others as Python shows them."""
    from faithbench.config import SuiteWarning
    from faithbench.datasets.paths import DataWarning
    from faithbench.store import CacheCorruptionWarning, CacheLockWait  # a review: printed with a source path

    from faithbench.progress import outside_bars

    if not issubclass(category, (SuiteWarning, DataWarning, CacheCorruptionWarning, CacheLockWait)):
        with outside_bars():  # on a line of its own, not glued to an open bar's (a review)
            _python_showwarning(message, category, filename, lineno, file, line)
    elif str(message) not in _shown:
        _shown.add(str(message))
        with outside_bars():
            print(f"faithbench: warning: {message}", file=sys.stderr)


def _cmd_run(args: argparse.Namespace) -> int:
    from faithbench.store import Cache
    from faithbench.runner.executors import RayOptions, check_task_resources
    from faithbench.runner.run import default_out_dir, run_suite
    from faithbench.runner.settings import check_limit

    if args.device is not None:  # its syntax, before the suite is loaded; whether it is present: resolve_device
        from faithbench.device import check_device_name

        try:
            check_device_name(args.device)
        except ValueError as exc:
            raise InputError(f"--device: {exc}") from None
    for flag, value in (("--out", args.out), ("--cache", args.cache)):  # an unset shell variable: not the default
        if value is not None and not value.strip():
            raise InputError(f"{flag}: expected a folder, got an empty string (omit {flag} for the default)")
    suite: Any = _load_suite(args.suite)
    out = Path(args.out) if args.out else default_out_dir(suite)
    cache = Cache(args.cache) if args.cache else Cache()
    check_limit(args.limit, "--limit")
    check_task_resources(args.cpus_per_task, args.gpus_per_task, ("--cpus-per-task", "--gpus-per-task"))
    if args.ray_cpus is not None and args.ray_cpus < 1:
        raise InputError(f"--ray-cpus: expected a positive number of CPUs, got {args.ray_cpus}")
    executor = args.executor or ("ray" if args.ray_address or args.ray_cpus else None) or suite.executor
    if executor != "ray":  # a Ray option with the local executor would be dropped without a word (a review)
        given = [flag for flag, value, default in (("--ray-address", args.ray_address, None),
                                                   ("--ray-cpus", args.ray_cpus, None),
                                                   ("--cpus-per-task", args.cpus_per_task, 1.0),
                                                   ("--gpus-per-task", args.gpus_per_task, 0.0)) if value != default]
        if given:
            why = "--executor local" if args.executor else "the suite's executor, local by default"
            raise InputError(f"{', '.join(given)}: Ray options, but the executor is local ({why}); use --executor ray")
    if executor == "ray":
        executor = RayOptions(address=args.ray_address, num_cpus=args.ray_cpus, cpus_per_task=args.cpus_per_task,
                              gpus_per_task=args.gpus_per_task)
    result = run_suite(suite, out, cache=cache, limit=args.limit, device=args.device, progress=not args.quiet,
                       log=lambda msg: print(msg, file=sys.stderr), executor=executor)
    c, hit = result.computed, result.cached

    def groups(n: int) -> str:  # the metric reliability check's groups (a review: its re-scoring was reported nowhere)
        return f"{n} reliability group{'s' * (n != 1)}"
    reused = (f" ({hit['saliency']} saliency and {hit['scores']} score batches, {groups(hit.get('reliability', 0))} "
              "read from the cache)" if any(hit.values()) else "")
    print(f"computed {c['checkpoints']} checkpoints, {c['saliency']} saliency batches, {c['scores']} score batches, "
          f"{groups(c.get('reliability', 0))}{reused} on {result.device}; {len(result.results)} result rows",
          file=sys.stderr)
    if not result.skipped.empty:
        print(skipped_summary(result.skipped), file=sys.stderr)
    write_lines([str(out.resolve())])
    if result.status == "failed":  # every cell failed: no result row
        print(f"faithbench: run failed: every cell failed ({len(result.failures)} failures; see "
              f"{out / 'failures.csv'}); exit code {EXIT_FAILED}", file=sys.stderr)
        return EXIT_FAILED
    if result.results.empty and result.failures.empty:
        why = skipped_summary(result.skipped) if not result.skipped.empty else "no cell explained a sample"
        print(f"faithbench: error: nothing computed: no result row ({why}); exit code {EXIT_BAD_INPUT}",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    if result.status == "partial":
        n, cells = len(result.failures), result.failures["cell"].nunique()
        print(f"faithbench: partial run: {n} failures in {cells} cells (see {out / 'failures.csv'}); "
              f"exit code {EXIT_PARTIAL}", file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK


def _list_glob(pattern: str) -> str:
    """The glob ``faithbench list`` matches names with: ``pattern`` itself when it has a glob
    character (``*?[``), else ``*pattern*`` (a substring: ``deletion`` finds ``deletion_auc``)."""
    return pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"


def _cmd_list(args: argparse.Namespace) -> int:
    import fnmatch

    from faithbench.config import builtin_suites, ensure_plugins_loaded
    from faithbench.registry import datasets, explainers, metrics, models

    ensure_plugins_loaded()
    pattern = _list_glob(args.pattern).lower()  # case-insensitive on every platform (RESNET finds resnet18)
    registry = {"explainers": explainers, "metrics": metrics, "datasets": datasets, "models": models}.get(args.kind)
    names = [n for n in (registry.names() if registry else builtin_suites()) if fnmatch.fnmatchcase(n.lower(), pattern)]
    if not names:
        print(f"faithbench: no {args.kind[:-1]} matches {args.pattern!r}; patterns are substrings or globs",
              file=sys.stderr)
        return EXIT_FAILED
    if registry is None:
        width = max(len(n) for n in names)
        from faithbench.config import BUILTIN_DIR
        from faithbench.config_yaml import yaml_description

        return write_lines([f"{n:<{width}}  {first_sentence(yaml_description(BUILTIN_DIR / f'{n}.yaml'))}".rstrip()
                            for n in names])
    width = max((len(n) for n in names), default=0)
    lines = []
    for name in names:
        try:
            obj = registry.get(name)
            lines.append(f"{name:<{width}}  {describe(args.kind, obj)}")
            if args.params:
                lines.append(f"{'':<{width}}  parameters: {parameters(obj) or 'none'}")
        except RegistryError as exc:  # a broken plugin: say so and list the others
            # an entry point named like a built-in: neither is broken (a review: the built-in gradcam was "broken")
            lines.append(f"{name:<{width}}  {'[name clash]' if registry.conflict(name) else '[broken plugin]'}")
            print(f"faithbench: warning: {exc}", file=sys.stderr)
    return write_lines(lines)


def skipped_summary(skipped: Any) -> str:
    """One line for ``skipped.csv`` (a DataFrame): whole cells, metrics skipped in a cell, and (cell, metric)
    pairs that ran but have undefined values (counted there, not skipped)."""
    from faithbench.names import counted
    from faithbench.reports.tables import split_skipped

    skips, undefined = split_skipped(skipped)
    whole = int((skips["metric"] == "").sum()) if "metric" in skips else len(skips)
    in_cells = len(skips) - whole
    parts = []
    if whole:
        parts.append(f"skipped {counted(whole, 'cell')}")
    if in_cells:
        parts.append(f"skipped {counted(in_cells, 'metric')} in cells")
    if len(undefined):
        parts.append(f"undefined values (NaN, no row) in {counted(len(undefined), '(cell, metric) pair')}")
    return "; ".join(parts) + " (see skipped.csv)"


def _cmd_validate(args: argparse.Namespace) -> int:
    from faithbench.names import counted
    from faithbench.runner.plan import cells_line, plan

    suite: Any = _load_suite(args.suite)
    from faithbench.model_checks import unavailable_weights

    for line in unavailable_weights(suite, args.suite):  # the run would stop at once (its preflight)
        print(f"faithbench: warning: {line}", file=sys.stderr)
    groups = plan(suite)
    data = [counted(len(suite.datasets), "dataset"), counted(len(suite.models), "model")]
    pairs = len({(g.dataset.label, g.model.label) for g in groups})
    if pairs != len(suite.datasets) * len(suite.models):  # dataset entries that name their models
        data = [f"{counted(pairs, 'dataset-model pair')} (of {', '.join(data)})"]
    sizes = " x ".join([*data, counted(len(suite.explainers), "explainer"), counted(len(suite.seeds), "seed")])
    cells = cells_line(suite, groups, args.suite, InputError)  # a review: it counted cells the run skips
    metric_count = counted(len(suite.metrics), "metric")
    return write_lines([f"{args.suite}: ok — suite {suite.name!r}: {sizes} = {cells}, {metric_count}"])


def _cmd_report(args: argparse.Namespace) -> int:
    from faithbench.reports.gallery import GALLERY_NOTE, missing_galleries
    from faithbench.reports.integrity import NOT_A_RUN
    from faithbench.reports.writer import FORMATS, RunFolderError, build_report, is_run_folder

    run_dir = Path(args.run_dir)
    if not run_dir.exists():
        raise InputError(f"{run_dir}: no such folder (a run folder: the --out of faithbench run)")
    if not is_run_folder(run_dir):
        raise InputError(f"{run_dir}: {NOT_A_RUN}")
    from faithbench.runner.lock import lock_output
    formats = FORMATS if args.format == "all" else (args.format,)
    try:  # an input missing or unreadable: bad input (exit 2), raised before any file is written
        with lock_output(run_dir, named=""):  # a run writing this folder: refused (a review mixed two suites' tables)
            written = build_report(run_dir, formats=formats)
    except RunFolderError as exc:
        raise InputError(str(exc)) from exc
    except OSError as exc:  # a read-only folder, a full disk: exit 2 naming the folder
        where = f" ({exc.filename})" if exc.filename else ""
        raise InputError(f"{run_dir}: cannot write the report: {exc.strerror or exc}{where}") from None
    write_lines([str(path) for path in written])
    if missing := missing_galleries(run_dir):  # plots/ deleted: a held-out review saw the gallery go unsaid
        print(f"faithbench: warning: no saliency gallery for {', '.join(missing)}: {GALLERY_NOTE}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="faithbench", description="Benchmark the faithfulness of saliency maps: "
                                     "run a suite, list plugins and suites, validate a suite, rebuild a report.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", version=f"faithbench {installed_version()}")
    # accepted after the sub-command too; SUPPRESS keeps a top-level --debug when it is absent there
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a suite (default: the built-in quick suite)", parents=[common])
    run.add_argument("suite", nargs="?", default="quick", help="a suite YAML path or a built-in name")
    run.add_argument("--out", help="output folder (default: reports/<suite name>)")
    run.add_argument("--limit", type=int, help="at most N test samples per dataset (training is not limited)")
    run.add_argument("--cache", help="cache folder (default: $FAITHBENCH_CACHE, else $XDG_CACHE_HOME/faithbench "
                                     "where that is set, else ~/.cache/faithbench)")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument("--device", metavar="DEV",
                     help="auto (cuda when available), cpu, cuda, cuda:N (default: the suite's device, auto)")
    run.add_argument("--executor", choices=["local", "ray"],
                     help="where cells run (default: the suite's 'executor', local)")
    run.add_argument("--ray-address", metavar="ADDR",
                     help="join this Ray cluster (implies --executor ray); every node must see --cache")
    run.add_argument("--ray-cpus", type=int, metavar="N",
                     help="CPUs of the local Ray instance started for this run (implies --executor ray)")
    run.add_argument("--cpus-per-task", type=float, default=1.0, metavar="N", help="Ray: CPUs per group task (1)")
    run.add_argument("--gpus-per-task", type=float, default=0.0, metavar="N",
                     help="Ray: GPUs per group task (0); a task with a GPU computes on it")
    run.set_defaults(func=_cmd_run)

    lst = sub.add_parser("list", help="list registered plugins or built-in suites", parents=[common])
    lst.add_argument("kind", choices=["explainers", "metrics", "datasets", "models", "suites"],
                     help="what to list: the registered plugins of a kind, or the built-in suites")
    lst.add_argument("pattern", nargs="?", default="*",
                     help="a substring of the names (deletion) or a glob ('*cam*', 'iou_top*'); default: all")
    lst.add_argument("--params", action="store_true", help="print each plugin's parameters with their defaults")
    lst.set_defaults(func=_cmd_list)

    val = sub.add_parser("validate", help="check a suite without running it", parents=[common])
    val.add_argument("suite", help="a suite YAML path or a built-in name (faithbench list suites)")
    val.set_defaults(func=_cmd_validate)

    rep = sub.add_parser("report", help="rebuild the tables, plots and index.html of a run folder from its tidy tables",
                         parents=[common])
    rep.add_argument("run_dir", help="the folder a run wrote (its --out)")
    rep.add_argument("--format", choices=["html", "md", "latex", "all"], default="all",
                     help="which report to write beside the CSV tables and plots (default: all)")
    rep.add_argument("--quiet", action="store_true", help="no progress bar")
    rep.set_defaults(func=_cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser, argv = build_parser(), sys.argv[1:] if argv is None else list(argv)
    if bad := next((a for a in argv[:next((i for i, a in enumerate(argv) if not a.startswith("-")), len(argv))]
                    if a.split("=")[0] not in parser._option_string_actions), None):  # a review: "required: command"
        parser.error(f"unrecognized arguments: {bad}")
    args, extra = parser.parse_known_args(argv)
    late = extra[0] if len(extra) == 1 and not extra[0].startswith("-") else None
    if late is not None and getattr(args, "func", None) is _cmd_list and args.pattern == "*":
        args.pattern = late  # `list explainers --params gradcam`: the pattern after the flag (a review)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return _main(args)
    except KeyboardInterrupt:  # in the imports before _dispatch's handler (a review: 35 lines of traceback)
        return _interrupted(args)


def _main(args: argparse.Namespace) -> int:
    from faithbench.progress import lines_through_bars, quiet

    main_thread = threading.current_thread() is threading.main_thread()  # signal handlers: the main thread only
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    _SIGTERM.clear()
    try:
        with warnings.catch_warnings():
            from faithbench.datasets.paths import DataWarning

            warnings.simplefilter("always", DataWarning)  # every one reaches _show_warning, which shows each once
            warnings.showwarning = _show_warning
            _shown.clear()
            with quiet(getattr(args, "quiet", False)), lines_through_bars():  # the training bars too
                return _dispatch(args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _dispatch(args: argparse.Namespace) -> int:
    from faithbench.config import SuiteError
    from faithbench.datasets.paths import OFFLINE_VAR, env_problem
    from faithbench.models.checkpoint import CheckpointError
    from faithbench.runner.errors import InputDataError, OutputInUseError, UsageError
    from faithbench.store import CacheWriteError

    try:
        if problem := env_problem(OFFLINE_VAR):  # read deep in the loaders: said before anything runs
            raise InputError(problem)
        return int(args.func(args) or 0)
    except (InputError, SuiteError, RegistryError, ParameterError, CheckpointError, FileNotFoundError,
            InputDataError, OutputInUseError, UsageError, CacheWriteError) as exc:
        if args.debug:
            traceback.print_exc()
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"faithbench: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return _interrupted(args)
    except BrokenPipeError:  # `faithbench list | head`: the reader has gone; no error message to a closed pipe
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's flush at exit would fail again
        return 141  # 128 + SIGPIPE, as a shell reports a process a broken pipe stopped
    except Exception as exc:  # a failure while computing
        if args.debug:
            traceback.print_exc()
        first = str(exc).splitlines()[0] if str(exc) else ""
        cached = "; finished cells are cached" if args.command == "run" else ""  # a review: list said "run failed"
        print(f"faithbench: {args.command} failed: {type(exc).__name__}: {first} (rerun with --debug for the "
              f"traceback{cached})", file=sys.stderr)
        return EXIT_FAILED


def _interrupted(args: argparse.Namespace) -> int:
    """One line and exit 130 for Ctrl-C, 143 for SIGTERM."""
    term = _SIGTERM.is_set()  # set by the handler, whatever a library made of its Terminated
    resumes = "; finished cells are cached and a rerun resumes" if args.command == "run" else ""  # not validate's
    print(f"faithbench: {'terminated (SIGTERM)' if term else 'interrupted'}{resumes}", file=sys.stderr)
    return 143 if term else 130


if __name__ == "__main__":
    sys.exit(main())
