"""leaderboard.tex fits the text width of LaTeX ``article`` (compiled with pdflatex when present)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from faithbench.reports.tables import leaderboard_latex

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
