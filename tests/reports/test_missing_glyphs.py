"""Characters the plot font cannot draw (held-out review report6 F3): matplotlib warned once per character, figure
and drawing (57 raw ``UserWarning: Glyph … missing from font(s)`` lines under ``--quiet`` for a CJK and emoji
name); now one logged line per run names them, and other warnings pass as before."""

from __future__ import annotations

import logging
import warnings

from faithbench.cli import main


def _draw(tmp_path, title: str) -> None:
    from faithbench.reports.figure import save, subplots, titled

    fig, ax = subplots(figsize=(3, 2))
    ax.set_xlabel(title)
    titled(fig, title)
    save(fig, tmp_path / "fig")


def test_missing_glyphs_become_one_line_and_other_warnings_pass(tmp_path, caplog):
    from faithbench.progress import missing_glyphs_noted

    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING, logger="faithbench"):
        warnings.simplefilter("always")
        with missing_glyphs_noted():
            _draw(tmp_path, "é中文🙂")
            with missing_glyphs_noted():  # a report inside a run: still one line, the outer block's
                _draw(tmp_path, "ph 中")
            warnings.warn("another warning", RuntimeWarning)
    assert [str(w.message) for w in caught] == ["another warning"]
    lines = [r.getMessage() for r in caplog.records if "plot font" in r.getMessage()]
    assert lines == ["plots: the plot font (DejaVu Sans) cannot draw 中 (U+4E2D), 文 (U+6587), 🙂 (U+1F642), which "
                     "show as empty boxes in the figures; the tables and index.html give the names whole"]


def test_names_the_font_draws_give_no_line(tmp_path, caplog):
    from faithbench.progress import missing_glyphs_noted

    with caplog.at_level(logging.WARNING, logger="faithbench"), missing_glyphs_noted():
        _draw(tmp_path, "é ü ñ spaced <b>")
    assert not [r for r in caplog.records if "plot font" in r.getMessage()]


def test_a_report_of_cjk_names_prints_one_line_under_quiet(tmp_path, capsys, caplog, names):
    import json

    import pandas as pd

    rows = [{"dataset": "d", "model": "m", "explainer": explainer, "metric": "pointing_game", "seed": 0,
             "sample_id": f"s{i}", "value": float(i % 2), "chance": 0.1, "higher_is_better": True,
             "category": "localization", "label": 1, "target": 1}
            for explainer in ("gradcam", "random", "é中文🙂 spaced name") for i in range(6)]
    run = tmp_path / "cjk"
    run.mkdir()
    pd.DataFrame(rows).to_parquet(run / "results.parquet")
    (run / "manifest.json").write_text(json.dumps({"control": "random", "suite": {"control": "random"}}))
    names["complete"](run)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["report", str(run), "--quiet"]) == 0
    assert not [w for w in caught if "Glyph" in str(w.message)]
    assert "Glyph" not in capsys.readouterr().err  # the line is logged (to stderr outside pytest's log capture)
    lines = [r.getMessage() for r in caplog.records if "plot font" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("plots: the plot font (DejaVu Sans) cannot draw 中 (U+4E2D), "
                                                   "文 (U+6587), 🙂 (U+1F642), which show as empty boxes")
