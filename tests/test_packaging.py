"""The wheel ships the built-in suites and the LICENSE, and works outside the repository.

The wheel is built from a copy of the sources (no network: ``--no-build-isolation`` uses the
setuptools of this environment), unpacked, and run from another folder, as after a
non-editable ``pip install .``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from faithbench.config import BUILTIN_DIR, SuiteError, builtin_suites, resolve_suite_path

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "faithbench", src / "faithbench", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(src)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (whl,) = out.glob("faithbench-*.whl")
    return whl


def test_wheel_contents(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    suites = {Path(n).stem for n in names if n.startswith("faithbench/suites/") and n.endswith(".yaml")}
    assert suites == set(builtin_suites())
    assert {"quick", "zoo", "sanity"} <= suites
    assert "faithbench/suites/quick.yaml" in names
    (license_file,) = [n for n in names if n.endswith("/LICENSE")]
    assert license_file.startswith("faithbench-") and ".dist-info/" in license_file
    text = zipfile.ZipFile(wheel).read(license_file).decode()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    meta = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "License-Expression: Apache-2.0" in meta
    # the wheel holds real files, not links: the suite in the wheel is the repository's suite
    assert zipfile.ZipFile(wheel).read("faithbench/suites/quick.yaml") == (BUILTIN_DIR / "quick.yaml").read_bytes()


def test_installed_wheel_finds_builtins_from_another_folder(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    work = tmp_path / "work"
    (work / "quick").mkdir(parents=True)  # an output folder named like the suite must not shadow it
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1", "FAITHBENCH_OFFLINE": "1"}
    # one interpreter (importing torch and the plugins is the slow part): list, then validate
    code = ("import sys, faithbench.config as c, faithbench.cli as cli; print(c.BUILTIN_DIR); "
            "sys.exit(cli.main(['list', 'suites']) or cli.main(['validate', 'zoo']))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    where, *lines = proc.stdout.splitlines()
    assert Path(where) == site / "faithbench" / "suites"  # the installed copy, not the repository
    assert [line.split()[0] for line in lines[:-1]] == builtin_suites()
    # zoo includes quick.yaml: the include resolves inside the installed package too
    assert lines[-1].startswith("zoo: ok — suite 'zoo'"), lines[-1]


def test_directory_named_like_a_builtin_does_not_shadow_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quick").mkdir()
    assert resolve_suite_path("quick") == BUILTIN_DIR / "quick.yaml"
    (tmp_path / "mine").mkdir()
    with pytest.raises(SuiteError, match=r"mine: a directory, not a suite file, and not a built-in suite"):
        resolve_suite_path("mine")
    # a file of that name is the user's suite and wins over the built-in
    (tmp_path / "zoo.yaml").write_text("name: mine\n")
    assert resolve_suite_path("zoo.yaml") == Path("zoo.yaml")


def test_benchmarks_folder_links_to_the_package_suites():
    """One source of truth: every ``benchmarks/<suite>.yaml`` is a relative link into the package."""
    linked = sorted((ROOT / "benchmarks").glob("*.yaml"))
    if not linked:
        pytest.skip("not a source checkout")
    assert sorted(p.stem for p in linked) == builtin_suites()
    for path in linked:
        assert path.is_symlink() and not os.path.isabs(os.readlink(path)), path
        assert path.resolve() == (BUILTIN_DIR / path.name).resolve()
