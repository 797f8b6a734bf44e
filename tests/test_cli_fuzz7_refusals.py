"""A held-out fuzzing review (clifuzz7): numbers of a training recipe that validate passed and run refused (lr 1e39
failed every cell with a float overflow, n_train 1e20 failed validate with islice's ValueError), a divergence blamed
on lr alone where weight_decay caused it, a suite name too long for its folder, argparse's usage block before a
usage error, and a cache folder from $XDG_CACHE_HOME blamed on --cache."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml
from pydantic import ValidationError
from torch import nn

import faithbench
from faithbench.cli import main
from faithbench.configurable import FLOAT32_MAX, FLOAT32_TINY, ParameterError
from faithbench.models.checkpoint import CheckpointError
from faithbench.models.errors import check_converging
from faithbench.models.training import Recipe, train_model
from faithbench.registry import explainers
from faithbench.runner.errors import UsageError
from faithbench.store import cache_origin, default_cache_dir

SUITE = {"name": "fz", "samples": 4, "batch_size": 4, "reliability": 0,
         "datasets": [{"name": "phantom_cxr", "params": {"n": 40, "size": 32}}],
         "models": [{"name": "small_cnn", "params": {"width": 4, "depth": 2}, "recipe": {"epochs": 1}}],
         "explainers": ["saliency", "random"], "metrics": ["deletion_auc"]}
FLOAT32_RANGE = "expected numbers within float32's range (0 or 1.175494e-38 <= |x| <= 3.402823e+38), got "
INT64_RANGE = "expected integers within int64 (-2**63 <= x < 2**63), got "


def _validate(tmp_path, capsys, suite):
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    rc = main(["validate", str(path)])
    return rc, capsys.readouterr().err.strip().replace(f"faithbench: error: {path}: ", "")


def _with_recipe(**recipe):
    model = {**SUITE["models"][0], "recipe": {"epochs": 1, **recipe}}
    return {**SUITE, "models": [model]}


@pytest.mark.parametrize("key, value, expected", [
    ("n_train", 10**20, INT64_RANGE + "100000000000000000000"),  # was exit 1: islice's ValueError
    ("n_train", 2**63, INT64_RANGE + "9223372036854775808"),
    ("lr", 1e300, FLOAT32_RANGE + "1e+300"),  # was: every cell failed, "cannot be converted to type float"
    ("lr", 1e39, FLOAT32_RANGE + "1e+39"),
    ("lr", 1e-300, FLOAT32_RANGE + "1e-300"),  # 0 in float32: no training at all
    ("weight_decay", 1e300, FLOAT32_RANGE + "1e+300"),  # was: diverged after training started, blaming lr
    ("warmup_epochs", 1e39, FLOAT32_RANGE + "1e+39"),
    ("label_smoothing", 1e-40, FLOAT32_RANGE + "1e-40"),
    ("epochs", 2**63, INT64_RANGE + "9223372036854775808"),
    ("batch_size", 2**63, INT64_RANGE + "9223372036854775808"),
    ("patience", 2**64, INT64_RANGE + "18446744073709551616"),
])
def test_a_recipe_number_torch_cannot_take_is_refused_by_validate_in_one_line(tmp_path, capsys, key, value,
                                                                              expected):
    rc, err = _validate(tmp_path, capsys, _with_recipe(**{key: value}))
    assert (rc, err) == (2, f"models[0].recipe.{key}: {expected}")


@pytest.mark.parametrize("recipe", [{"lr": FLOAT32_MAX}, {"lr": FLOAT32_TINY}, {"weight_decay": 0.0},
                                    {"n_train": 2**63 - 1}, {"epochs": 1, "patience": 2**63 - 1}])
def test_the_range_ends_are_taken(tmp_path, capsys, recipe):
    rc, err = _validate(tmp_path, capsys, _with_recipe(**recipe))
    assert rc == 0, err


def test_the_recipe_refuses_what_a_plugin_parameter_refuses():
    """One check (configurable.unrepresentable) for both: the same range in both messages."""
    with pytest.raises(ValidationError, match=r"lr\n.*expected numbers within float32's range"):
        Recipe(lr=1e39)
    with pytest.raises(ParameterError, match=r"parameter 'baseline' expects numbers within float32's range"):
        explainers.get("occlusion")(baseline=1e39)
    assert Recipe(lr=3.0e38).lr == 3.0e38 and isinstance(Recipe(lr=1).lr, float) and Recipe(lr=1).lr == 1.0


@pytest.mark.parametrize("lr, weight_decay, named", [
    (1e-3, 1e30, True), (1e-3, 0.05, False), (0.5, 2.5, True),  # 0.5 x 2.5 = 1.25 > 1: the decay step overshoots
    (0.5, 2.0, False),  # exactly 1: the weights go to zero, they do not grow
    (1e12, 0.0, False),
])
def test_the_divergence_message_names_weight_decay_where_lr_times_it_exceeds_1(lr, weight_decay, named):
    with pytest.raises(CheckpointError) as info:
        check_converging("train m", (math.nan, 0.7), 2, lr, weight_decay)
    message = str(info.value)
    assert message.startswith(f"train m: training diverged (loss nan in epoch 2): the model's outputs are no longer "
                              f"finite; lower the recipe's lr ({lr:g})")
    assert message.endswith(f" or weight_decay ({weight_decay:g}; lr x weight_decay > 1)") is named, message


def test_a_weight_decay_that_diverges_training_is_named():
    """lr 1e-3 and weight_decay 1e30: AdamW multiplies the weights by 1 - 1e27 each step, inf within 2 steps."""
    torch.manual_seed(0)
    x, y = torch.randn(16, 1, 4, 4), torch.tensor([0, 1] * 8)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    with pytest.raises(CheckpointError, match=r"lower the recipe's lr \(0\.001\) or weight_decay \(1e\+30; lr x "
                                              r"weight_decay > 1\)$"):
        train_model(model, x, y, x, y, Recipe(epochs=2, batch_size=4, weight_decay=1e30), 0)


def test_a_suite_name_too_long_for_its_folder_is_refused_without_echoing_it(tmp_path, capsys):
    rc, err = _validate(tmp_path, capsys, {**SUITE, "name": "a" * 5000})  # was: run's "File name too long"
    assert (rc, err) == (2, "name: expected a name of at most 255 characters (it names the run's folder, "
                            f"reports/<name>), got a folder name of 5000: {'a' * 24!r}...")
    rc, err = _validate(tmp_path, capsys, {**SUITE, "name": "b" * 256})
    assert rc == 2 and err.startswith("name: expected a name of at most 255 characters") and "got a folder name of 256" in err
    rc, err = _validate(tmp_path, capsys, {**SUITE, "name": "d" + " " * 600 + "d" * 254})  # spaces: one "_"
    assert rc == 2 and "got a folder name of 256: " in err  # the folder's length, not the 855 typed (a review)
    for name in ("c" * 255, "é" * 300):  # the folder is safe_name(name): 255 c's, and "_" for the é's
        rc, err = _validate(tmp_path, capsys, {**SUITE, "name": name})
        assert rc == 0, err


@pytest.mark.parametrize("argv, expected", [
    (["run", "quick", "--limit", "abc"], "argument --limit: invalid int value: 'abc' (see faithbench run --help)"),
    (["run", "quick", "--limit", "1.5"], "argument --limit: invalid int value: '1.5' (see faithbench run --help)"),
    (["run", "quick", "--executor", "bogus"],
     "argument --executor: invalid choice: 'bogus' (choose from 'local', 'ray') (see faithbench run --help)"),
    (["list", "bogus"], "argument kind: invalid choice: 'bogus' (choose from 'explainers', 'metrics', 'datasets', "
                        "'models', 'suites') (see faithbench list --help)"),
    (["validate"], "the following arguments are required: suite (see faithbench validate --help)"),
    (["run", "quick", "--bogus"], "unrecognized arguments: --bogus (see faithbench --help)"),
    ([], "the following arguments are required: command (see faithbench --help)"),
    # a review (cli12): a bad flag before the command said "required: command", naming no flag
    (["--bogus"], "unrecognized arguments: --bogus (see faithbench --help)"),
    (["--debug", "--bogus=1", "list", "metrics"], "unrecognized arguments: --bogus=1 (see faithbench --help)"),
])
def test_a_usage_error_is_one_line_without_the_usage_block(capsys, argv, expected):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    captured = capsys.readouterr()
    assert (stop.value.code, captured.err, captured.out) == (2, f"faithbench: error: {expected}\n", "")


def test_help_still_shows_the_usage(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["run", "--help"])
    assert stop.value.code == 0 and capsys.readouterr().out.startswith("usage: faithbench run [-h]")


@pytest.fixture
def xdg_file(tmp_path, monkeypatch):
    """$FAITHBENCH_CACHE unset, $XDG_CACHE_HOME a file: the default cache folder cannot be made."""
    monkeypatch.delenv("FAITHBENCH_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "mpl"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "xdg").write_text("")
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(SUITE))
    return tmp_path / "xdg" / "faithbench"


def test_a_cache_folder_from_xdg_cache_home_is_named_so(xdg_file, capsys):
    assert main(["run", "s.yaml", "--out", "out"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"faithbench: error: cache folder ($XDG_CACHE_HOME/faithbench) {xdg_file}: not writable (Not a directory); "
        "choose another with --cache or $FAITHBENCH_CACHE")
    with pytest.raises(UsageError, match=r"^run: cache \(\$XDG_CACHE_HOME/faithbench\): .*xdg/faithbench: not "
                                         r"writable \(Not a directory\); choose another with cache= or "
                                         r"\$FAITHBENCH_CACHE$"):
        faithbench.run("s.yaml", out_dir="out2", progress=False, log=lambda _line: None)


def test_cache_origin_names_only_the_default_folders_source(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("FAITHBENCH_CACHE")
    assert cache_origin(tmp_path / "xdg" / "faithbench") == "$XDG_CACHE_HOME/faithbench"
    assert cache_origin(tmp_path / "elsewhere") is None  # from --cache or cache=
    monkeypatch.setenv("XDG_CACHE_HOME", "")  # empty is unset (XDG spec), not a relative "faithbench" folder
    assert default_cache_dir() == Path.home() / ".cache" / "faithbench"
    assert cache_origin(default_cache_dir()) == "~/.cache/faithbench"
    monkeypatch.setenv("FAITHBENCH_CACHE", str(tmp_path / "c"))
    assert cache_origin(tmp_path / "c") is None  # the existing "(--cache or $FAITHBENCH_CACHE)" stays


@pytest.mark.parametrize("backbone_recipe, expected", [
    ({"epochs": 1, "lr": 1e39}, "backbone_recipe.lr: " + FLOAT32_RANGE + "1e+39"),
    ({"n_train": 10**20}, "backbone_recipe.n_train: " + INT64_RANGE + "100000000000000000000"),
    ({"lrr": 3}, "backbone_recipe.lrr: Extra inputs are not permitted"),
])
def test_a_temporal_backbone_recipe_is_checked_alike_and_named_in_one_line(tmp_path, capsys, backbone_recipe,
                                                                           expected):
    """Was: "cannot build 'temporal_mlp' ...: 1 validation error for Recipe", the key left unsaid."""
    suite = {**SUITE, "datasets": [{"name": "phantom_longitudinal", "params": {"n": 40, "size": 32}}],
             "models": [{"name": "temporal_mlp", "recipe": {"epochs": 1},
                         "params": {"backbone_params": {"width": 4}, "backbone_recipe": backbone_recipe}}],
             "explainers": ["random"], "metrics": ["temporal_deletion"]}
    rc, err = _validate(tmp_path, capsys, suite)
    assert rc == 2 and err.startswith("models[0].params: cannot build 'temporal_mlp'") and err.endswith(
        f": model 'temporal_mlp': {expected}") and "\n" not in err, err
