"""faithbench.run's arguments refused as faithbench run's flags are, and the run settings the manifest records
(review settings2: F1-F6, F8)."""

import json
import re

import numpy as np
import pytest
import torch

import faithbench
from faithbench.cli import main
from faithbench.runner.errors import UsageError

TINY = {"name": "tiny_args", "samples": 4, "batch_size": 4, "reliability": 0,
        "datasets": [{"name": "phantom_cxr", "params": {"n": 32, "size": 32}}],
        "models": [{"name": "small_cnn", "params": {"width": 4}, "recipe": {"epochs": 1}}],
        "explainers": ["random"], "metrics": ["pointing_game"]}


@pytest.mark.parametrize("kwargs, message", [
    ({"out_dir": ""}, "run: out_dir: expected a folder, got an empty string (omit out_dir for the default)"),
    ({"out_dir": "  "}, "run: out_dir: expected a folder, got an empty string (omit out_dir for the default)"),
    ({"out_dir": "out", "cache": ""},
     "run: cache: expected a folder, got an empty string (omit cache for the default)"),
])
def test_an_empty_out_dir_or_cache_is_refused_and_nothing_is_written_to_the_cwd(tmp_path, monkeypatch, kwargs,
                                                                                message):
    """A review: out_dir='' wrote the whole run into the cwd, cache='' made the cwd the cache; the CLI refuses
    --out '' and --cache '' with the same words."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match=f"^{re.escape(message)}$"):
        faithbench.run(TINY, progress=False, log=lambda _line: None, **kwargs)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kwargs, message", [
    ({"out_dir": "afile"}, "run: out_dir: afile: is a file, expected a folder"),
    ({"out_dir": "afile/sub"}, "run: out_dir: afile/sub: not writable (Not a directory)"),
    ({"out_dir": "out", "cache": "afile"}, "run: cache (or $FAITHBENCH_CACHE): afile: is a file, expected a folder"),
    ({"out_dir": "out", "cache": "afile/c"},
     "run: cache (or $FAITHBENCH_CACHE): afile/c: not writable (Not a directory)"),
])
def test_an_unusable_out_dir_or_cache_is_named_as_runs_argument(tmp_path, monkeypatch, kwargs, message):
    """A review: faithbench.run(out_dir='afile') said "--out afile: ..." and a bad cache "(--cache or
    $FAITHBENCH_CACHE)", flags a Python caller never passed."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("")
    with pytest.raises(UsageError, match=f"^{re.escape(message)}$"):
        faithbench.run(TINY, progress=False, log=lambda _line: None, **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


@pytest.mark.parametrize("flags, message", [
    (["--out", "afile"], "faithbench: error: --out afile: is a file, expected a folder"),
    (["--out", "out", "--cache", "afile"],
     "faithbench: error: cache folder (--cache or $FAITHBENCH_CACHE) afile: is a file, expected a folder"),
])
def test_the_cli_names_its_flags(tmp_path, monkeypatch, capsys, flags, message):
    import yaml

    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("")
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(TINY))
    assert main(["run", "s.yaml", *flags]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == message


@pytest.mark.parametrize("kwargs, message", [
    ({"device": 5}, "run: device expects a device name ('auto', 'cpu', 'cuda', 'cuda:N'), a torch.device or None, "
                    "got int"),
    ({"device": True}, "run: device expects a device name ('auto', 'cpu', 'cuda', 'cuda:N'), a torch.device or None, "
                       "got bool"),
    ({"executor": 5}, "run: executor expects 'local', 'ray', a RayOptions or None, got int"),
    ({"progress": "no"}, "run: progress expects True or False, got str"),
    ({"report": "no"}, "run: report expects True or False, got str"),
    ({"progress": 1}, "run: progress expects True or False, got int"),
])
def test_a_setting_of_the_wrong_type_is_a_type_error_naming_it(tmp_path, kwargs, message):
    """A review: device=5 was a raw AttributeError ('int' object has no attribute 'strip'), executor=5 ran
    locally, progress='no' drew the bars and report='no' built the report."""
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        faithbench.run(TINY, out_dir=tmp_path / "out", cache=tmp_path / "cache", **kwargs)
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_an_empty_executor_is_refused_not_replaced_by_the_suites(tmp_path):
    with pytest.raises(UsageError, match=r"^unknown executor ''; expected one of local, ray$"):
        faithbench.run(TINY, out_dir=tmp_path / "out", executor="")
    assert not (tmp_path / "out").exists()


def test_a_torch_device_is_checked_as_the_name_it_stands_for(tmp_path):
    """A review: device=torch.device('cpu') was a raw AttributeError."""
    with pytest.raises(UsageError, match=r"^run: device: expected one of auto, cpu, cuda, cuda:N, mps, got 'meta'$"):
        faithbench.run(TINY, out_dir=tmp_path / "bad", device=torch.device("meta"))
    result = faithbench.run(TINY, out_dir=tmp_path / "out", cache=tmp_path / "cache", device=torch.device("cpu"),
                            progress=np.False_, report=np.False_, log=lambda _line: None)  # NumPy bools are bools
    assert result.status == "ok" and result.device == "cpu"
    assert not (tmp_path / "out" / "index.html").exists()  # report=np.False_ read as False


def test_the_manifest_says_which_suite_keys_the_run_replaced(tmp_path):
    """A review: with --executor local on a suite saying `executor: ray` (and --device cpu on `device: cuda`), the
    manifest's resolved suite said ray (and cuda) with nothing to tell that the run used others. The suite stays
    as written (the report's page is the same for the same results); `overrides` names the replaced keys."""
    faithbench.run({**TINY, "executor": "ray", "device": "cuda:0"}, out_dir=tmp_path / "out",
                   cache=tmp_path / "cache", executor="local", device="cpu", progress=False, report=False,
                   log=lambda _line: None)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["overrides"] == {"executor": {"suite": "ray", "run": "local"},
                                     "device": {"suite": "cuda:0", "run": "cpu"}}
    assert (manifest["suite"]["executor"], manifest["suite"]["device"]) == ("ray", "cuda:0")
    assert (manifest["executor"], manifest["device"]) == ("local", "cpu")
    faithbench.run({**TINY, "device": "cpu"}, out_dir=tmp_path / "out", cache=tmp_path / "cache", device="cpu",
                   executor="local", progress=False, report=False, log=lambda _line: None)  # the suite's own values
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["overrides"] == {}


def test_faithbench_quiet_silences_the_suite_bar_as_quiet_does(tmp_path, monkeypatch, capsys):
    """A review: FAITHBENCH_QUIET=1 silenced the training and report bars but drew ~15 `suite …%|` updates;
    it wins over run(progress=True) too, as it did for the training bars."""
    import yaml

    suite = tmp_path / "s.yaml"
    suite.write_text(yaml.safe_dump(TINY))
    args = ["run", str(suite), "--cache", str(tmp_path / "cache")]
    assert main([*args, "--out", str(tmp_path / "loud")]) == 0
    assert "suite tiny_args:" in capsys.readouterr().err  # the bar is drawn without the variable
    monkeypatch.setenv("FAITHBENCH_QUIET", "1")
    assert main([*args, "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "suite tiny_args" not in err and "%|" not in err and "computed 0 checkpoints" in err
    faithbench.run(TINY, out_dir=tmp_path / "api", cache=tmp_path / "cache", progress=True, log=lambda _line: None)
    assert "%|" not in capsys.readouterr().err


def test_a_limit_too_small_for_a_metric_names_runs_argument_not_the_flag(tmp_path):
    """A review: faithbench.run(limit=1) said "--limit 1: …"; the CLI keeps the flag's name (tests/test_cli.py)."""
    suite = {**TINY, "explainers": ["random", "sobel"], "metrics": ["sufficiency"]}
    with pytest.raises(UsageError, match=r"^run: limit 1: metric 'sufficiency' compares each sample with the "
                                         r"others of its batch and needs 2 samples in a batch; expected a limit "
                                         r"of at least 2$"):
        faithbench.run(suite, out_dir=tmp_path / "out", cache=tmp_path / "cache", limit=1)
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()
