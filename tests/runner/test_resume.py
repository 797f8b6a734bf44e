"""Resume after SIGKILL, truncated cache files, and one run per output folder."""

import os
import shutil
import signal
import subprocess
import sys
import time
import warnings

import pandas as pd
import pytest
import torch
import yaml

from faithbench.cli import main
from faithbench.config import suite_from_dict
from faithbench.store import Cache
from faithbench.runner.errors import OutputInUseError
from faithbench.runner.lock import lock_output
from faithbench.runner.run import run_suite

# several batches per cell, so a kill lands in the middle of the sweep
SUITE = {
    "name": "resume",
    "samples": 24,
    "batch_size": 4,
    "datasets": [{"name": "phantom_cxr", "params": {"n": 96, "size": 32}}],
    "models": [{"name": "small_cnn", "params": {"width": 4}, "recipe": {"epochs": 1, "batch_size": 32}}],
    "explainers": [{"name": "integrated_gradients", "params": {"n_steps": 8}}, "saliency", "random", "sobel"],
    "metrics": [{"name": "deletion_auc", "params": {"steps": 8}}, {"name": "insertion_auc", "params": {"steps": 8}},
                "pointing_game"],
}


def _entries(cache_dir, kind):
    folder = cache_dir / kind
    return [p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")] if folder.exists() else []


def _env():
    env = dict(os.environ)
    threads = str(torch.get_num_threads())  # the same float arithmetic as this process
    env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    return env


def test_sigkill_then_rerun_matches_an_uninterrupted_run(tmp_path):
    suite_file = tmp_path / "resume.yaml"
    suite_file.write_text(yaml.safe_dump(SUITE))
    cache, out = tmp_path / "cache", tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "faithbench.cli", "run", str(suite_file), "--out", str(out),
                             "--cache", str(cache), "--quiet"], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while len(_entries(cache, "scores")) < 4:
            assert proc.poll() is None, "the run finished before it could be killed; make SUITE larger"
            assert time.monotonic() < deadline, "no cache entries after 240 s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (out / "results.csv").exists()  # tables are written only at the end
    n_before = len(_entries(cache, "saliency"))

    assert main(["run", str(suite_file), "--out", str(out), "--cache", str(cache), "--quiet"]) == 0
    run_suite(suite_from_dict(SUITE), tmp_path / "ref", cache=Cache(tmp_path / "ref_cache"),
                          progress=False, log=lambda m: None)
    assert (out / "results.csv").read_bytes() == (tmp_path / "ref" / "results.csv").read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(out / "curves.parquet"),
                                  pd.read_parquet(tmp_path / "ref" / "curves.parquet"))
    results = pd.read_csv(out / "results.csv")
    assert not results.duplicated(["explainer", "metric", "sample_id"]).any()
    assert len(results.query("metric == 'deletion_auc'")) == 4 * 24
    # the rerun resumed: the entries of the killed run were reused, not recomputed
    assert 0 < n_before < len(_entries(cache, "saliency")) == len(_entries(tmp_path / "ref_cache", "saliency"))


SMALL = {**SUITE, "name": "small", "samples": 8, "explainers": ["saliency", "random"]}


def test_truncated_cache_files_are_detected_and_recomputed(tmp_path):
    first = run_suite(suite_from_dict(SMALL), tmp_path / "a", cache=Cache(tmp_path / "cache"), progress=False,
                      log=lambda m: None)
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "cache", copy)
    sal = sorted(_entries(copy, "saliency"))[0]
    score = sorted(_entries(copy, "scores"))[0]
    for victim in (sal, score):
        data = victim.read_bytes()
        victim.write_bytes(data[: len(data) // 2])  # a write cut short
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = run_suite(suite_from_dict(SMALL), tmp_path / "b", cache=Cache(copy), progress=False,
                          log=lambda m: None)
    messages = [str(w.message) for w in caught if "corrupted cache entry" in str(w.message)]
    assert any(str(sal) in m for m in messages) and any(str(score) in m for m in messages)
    assert again.computed["saliency"] == 1 and again.computed["scores"] >= 1
    assert again.computed["checkpoints"] == 0
    pd.testing.assert_frame_equal(first.results, again.results)


def test_a_run_stopped_while_writing_leaves_a_manifest_that_says_so(tmp_path, monkeypatch, capsys):
    """A held-out review: killed after leaderboard.csv, a folder had manifest.json status "ok" without
    index.html; now the manifest says "writing" until the tables are out, and report refuses it."""
    import json

    import faithbench.reports.writer as writer

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(writer, "write_outputs", killed)
    with pytest.raises(KeyboardInterrupt):
        run_suite(suite_from_dict(SMALL), tmp_path / "a", cache=Cache(tmp_path / "cache"), progress=False,
                  log=lambda m: None)
    assert json.loads((tmp_path / "a" / "manifest.json").read_text())["status"] == "writing"
    monkeypatch.undo()
    run_suite(suite_from_dict(SMALL), tmp_path / "a", cache=Cache(tmp_path / "cache"), progress=False,
              log=lambda m: None)
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["status"] == "ok" and (tmp_path / "a" / "index.html").exists()
    assert {"results.parquet", "curves.parquet", "samples.csv", "manifest.json"} <= set(manifest["outputs"])


def test_a_truncated_checkpoint_is_retrained(tmp_path):
    first = run_suite(suite_from_dict(SMALL), tmp_path / "a", cache=Cache(tmp_path / "cache"), progress=False,
                      log=lambda m: None)
    ckpt = next(p for p in _entries(tmp_path / "cache", "checkpoints") if p.suffix == ".safetensors")
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    with pytest.warns(UserWarning, match="corrupted cache entry"):
        again = run_suite(suite_from_dict(SMALL), tmp_path / "b", cache=Cache(tmp_path / "cache"),
                          progress=False, log=lambda m: None)
    assert again.computed["checkpoints"] == 1
    pd.testing.assert_frame_equal(first.results, again.results)


HOLD = """
import fcntl, sys, time
f = open(sys.argv[1], "a+")
fcntl.flock(f.fileno(), fcntl.LOCK_EX)
f.seek(0); f.truncate(); f.write("424242\\n"); f.flush()
print("locked", flush=True)
time.sleep(120)
"""


def test_a_second_run_on_the_same_output_folder_refuses(tmp_path, capsys):
    suite_file = tmp_path / "small.yaml"
    suite_file.write_text(yaml.safe_dump(SMALL))
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out / ".lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code = main(["run", str(suite_file), "--out", str(out), "--cache", str(tmp_path / "cache"), "--quiet"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.count("\n") == 0
        # named as the CLI's --out, as the other folder errors (review docclaims2 D1)
        assert err.startswith(f"faithbench: error: --out: {out}: another faithbench run (pid 424242) is writing to "
                              f"this output folder")
        assert sorted(p.name for p in out.iterdir()) == [".lock"]  # nothing written, nothing computed
        assert not (tmp_path / "cache").exists()
    finally:
        holder.kill()
        holder.wait()
    # the lock dies with its process (kill -9 included): the next run goes ahead
    assert main(["run", str(suite_file), "--out", str(out), "--cache", str(tmp_path / "cache"), "--quiet"]) == 0
    assert (out / "results.csv").exists()


def test_lock_is_exclusive_within_a_process_too(tmp_path):
    with lock_output(tmp_path / "out"):
        with pytest.raises(OutputInUseError, match=f"pid {os.getpid()}"):
            with lock_output(tmp_path / "out"):
                pass
    with lock_output(tmp_path / "out"):  # released
        pass
