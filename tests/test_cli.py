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
    assert main(["list", "metrics", "relevance_rank"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.endswith("the share of the K most salient features that lie in M, |top_K(s) ∩ M| / K.")


def test_validate_ok_and_errors(tmp_path, capsys):
    assert main(["validate", "quick"]) == 0
    assert "ok" in capsys.readouterr().out
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
