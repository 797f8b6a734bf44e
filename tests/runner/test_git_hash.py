"""manifest.json's ``git``: the commit of faithbench's checkout, ``-dirty`` when its package files
were edited (a held-out review ran on a tree with uncommitted changes that the manifest hid)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import faithbench
from faithbench.runner import run as run_module

PACKAGE = Path(faithbench.__file__).resolve().parent


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_git_hash_marks_an_edited_checkout(tmp_path, monkeypatch):
    repo = tmp_path / "checkout"
    (repo / "faithbench" / "runner").mkdir(parents=True)
    module = repo / "faithbench" / "runner" / "run.py"
    module.write_text("x = 1\n")
    (repo / "README.md").write_text("outside the package\n")
    _git("init", "-q", cwd=repo)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "add", ".", cwd=repo)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "c", cwd=repo)
    head = _git("rev-parse", "HEAD", cwd=repo)
    monkeypatch.setattr(run_module, "__file__", str(module))
    assert run_module.git_hash() == head
    (repo / "README.md").write_text("edited outside the package: not faithbench's code\n")
    (repo / "faithbench" / "new_untracked.py").write_text("y = 2\n")
    assert run_module.git_hash() == head
    module.write_text("x = 2\n")
    assert run_module.git_hash() == head + "-dirty"


def test_git_hash_outside_a_checkout_is_none(tmp_path, monkeypatch):
    module = tmp_path / "site" / "faithbench" / "runner" / "run.py"
    module.parent.mkdir(parents=True)
    module.write_text("")
    monkeypatch.setattr(run_module, "__file__", str(module))
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    assert run_module.git_hash() is None


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_git_hash_of_a_copy_installed_inside_another_project_is_none(tmp_path, monkeypatch):
    """A non-editable install in the .venv of the user's own git project gave that project's HEAD."""
    project = tmp_path / "project"
    module = project / ".venv" / "site-packages" / "faithbench" / "runner" / "run.py"
    module.parent.mkdir(parents=True)
    module.write_text("x = 1\n")
    (project / "train.py").write_text("print('mine')\n")
    _git("init", "-q", cwd=project)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "add", "train.py", cwd=project)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "c", cwd=project)
    monkeypatch.setattr(run_module, "__file__", str(module))
    assert run_module.git_hash() is None


def test_the_manifest_names_the_commit_the_run_started_with(tmp_path, monkeypatch):
    """A walkthrough review: the commit was read when the run ended, so a commit that landed mid-run was named
    though the maps came from the code before it (no -dirty either)."""
    import json

    from faithbench.config import suite_from_dict
    from faithbench.store import Cache

    now = {"commit": "started-with"}
    monkeypatch.setattr(run_module, "git_hash", lambda: now["commit"])
    real = run_module.run_groups

    def commit_lands_meanwhile(*args, **kwargs):
        real(*args, **kwargs)
        now["commit"] = "landed-during-the-run"

    monkeypatch.setattr(run_module, "run_groups", commit_lands_meanwhile)
    suite = suite_from_dict({"name": "g", "samples": 4, "datasets": [{"name": "phantom_cxr", "params": {
        "n": 16, "size": 32}}], "models": [{"name": "small_cnn", "params": {"width": 4}, "recipe": {"epochs": 1}}],
        "explainers": ["saliency", "random"], "metrics": [{"name": "deletion_auc", "params": {"steps": 4}}]})
    run_module.run_suite(suite, tmp_path / "out", cache=Cache(tmp_path / "cache"), progress=False, report=False)
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["git"] == "started-with"
