"""CLI hardening: broken plugins, signals, --quiet, --debug placement, exit codes (issue 17)."""

from __future__ import annotations

import pytest

from faithbench.cli import main
from faithbench.registry import RegistryError, explainers


@pytest.fixture
def broken_plugin():
    explainers.register_lazy("zz_broken", "no_such_module_fb17:Thing", origin="entry-point:brokenpkg")
    yield "zz_broken"
    explainers.unregister("zz_broken")


def test_broken_entry_point_is_named_and_list_goes_on(broken_plugin, capsys):
    assert main(["list", "explainers"]) == 0
    captured = capsys.readouterr()
    names = [line.split()[0] for line in captured.out.strip().splitlines()]
    assert {"gradcam", "random", "zz_broken"} <= set(names)
    assert any(line.startswith("zz_broken ") and line.endswith("[broken plugin]") for line in captured.out.splitlines())
    assert "explainer 'zz_broken' (entry-point:brokenpkg, no_such_module_fb17:Thing) cannot be loaded: " \
           "ModuleNotFoundError" in captured.err
    with pytest.raises(RegistryError, match="explainer 'zz_broken'.*cannot be loaded"):
        explainers.get(broken_plugin)


def _fake_run(monkeypatch, rows: int, failures: int, seen: dict):
    """`faithbench run` with the suite loading and the run itself replaced: the CLI's own logic only."""
    import pandas as pd

    import faithbench.config
    import faithbench.runner.run as run_module
    from faithbench.runner.cell import FAILURE_COLUMNS

    def run_suite(suite, out, **kwargs):
        from faithbench.models import training

        seen["train_bar_disabled"] = training.bars_disabled()  # what train_model passes to its bar
        results = pd.DataFrame({"value": [0.5] * rows})
        fails = pd.DataFrame([{c: (f"cell{i}" if c == "cell" else "") for c in FAILURE_COLUMNS}
                              for i in range(failures)], columns=FAILURE_COLUMNS)
        empty = pd.DataFrame(columns=["cell", "metric", "reason"])
        return run_module.RunResult(out, results, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), empty,
                                    {"checkpoints": 0, "saliency": 0, "scores": 0}, fails)

    monkeypatch.setattr(faithbench.config, "load_suite", lambda name: type("S", (), {"name": "s", "executor": "local"})())
    monkeypatch.setattr(run_module, "run_suite", run_suite)


@pytest.mark.parametrize("rows, failures, code", [(0, 3, 1), (4, 1, 3), (4, 0, 0)])
def test_all_cells_failed_exits_1(monkeypatch, tmp_path, capsys, rows, failures, code):
    _fake_run(monkeypatch, rows, failures, {})
    assert main(["run", "x", "--out", str(tmp_path / "o"), "--quiet"]) == code
    err = capsys.readouterr().err
    assert ("every cell failed (3 failures" in err) == (code == 1)


def test_quiet_silences_training_bars(monkeypatch, tmp_path):
    monkeypatch.delenv("FAITHBENCH_QUIET", raising=False)
    seen: dict = {}
    _fake_run(monkeypatch, 1, 0, seen)
    assert main(["run", "x", "--out", str(tmp_path / "o"), "--quiet"]) == 0
    assert seen["train_bar_disabled"] is True
    assert main(["run", "x", "--out", str(tmp_path / "o")]) == 0
    assert seen["train_bar_disabled"] is False
    import os

    assert "FAITHBENCH_QUIET" not in os.environ  # restored for the rest of the process


@pytest.mark.parametrize("argv", [["--debug", "validate", "nope_suite"], ["validate", "nope_suite", "--debug"]])
def test_debug_before_or_after_the_subcommand(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "no such suite file" in err


def test_sigterm_is_handled_like_ctrl_c(monkeypatch, capsys):
    import os
    import signal

    import faithbench.cli as cli

    def stopped_by_a_scheduler(args):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM should have interrupted the command")

    monkeypatch.setattr(cli, "_cmd_run", stopped_by_a_scheduler)
    monkeypatch.setattr(cli, "_cmd_list", stopped_by_a_scheduler)
    before = signal.getsignal(signal.SIGTERM)
    assert main(["run", "quick"]) == 143
    assert "faithbench: terminated (SIGTERM); finished cells are cached" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) == before
    assert main(["list", "metrics"]) == 143  # a review: validate and list spoke of cells and resuming
    assert capsys.readouterr().err.strip() == "faithbench: terminated (SIGTERM)"


def test_sigterm_turned_into_a_plain_interrupt_by_a_library_still_exits_143(monkeypatch, capsys):
    """Helper 132: SIGTERM to a Ray run exited 130 'interrupted' (Ray's wait re-raises a plain
    KeyboardInterrupt), not 143 as docs/scaling.md promises; a later Ctrl-C is still 130."""
    import os
    import signal

    import faithbench.cli as cli

    def waiting_in_ray(args):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            raise AssertionError("SIGTERM should have interrupted the command")
        except KeyboardInterrupt:
            raise KeyboardInterrupt from None  # what Ray's ray.wait does with the handler's exception

    def ctrl_c(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_cmd_run", waiting_in_ray)
    assert main(["run", "quick"]) == 143
    assert "faithbench: terminated (SIGTERM)" in capsys.readouterr().err
    monkeypatch.setattr(cli, "_cmd_run", ctrl_c)
    assert main(["run", "quick"]) == 130
    assert "faithbench: interrupted" in capsys.readouterr().err


def test_version(capsys):
    from faithbench import __version__

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"faithbench {__version__}"


def test_validate_prints_suite_warnings_as_one_line(tmp_path, capsys):
    suite = tmp_path / "s.yaml"
    suite.write_text("name: t\ndatasets: [{name: phantom_cxr, params: {size: 32, n: 8}}]\n"
                     "models: [{name: small_cnn, recipe: default}]\nexplainers: [random]\n"
                     "metrics: [{name: relevance_mass, alias: on_marker, params: {mask: marker}}, relevance_mass]\n")
    assert main(["validate", str(suite)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("faithbench: warning: ") and "needs mask 'marker'" in err[0]


def test_ctrl_c_during_start_up_imports_is_one_line_and_130(monkeypatch, capsys):
    """A review: Ctrl-C while `_dispatch` imported faithbench.config (start-up took 48-120 s on a busy
    node) printed a 35-line KeyboardInterrupt traceback, not the documented one line and exit 130."""
    import builtins

    real_import = builtins.__import__

    def interrupted_import(name, *args, **kwargs):
        if name == "faithbench.config":
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", interrupted_import)
    assert main(["run", "quick"]) == 130
    err = capsys.readouterr().err.strip()
    assert err == "faithbench: interrupted; finished cells are cached and a rerun resumes"
