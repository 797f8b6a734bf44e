"""leaderboard.tex fits the text width of LaTeX ``article`` (compiled with pdflatex when present)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from faithbench.reports.latex import leaderboard_latex

PDFLATEX = shutil.which("pdflatex")
pytestmark = pytest.mark.skipif(PDFLATEX is None, reason="pdflatex not installed (apt-get install texlive-latex-base)")

# booktabs is not in texlive-latex-base; its rules do not change a table's width.
RULES = r"\IfFileExists{booktabs.sty}{\usepackage{booktabs}}{\newcommand{\toprule}{\hline}" \
        r"\newcommand{\midrule}{\hline}\newcommand{\bottomrule}{\hline}\def\cmidrule(##1)##2{}}"
NATURAL = r"\newcommand{\faithbenchfit}[1]{#1}"  # no scaling: the layout itself must fit


def compile_log(tmp_path: Path, tex: str, extra: str = "") -> str:
    (tmp_path / "board.tex").write_text(tex, encoding="utf-8")
    (tmp_path / "doc.tex").write_text("\n".join([r"\documentclass{article}", r"\usepackage{graphicx}", RULES, extra,
                                                 r"\begin{document}", r"\input{board}", r"\end{document}"]))
    subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                   capture_output=True, timeout=120)
    log = (tmp_path / "doc.log").read_text(errors="replace")
    assert (tmp_path / "doc.pdf").exists(), log[-2000:]
    return log


def test_quick_suite_leaderboard_fits_article_without_scaling(tmp_path, quick_board):
    board = quick_board()
    board.loc[board.index[3], "n"] = 29  # a cell with fewer defined samples: an extra line, not a wider column
    board["model_at_chance"] = board["model"] == "vit_tiny"
    assert board.groupby(["dataset", "model"]).size().tolist() == [5 * 6] * 3
    log = compile_log(tmp_path, leaderboard_latex(board), NATURAL)
    assert "Overfull \\hbox" not in log, re.findall(r"Overfull.*", log)


def test_a_wider_leaderboard_is_scaled_to_the_line(tmp_path, quick_board):
    board = quick_board()
    wide = [board.assign(metric=board["metric"] + f"_v{i}") for i in range(2)]  # 12 metrics
    tex = leaderboard_latex(pd.concat(wide, ignore_index=True))
    assert 12 == tex.split(r"\begin{tabular}{", 1)[1].split("}")[0].count("r")
    natural = compile_log(tmp_path, tex, NATURAL)
    assert "Overfull \\hbox" in natural  # too wide as laid out...
    assert "Overfull \\hbox" not in compile_log(tmp_path, tex)  # ...so \faithbenchfit scales it down


def test_a_double_quote_is_straight_and_a_long_name_takes_few_lines(tmp_path):
    """A held-out review: `"` in a name typeset as a closing curly quote (pg<t>&"# read pg<t>&”#) under OT1,
    LaTeX's default encoding, and a 64-character alias took 11 lines, one word each."""
    from faithbench.reports.markup import latex_breakable

    long = "a_very_long_explainer_name_with_many_underscores_and_more_words"
    board = pd.DataFrame([{"dataset": "d", "model": "m", "metric": 'pg<t>&"#', "explainer": e, "mean": mean,
                           "ci_low": mean - 0.1, "ci_high": mean + 0.1, "rank": rank, "higher_is_better": True,
                           "beats_random": False} for e, mean, rank in ((long, 0.6, 1), ("input_x_gradient", 0.4, 2))])
    tex = leaderboard_latex(board)
    assert r"pg\textless{}t\textgreater{}\&\textquotedbl{}\#" in tex and '"' not in tex.split("\n\\begin{table}")[1]
    assert latex_breakable(long) == (r"a\_very\_\\long\_\\explainer\_\\name\_with\_\\many\_\\underscores\_\\"
                                     r"and\_more\_\\words")  # 7 lines, each up to 10 characters where the words allow
    assert latex_breakable("input_x_gradient") == r"input\_x\_\\gradient"
    log = compile_log(tmp_path, tex)  # OT1: \textquotedbl falls back to the typewriter quote (LATEX_PREAMBLE)
    assert "! " not in log and "Overfull \\hbox" not in log
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", "doc.pdf", "-"], cwd=tmp_path, capture_output=True, text=True).stdout
        assert 'pg<t>&"#' in text and "”" not in text


def test_a_greek_name_compiles_with_pdflatex(tmp_path):
    """A held-out review: "! LaTeX Error: Unicode character α (U+03B1) not set up for use with LaTeX" for the
    alias IG_ünïcødé_α→β; Greek and ≤ are now math, Latin accents and → pdflatex sets itself (a diff review:
    the minus sign U+2212, ∆, ∼ and ⊥ still stopped it)."""
    board = pd.DataFrame([{"dataset": "d α", "model": "m", "metric": "mass_Δ≤1", "explainer": e, "mean": mean,
                           "ci_low": mean - 0.1, "ci_high": mean + 0.1, "rank": rank, "higher_is_better": True,
                           "beats_random": False} for e, mean, rank in (("IG_ünïcødé_α→β", 0.6, 1),
                                                                     ("IG α=0.5", 0.4, 2), ("sal −∆∼⊥", 0.3, 3))])
    log = compile_log(tmp_path, leaderboard_latex(board))
    assert "! " not in log and "not set up for use with LaTeX" not in log
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", "doc.pdf", "-"], cwd=tmp_path, capture_output=True, text=True).stdout
        assert "IG α=0.5" in text and "≤" in text
