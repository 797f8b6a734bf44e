import subprocess
import sys
import textwrap

import pytest

from faithbench.cli import main


def test_list_explainers_one_per_line(capsys):
    assert main(["list", "explainers"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    names = [line.split()[0] for line in lines]
    assert {"gradcam", "integrated_gradients", "random", "saliency", "sobel"} <= set(names)
    gradcam = next(line for line in lines if line.startswith("gradcam "))
    assert "[cam; 2D/3D; cnn,vit]" in gradcam


def test_list_metrics_shows_direction(capsys):
    assert main(["list", "metrics", "*auc"]) == 0
    out = capsys.readouterr().out
    assert "deletion_auc" in out and "↓" in out and "insertion_auc" in out and "pointing_game" not in out


def test_list_metrics_first_sentence_whole(capsys):
    from faithbench.cli import first_sentence

    assert first_sentence("Deletion AUC (Petsiuk et al. 2018): the area,\n    over [0, 1]. Lower is better.") == \
        "Deletion AUC (Petsiuk et al. 2018): the area, over [0, 1]."
    assert first_sentence("Uses ``k`` (e.g. 5. or 6.) features, e.g. the top ones. More.") == \
        "Uses k (e.g. 5. or 6.) features, e.g. the top ones."
    assert first_sentence("No full stop at all") == "No full stop at all"
    assert first_sentence("Shifted copies (see :func:`~faithbench.metrics.functional.translations`, "
                          ":class:`Bound`); more.") == "Shifted copies (see translations, Bound); more."
    assert main(["list", "metrics", "relevance_rank"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.endswith("the share of the K most salient features that lie in M, |top_K(s) ∩ M| / K.")


def test_validate_ok_and_errors(tmp_path, capsys):
    assert main(["validate", "quick"]) == 0
    out = capsys.readouterr().out
    # dataset entries name their models: the product of the counts would be 30
    assert ("ok — suite 'quick': 4 dataset-model pairs (of 2 datasets, 3 models) x 5 explainers x 1 seed = 20 cells, "
            "6 metrics") in out
    bad = tmp_path / "bad.yaml"
    bad.write_text(textwrap.dedent("""
        name: bad
        datasets: [phantom_cxr]
        models: [{name: resnet18, recipe: default}]
        explainers: [gradcam, randm]
        metrics: [pointing_game]
    """))
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0  # one line, no traceback
    assert "bad.yaml: explainers[1]: unknown explainer 'randm'; did you mean 'random'" in err


def test_run_bad_limit_and_missing_suite(capsys):
    assert main(["run", "nope.yaml"]) == 2
    assert "no such suite file" in capsys.readouterr().err
    assert main(["run", "quick", "--limit", "0"]) == 2
    assert "--limit" in capsys.readouterr().err


def test_limit_below_a_batch_metric_refused_before_work(tmp_path, capsys):
    # sufficiency compares a sample with the others of its batch: --limit 1 trained, explained and scored,
    # then had no row (a review); now refused before the output folder exists
    suite = tmp_path / "s.yaml"
    suite.write_text(textwrap.dedent("""
        name: s
        samples: 8
        batch_size: 8
        datasets: [{name: phantom_cxr, params: {n: 48, size: 32}}]
        models: [{name: small_cnn, recipe: {epochs: 1}}]
        explainers: [saliency]
        metrics: [sufficiency]
    """))
    out = tmp_path / "out"
    assert main(["run", str(suite), "--limit", "1", "--out", str(out), "--cache", str(tmp_path / "c"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "--limit 1: metric 'sufficiency' compares each sample with the others of its batch and needs 2" in err
    assert not out.exists() and not (tmp_path / "c").exists()


def test_report_on_non_run_folder(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "not a faithbench run folder" in capsys.readouterr().err


def test_console_script_usage_error_exit_code():
    proc = subprocess.run([sys.executable, "-m", "faithbench.cli", "frobnicate"], capture_output=True, text=True)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0


@pytest.mark.parametrize("argv, expected, absent", [
    (["list", "metrics", "deletion"], {"deletion_auc", "region_deletion_correlation", "temporal_deletion"},
     {"insertion_auc"}),
    (["list", "explainers", "grad"], {"gradcam", "integrated_gradients"}, {"random"}),
    (["list", "suites", "qu"], {"quick"}, {"zoo"}),
    (["list", "metrics", "deletion*"], {"deletion_auc"}, {"region_deletion_correlation"}),  # a glob stays one
    (["list", "models", "RESNET"], {"resnet18", "resnet18_3d"}, {"small_cnn"}),  # case-insensitive (a walkthrough)
    (["list", "suites", "Q*"], {"quick"}, {"zoo"}),
    # helper 136: --params before the pattern was a usage error
    (["list", "explainers", "--params", "gradcam_pp"], {"gradcam_pp", "parameters:"}, {"gradcam", "random"}),
    (["list", "explainers", "gradcam_pp", "--params"], {"gradcam_pp", "parameters:"}, {"gradcam", "random"}),
    (["list", "--params", "explainers", "gradcam_pp"], {"gradcam_pp", "parameters:"}, {"gradcam", "random"}),
])
def test_list_pattern_is_a_substring_or_a_glob(capsys, argv, expected, absent):
    assert main(argv) == 0
    names = {line.split()[0] for line in capsys.readouterr().out.splitlines()}
    assert expected <= names and not absent & names


def test_list_suites_gives_each_description(capsys):
    assert main(["list", "suites", "quick"]) == 0
    assert capsys.readouterr().out.strip() == (
        "quick  Chest-like phantoms whose lesion decides the label; a plain CNN, a timm ResNet-18 and a small ViT "
        "trained from recipes; Grad-CAM, gradients and integrated gradients against two controls (random: the chance "
        "level; sobel: an edge map that ignores the model); faithfulness by deletion/insertion, localisation against "
        "the lesion mask.")


def test_report_of_a_folder_that_does_not_exist(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.strip() == (f"faithbench: error: {tmp_path / 'nowhere'}: no such folder (a run "
                                               "folder: the --out of faithbench run)")


@pytest.mark.parametrize("kind, what", [("metrics", "metric"), ("explainers", "explainer"), ("suites", "suite")])
def test_list_with_no_match_says_so_and_exits_1(capsys, kind, what):
    assert main(["list", kind, "xyz"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"faithbench: no {what} matches 'xyz'; patterns are substrings or globs\n"


def test_run_names_the_device_option(tmp_path, capsys):
    assert main(["run", "quick", "--device", "gpu", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == "faithbench: error: --device: expected one of auto, cpu, cuda, cuda:N, mps, got 'gpu'\n"
    assert not (tmp_path / "out").exists()


def test_validate_refuses_repeated_seeds(tmp_path, capsys):
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\nseeds: [0, 0]\ndatasets: [phantom_cxr]\nmodels: [{name: small_cnn, recipe: default}]\n"
                     "explainers: [random]\nmetrics: [pointing_game]\n")
    assert main(["validate", str(suite)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"faithbench: error: {suite}: seeds: expected distinct integers from 0 to 2**32 - 1")
    assert err.count("\n") == 1


def test_the_skipped_line_tells_skips_from_undefined_values():
    import pandas as pd

    from faithbench.cli import skipped_summary

    undefined = "5 of 8 samples undefined (NaN, e.g. an empty mask): no row"
    rows = pd.DataFrame({"cell": ["a", "a", "b", "c"], "metric": ["", "focus", "pointing_game", "relevance_mass"],
                         "reason": ["explainer does not support 3D", "needs mask 'lesion'", undefined, undefined]})
    assert skipped_summary(rows) == ("skipped 1 cell; skipped 1 metric in cells; undefined values (NaN, no row) "
                                     "in 2 (cell, metric) pairs (see skipped.csv)")
    assert skipped_summary(rows.iloc[2:]) == ("undefined values (NaN, no row) in 2 (cell, metric) pairs "
                                              "(see skipped.csv)")
    assert skipped_summary(rows.iloc[[0, 3]]) == ("skipped 1 cell; undefined values (NaN, no row) in 1 (cell, metric) "
                                                  "pair (see skipped.csv)")


def test_a_plugin_category_of_its_own_is_listed_and_written():
    from faithbench.listing import describe
    from faithbench.metrics.base import Metric
    from faithbench.types import Category, MetricInfo, category_name

    class Mine(Metric):
        """Mine: a plugin metric of a category the enum does not have."""

        info = MetricInfo("mine", higher_is_better=True, category="calibration")

    assert category_name(Category.ROBUSTNESS) == "robustness" and category_name("calibration") == "calibration"
    assert describe("metrics", Mine).startswith("[calibration; ↑] Mine:")  # was AttributeError: 'str' .value


def test_an_explainer_description_is_a_sentence_without_changing_a_symbol():
    """A review: docs/plugins.md's explainer, "x * d score / dx", was listed as "X * d score / dx"."""
    from faithbench.listing import describe

    class Symbol:
        """x * d score / dx"""

    class Phrase:
        description = "gradient of the target score"

    assert describe("explainers", Symbol).endswith("] x * d score / dx.")
    assert describe("explainers", Phrase).endswith("] Gradient of the target score.")
    Phrase.description = "input-gradient plus bias-gradient maps"
    assert describe("explainers", Phrase).endswith("] Input-gradient plus bias-gradient maps.")


def test_a_plugin_without_a_docstring_is_listed_as_having_no_description():
    """A held-out review: an explainer without a docstring was listed as a lone "." after its tags."""
    from faithbench.listing import describe
    from faithbench.metrics.base import Metric
    from faithbench.types import MetricInfo

    class Bare:
        family, dims, architectures = "gradient", (2,), ("cnn",)

    class BareMetric(Metric):
        info = MetricInfo("bare", higher_is_better=False, category="complexity")

    assert describe("explainers", Bare) == "[gradient; 2D; cnn] (no description)"
    assert describe("metrics", BareMetric) == "[complexity; ↓] (no description)"
    assert describe("datasets", Bare) == "(no description)"


def test_a_warning_while_the_suite_loads_is_shown_once():
    """A held-out review: a model builder or dataset plugin that warned while the suite loaded made
    validate and run loop for ever (each warning shown again was recorded again), memory growing."""
    code = textwrap.dedent("""
        import warnings
        from faithbench import cli, config

        def load(name):
            warnings.warn("a plugin's own warning", UserWarning)
            warnings.warn(config.SuiteWarning("a suite warning"))
            raise ValueError("and then an error")

        config.load_suite = load
        try:
            cli._load_suite("x")
        except ValueError as exc:
            print("raised:", exc)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "raised: and then an error"
    assert proc.stderr.count("a plugin's own warning") == 1
    assert "faithbench: warning: a suite warning" in proc.stderr


def test_an_unexpected_failure_names_its_command(monkeypatch, capsys):
    """A held-out review: `faithbench list` said "run failed ... finished cells are cached"."""
    import faithbench.cli as cli

    def boom(args):
        raise RuntimeError("a plugin's bug")

    monkeypatch.setattr(cli, "_cmd_list", boom)
    assert main(["list", "metrics"]) == 1
    assert capsys.readouterr().err.strip() == ("faithbench: list failed: RuntimeError: a plugin's bug (rerun with "
                                               "--debug for the traceback)")


def test_an_empty_out_or_cache_or_suite_file_is_refused(tmp_path, capsys):
    """A held-out review: --cache "" (an unset shell variable) fell back to ~/.cache/faithbench and --out ""
    to reports/<suite> without a word; an empty suite file said 'got NoneType'."""
    for flag in ("--out", "--cache"):
        assert main(["run", "quick", flag, ""]) == 2
        assert capsys.readouterr().err.strip() == (f"faithbench: error: {flag}: expected a folder, got an empty string "
                                                   f"(omit {flag} for the default)")
    (tmp_path / "empty.yaml").write_text("")
    assert main(["validate", str(tmp_path / "empty.yaml")]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "empty.yaml: expected a mapping of suite keys (name, datasets, models, …), got an empty file")


def test_a_cache_corruption_warning_is_one_faithbench_line(capsys):
    """A held-out review (helper 122): a corrupted cache entry recomputed was reported as
    ``/…/runner/cell.py:291: CacheCorruptionWarning: …``, not as faithbench's own warnings are."""
    from faithbench import cli
    from faithbench.store import CacheCorruptionWarning

    cli._show_warning(CacheCorruptionWarning("cache entry x is corrupted; recomputing"), CacheCorruptionWarning,
                      "/x/faithbench/runner/cell.py", 291)
    assert capsys.readouterr().err == "faithbench: warning: cache entry x is corrupted; recomputing\n"


def test_a_wait_for_another_runs_training_is_one_faithbench_line(capsys):
    """Review 169: the wait for another process's training was shown as a raw Python warning
    with faithbench's source path and line."""
    from faithbench import cli
    from faithbench.store import CacheLockWait

    text = "model 'm' (seed 0) is being trained by another process sharing this cache; waiting for it to release /c/x"
    cli._show_warning(CacheLockWait(text), CacheLockWait, "/x/faithbench/models/checkpoint.py", 334)
    assert capsys.readouterr().err == f"faithbench: warning: {text}\n"


def test_explainer_parameters_in_the_docs_are_the_registrys(capsys):
    """Helper 132: the explainers' parameters and defaults were documented nowhere and `list` showed none."""
    import re
    from pathlib import Path

    from faithbench.config import ensure_plugins_loaded
    from faithbench.listing import parameters
    from faithbench.registry import explainers

    ensure_plugins_loaded()
    text = (Path(__file__).parents[1] / "docs" / "explainers.md").read_text()
    section = text.split("### Parameters and defaults", 1)[1]
    rows = dict(re.findall(r"^\| `(\w+)` \| (.+) \|$", section, flags=re.M))
    expected = {n: ", ".join(f"`{p}`" for p in parameters(explainers.get(n)).split(", ")) or "none"
                for n in explainers.names() if explainers.origin(n) == "builtin"}
    assert {n: rows.get(n) for n in expected} == {n: v if v != "``" else "none" for n, v in expected.items()}
    assert main(["list", "explainers", "occlusion", "--params"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("Score drop when a sliding window is set to a baseline (captum).")
    assert out[1].split() == ["parameters:", "window=8,", "stride=4,", "baseline=0.0,", "batch_size=64"]
    assert main(["list", "explainers", "temporal_occlusion"]) == 0  # visits, not volumes (a review: tagged 3D)
    assert "[perturbation; visits; cnn,vit]" in capsys.readouterr().out
