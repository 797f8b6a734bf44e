"""Where suite paths lead: a suite named on the command line, an ``include:`` and a model's
``weights:`` (relative to the suite file that writes it, as ``include:`` is)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from faithbench.config import BUILTIN_DIR, SuiteError, load_suite, resolve_suite_path
from faithbench.models import build_model
from faithbench.store import save_tensors

SUITE = """
name: {name}
datasets: [{{name: phantom_cxr, params: {{size: 32, n: 8}}}}]
models: [{model}]
explainers: [random]
metrics: [pointing_game]
"""


def suite_text(name="mine", model="{name: small_cnn, params: {width: 4}, recipe: {epochs: 1}}"):
    return textwrap.dedent(SUITE).format(name=name, model=model)


def tiny_weights(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_tensors(path, build_model("small_cnn", 1, 2, (32, 32), width=4).state_dict())
    return path


@pytest.mark.parametrize("file", ["quick.yaml", "quick.yml"])
def test_a_file_named_like_a_builtin_in_the_working_directory_wins(tmp_path, monkeypatch, file):
    monkeypatch.chdir(tmp_path)
    assert resolve_suite_path("quick") == BUILTIN_DIR / "quick.yaml"
    (tmp_path / file).write_text(suite_text())
    assert resolve_suite_path("quick") == Path(file)
    assert load_suite("quick").name == "mine"
    # a built-in suite's own include still reads the built-in it names, not the user's copy
    assert resolve_suite_path("quick.yaml", relative_to=BUILTIN_DIR) == BUILTIN_DIR / "quick.yaml"


def test_an_include_names_the_including_file_and_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "own").mkdir()
    (tmp_path / "own" / "s.yaml").write_text("include: nothere.yaml\nname: s\n")
    with pytest.raises(SuiteError) as info:
        load_suite("own/s.yaml")
    message = str(info.value)
    assert message.startswith("own/s.yaml: include: nothere.yaml: no such suite file, and not a built-in suite "
                              f"(looked for nothere.yaml in {tmp_path / 'own'} and {tmp_path}; built-ins: ")
    assert "\n" not in message
    with pytest.raises(SuiteError, match=r"^<suite>: include: nothere.yaml: no such suite file"):
        load_suite({"include": "nothere.yaml", "name": "s"})


def test_relative_weights_are_relative_to_the_suite_file(tmp_path, monkeypatch):
    weights = tiny_weights(tmp_path / "w" / "tiny.safetensors")
    (tmp_path / "own").mkdir()
    (tmp_path / "own" / "rel.yaml").write_text(suite_text(model="{name: small_cnn, params: {width: 4}, "
                                                                "weights: ../w/tiny.safetensors}"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for cwd in (tmp_path, tmp_path / "own", elsewhere):
        monkeypatch.chdir(cwd)
        suite = load_suite(tmp_path / "own" / "rel.yaml")
        assert suite.models[0].weights == str(weights)


def test_relative_weights_found_from_the_working_directory_still_load(tmp_path, monkeypatch):
    # before, weights were relative to the working directory: a suite written so keeps working
    weights = tiny_weights(tmp_path / "w" / "tiny.safetensors")
    (tmp_path / "own").mkdir()
    (tmp_path / "own" / "s.yaml").write_text(suite_text(model="{name: small_cnn, params: {width: 4}, "
                                                              "weights: w/tiny.safetensors}"))
    monkeypatch.chdir(tmp_path)
    assert load_suite("own/s.yaml").models[0].weights == str(weights)
    # both exist: the suite's folder wins
    near = tiny_weights(tmp_path / "own" / "w" / "tiny.safetensors")
    assert load_suite("own/s.yaml").models[0].weights == str(near)


def test_weights_of_an_included_file_are_relative_to_that_file(tmp_path, monkeypatch):
    weights = tiny_weights(tmp_path / "base" / "tiny.safetensors")
    (tmp_path / "base" / "base.yaml").write_text(suite_text(model="{name: small_cnn, params: {width: 4}, "
                                                                  "weights: tiny.safetensors}"))
    (tmp_path / "child").mkdir()
    (tmp_path / "child" / "child.yaml").write_text("include: ../base/base.yaml\nname: child\n")
    monkeypatch.chdir(tmp_path / "child")
    assert load_suite("child.yaml").models[0].weights == str(weights)


def test_missing_weights_name_the_suite_the_key_and_the_paths_tried(tmp_path, monkeypatch):
    (tmp_path / "own").mkdir()
    (tmp_path / "own" / "rel.yaml").write_text(suite_text(model="{name: small_cnn, weights: ../w/none.safetensors}"))
    monkeypatch.chdir(tmp_path / "own")
    with pytest.raises(SuiteError, match="^" + re.escape(
            f"{tmp_path / 'own' / 'rel.yaml'}: models[0].weights: file not found: ../w/none.safetensors "
            f"(looked for {tmp_path / 'w' / 'none.safetensors'})")):
        load_suite(tmp_path / "own" / "rel.yaml")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SuiteError, match="^" + re.escape(
            "own/rel.yaml: models[0].weights: file not found: ../w/none.safetensors "
            f"(looked for {tmp_path / 'w' / 'none.safetensors'} and {tmp_path.parent / 'w' / 'none.safetensors'})")):
        load_suite("own/rel.yaml")
