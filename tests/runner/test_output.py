"""The output and cache folders are checked before anything runs; stale files are cleared."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from faithbench.runner.errors import OutputInUseError, UsageError
from faithbench.runner.lock import lock_output
from faithbench.runner.output import OWNED, STALE_TMP_SECONDS, clear_owned, prepare_output
from faithbench.store import atomic_write_bytes


def test_out_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "out").write_text("not a folder")
    with pytest.raises(UsageError, match=r"--out .*out: is a file, expected a folder"):
        prepare_output(tmp_path / "out", tmp_path / "cache")


def test_cache_that_cannot_be_created_is_refused(tmp_path):
    (tmp_path / "blocker").write_text("")
    with pytest.raises(UsageError, match=r"cache folder \(--cache or \$FAITHBENCH_CACHE\) .*blocker/cache: "
                                         r"not writable"):
        prepare_output(tmp_path / "out", tmp_path / "blocker" / "cache")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_out_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        with pytest.raises(UsageError, match="--out .*: not writable"):
            prepare_output(out, tmp_path / "cache")
    finally:
        out.chmod(0o755)


def test_leftover_tmp_files_are_removed(tmp_path):
    out, cache = tmp_path / "out", tmp_path / "cache"
    (out / "plots").mkdir(parents=True)
    (cache / "scores" / "ab").mkdir(parents=True)
    killed = [out / ".results.csv.k1l2m3.tmp", out / "plots" / ".cd_a_b.png.x9y8.tmp"]
    old, fresh = cache / "scores" / "ab" / ".ab12.json.q1.tmp", cache / "scores" / "ab" / ".ab34.json.q2.tmp"
    for path in killed + [old, fresh]:
        path.write_bytes(b"partial")
    past = time.time() - STALE_TMP_SECONDS - 10
    os.utime(old, (past, past))
    (out / "notes.tmp").write_text("a user's file")  # not one of ours: no leading dot
    prepare_output(out, cache)
    assert not any(p.exists() for p in killed + [old])
    assert fresh.exists() and (out / "notes.tmp").exists()  # another run may be writing the fresh one


def test_tmp_files_outside_the_run_folders_and_another_programs_folder_are_left_alone(tmp_path):
    """A held-out review: --out pointing at another program's folder replaced its index.html and
    results.csv, deleted plots/curves_my_experiment.png (a glob of ours) and every hidden .tmp file of
    the whole tree below it (a download in progress two levels down)."""
    out, cache = tmp_path / "out", tmp_path / "cache"
    (out / "sub" / "deeper").mkdir(parents=True)
    download = out / "sub" / "deeper" / ".dataset.part1.tmp"
    download.write_bytes(b"another program's")
    (out / "notes.txt").write_text("fine")
    prepare_output(out, cache)  # nothing of ours there: accepted
    assert download.exists()
    for name in ("index.html", "results.csv", "plots/curves_my_experiment.png"):
        (out / name).parent.mkdir(exist_ok=True)
        (out / name).write_text("another program's")
    with pytest.raises(UsageError, match=r"^--out .*out: holds index.html, plots/curves_my_experiment.png, "
                                         r"results.csv, which a run writes, but no faithbench run"):
        prepare_output(out, cache)
    (out / "manifest.json").write_text('{"name": "a web app"}')  # a manifest of another tool: still refused
    with pytest.raises(UsageError, match="but no faithbench run"):
        prepare_output(out, cache)
    (out / "manifest.json").write_text('{"suite": {}, "status": "ok"}')  # a run's: reused as before
    prepare_output(out, cache)
    assert download.exists()


def test_prepare_output_refuses_a_folder_in_use(tmp_path):
    out = tmp_path / "out"
    with lock_output(out):
        (out / ".results.csv.zz.tmp").write_bytes(b"another run is writing this")
        with pytest.raises(OutputInUseError):
            prepare_output(out, tmp_path / "cache")
        assert (out / ".results.csv.zz.tmp").exists()


def test_clear_owned_removes_what_a_run_wrote_and_nothing_else(tmp_path):
    out = tmp_path / "out"
    owned = ["results.parquet", "results.csv", "curves.parquet", "reliance.csv", "regions.csv", "manifest.json",
             "index.html", "plots/gallery_x_y.png", "plots/cd_a_b_m.svg", "plots/models.png"]
    kept = ["notes.txt", "plots/my_figure.png", "results_old/results.csv", ".lock"]
    for name in owned + kept:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("x")
    removed = clear_owned(out)
    assert sorted(p.relative_to(out).as_posix() for p in removed) == sorted(owned)
    assert all((out / name).exists() for name in kept)
    assert clear_owned(out) == []
    assert "failures.csv" in OWNED


def test_written_files_are_0644(tmp_path):
    atomic_write_bytes(tmp_path / "results.csv", b"a\n")
    assert oct((tmp_path / "results.csv").stat().st_mode & 0o777) == "0o644"


@pytest.mark.parametrize("cache_name, expected", [
    ("afile", r"afile: is a file, expected a folder"),
    ("afile/cache", r"afile/cache: not writable \(Not a directory\)"),
])
def test_an_unusable_cache_is_refused_before_out_is_created(tmp_path, cache_name, expected):
    # review resume5: the refusal left a new --out folder holding a .lock
    (tmp_path / "afile").write_text("")
    with pytest.raises(UsageError, match=r"cache folder \(--cache or \$FAITHBENCH_CACHE\) .*" + expected):
        prepare_output(tmp_path / "fresh" / "out", tmp_path / cache_name)
    assert not (tmp_path / "fresh").exists()


@pytest.mark.parametrize("cache_name", ["ro", "ro/new/cache"])
def test_a_read_only_cache_is_refused_before_out_is_created(tmp_path, monkeypatch, cache_name):
    import tempfile

    read_only = tmp_path / "ro"
    read_only.mkdir()
    probe = tempfile.TemporaryFile

    def refused(*args, dir=None, **kwargs):  # root writes into a chmod 555 folder: the refusal it would get
        if dir is not None and Path(dir) == read_only:
            raise PermissionError(13, "Permission denied")
        return probe(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "TemporaryFile", refused)
    with pytest.raises(UsageError, match=r"cache folder .*: not writable \(Permission denied\)"):
        prepare_output(tmp_path / "out", tmp_path / cache_name)
    assert not (tmp_path / "out").exists() and sorted(read_only.iterdir()) == []


def test_a_cli_run_refused_for_its_cache_creates_no_out_folder(tmp_path, capsys, monkeypatch):
    from faithbench.cli import main

    suite = tmp_path / "s.yaml"
    suite.write_text("name: t\ndatasets: [{name: phantom_cxr, params: {size: 32, n: 8}}]\n"
                     "models: [{name: small_cnn, recipe: {epochs: 1}}]\nexplainers: [random]\n"
                     "metrics: [pointing_game]\n")
    (tmp_path / "afile").write_text("")
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(suite), "--out", "fresh_x", "--cache", "afile", "--quiet"]) == 2
    assert capsys.readouterr().err.strip().endswith("cache folder (--cache or $FAITHBENCH_CACHE) afile: is a file, "
                                                    "expected a folder")
    assert not (tmp_path / "fresh_x").exists()
