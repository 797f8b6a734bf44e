"""The "Saliency vs measured reliance" section gives the control's ρ as the reference (a held-out statistics
review: the model-blind random control came out at ρ 0.66, p 0.005, because its lesion mass tracks the lesion's
area and so does the model's drop; gradcam's p = 1e-4 read as per-sample faithfulness)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from faithbench.reports.medical import RELIANCE_SALIENCY_FILE, control_reference, medical_sections

TABLE = pd.DataFrame({"dataset": "phantom_cxr", "model": "small_cnn",
                      "explainer": ["gradcam", "integrated_gradients", "random", "saliency", "sobel"],
                      "evidence": "lesion", "n": 16, "mass": [0.020, 0.025, 0.007, 0.014, 0.012], "drop": 0.025,
                      "mass_rank": 1, "reliance_rank": 1, "spearman": [0.821, 0.953, 0.662, 0.403, 0.494],
                      "p": [9.8e-05, 1.2e-08, 0.0052, 0.12, 0.052]})


def test_each_row_gets_the_controls_rho_and_the_legend_says_to_compare():
    table, sentence = control_reference(TABLE)
    assert table["control_spearman"].tolist() == [0.662] * 5
    assert list(table.columns).index("control_spearman") == list(table.columns).index("spearman") + 1
    assert "random control ρ = lesion (phantom_cxr / small_cnn) 0.66" in sentence
    assert "only above the control's" in sentence
    sobel, note = control_reference(TABLE, control="sobel")
    assert sobel["control_spearman"].tolist() == [0.494] * 5 and "sobel control ρ" in note
    alone, missing = control_reference(TABLE[TABLE["explainer"] != "random"])
    assert "control_spearman" not in alone.columns and "No rows of the control random" in missing


def test_the_report_section_shows_the_reference_of_the_runs_control(tmp_path):
    TABLE.to_csv(tmp_path / RELIANCE_SALIENCY_FILE, index=False)
    (tmp_path / "manifest.json").write_text(json.dumps({"control": "random"}))
    (body,) = [b for key, _, b in medical_sections(tmp_path, lambda prefix: "") if key == "reliance"]
    assert "<th>control_spearman</th>" in body and "random control ρ = lesion (phantom_cxr / small_cnn) 0.66" in body
    assert "does the map follow the model sample by sample?" not in body


def test_the_csv_carries_the_controls_rho(tmp_path):
    """A held-out docs review (helper 167): docs/outputs.md lists control_spearman as a column of
    reliance_saliency.csv, but only index.html had it."""
    from faithbench.reports.medical import write_reliance_saliency

    drops = pd.DataFrame([("d", "m", 0, f"s{i}", "lesion", 0.1 * i) for i in range(5)],
                         columns=["dataset", "model", "seed", "sample_id", "evidence", "drop"])
    masses = {"gradcam": [0.1, 0.2, 0.3, 0.4, 0.5], "random": [0.3, 0.1, 0.2, 0.5, 0.4]}
    mass = pd.DataFrame([("d", "m", 0, name, f"s{i}", "lesion", v) for name, values in masses.items()
                         for i, v in enumerate(values)],
                        columns=["dataset", "model", "seed", "explainer", "sample_id", "evidence", "mass"])
    table = pd.read_csv(write_reliance_saliency(tmp_path, mass, drops, control="random"))
    assert list(table.columns) == ["dataset", "model", "explainer", "evidence", "n", "mass", "drop", "mass_rank",
                                   "reliance_rank", "spearman", "control_spearman", "p"]
    # random's ranks against the drop's 1..5: 3 1 2 5 4, d² = 4 + 1 + 1 + 1 + 1, ρ = 1 - 6 * 8 / 120 = 0.6
    assert table["spearman"].tolist() == pytest.approx([1.0, 0.6])
    assert table["control_spearman"].tolist() == pytest.approx([0.6, 0.6])
    # the report reads the CSV back: one control_spearman column, the same values
    again, _ = control_reference(table)
    assert list(again.columns) == list(table.columns) and again["control_spearman"].tolist() == pytest.approx([0.6] * 2)
    # a run without its control: the column is there, empty
    alone = pd.read_csv(write_reliance_saliency(tmp_path, mass[mass.explainer != "random"], drops))
    assert "control_spearman" in alone.columns and alone["control_spearman"].isna().all()
