"""faithbench.run's messages to a Python caller (held-out review api8: D4 the suite's warnings bypassed
``log``, D5 ``Suite`` had no docstring of its own, D6 a folder in use named the CLI's ``--out``)."""

import inspect
import os
import warnings

import pytest

import faithbench
from faithbench.config import Suite, SuiteWarning
from faithbench.runner.errors import OutputInUseError
from faithbench.runner.lock import lock_output

NO_CONTROL = {"name": "tiny", "samples": 4, "datasets": [{"name": "phantom_cxr", "params": {"n": 32, "size": 32}}],
              "models": [{"name": "small_cnn", "params": {"width": 4}, "recipe": {"epochs": 1}}],
              "explainers": ["saliency", "gradcam"], "metrics": ["pointing_game"]}
WARNING = ("<suite>: explainers: no 'random' control, so the leaderboard tests no explainer against one (no * marks, "
           "beats_random empty); add it, or set control:")


def _run_on_a_folder_in_use(tmp_path, **kwargs):
    """run() into a folder another run holds: it validates the suite, then refuses before any work."""
    out = tmp_path / "out"
    with lock_output(out), pytest.raises(OutputInUseError) as err:
        faithbench.run(NO_CONTROL, out_dir=out, cache=tmp_path / "cache", progress=False, **kwargs)
    return out, err


def test_the_suites_warnings_go_to_log_when_one_is_given(tmp_path):
    lines: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _run_on_a_folder_in_use(tmp_path, log=lines.append)
    assert lines == [WARNING]
    assert not [w for w in caught if issubclass(w.category, SuiteWarning)]


def test_without_log_the_suites_warnings_stay_python_warnings(tmp_path):
    with pytest.warns(SuiteWarning) as caught:
        _run_on_a_folder_in_use(tmp_path)
    assert [str(w.message) for w in caught if issubclass(w.category, SuiteWarning)] == [WARNING]


def test_a_folder_in_use_names_run_s_out_dir(tmp_path):
    out, err = _run_on_a_folder_in_use(tmp_path, log=lambda _line: None)
    assert str(err.value) == (f"run: out_dir: {out}: another faithbench run (pid {os.getpid()}) is writing to this "
                              f"output folder; wait for it to finish (or give this run another out_dir)")
    assert "--out" not in str(err.value) and err.value.path == out and err.value.holder == str(os.getpid())


def test_suite_has_its_own_docstring_naming_load_suite():
    doc = inspect.getdoc(Suite)
    assert Suite.__dict__.get("__doc__")
    assert "load_suite" in doc and "one-line" in doc and "ValidationError" in doc and "pydantic" in doc
    assert "A base class for creating Pydantic models" not in doc
