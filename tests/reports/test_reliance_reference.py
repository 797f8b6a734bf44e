"""The "Saliency vs measured reliance" section gives the control's ρ as the reference (a held-out statistics
review: the model-blind random control came out at ρ 0.66, p 0.005, because its lesion mass tracks the lesion's
area and so does the model's drop; gradcam's p = 1e-4 read as per-sample faithfulness)."""

from __future__ import annotations

import json

import pandas as pd

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
