"""What a label may hold (held-out review report6 F1, F2, F4, F6): a name or alias with a control character, of
whitespace only or padded with it is refused at validation, naming the key; labels whose plot file names differ
only by case are refused as one file name; an alias YAML reads as a number says to quote it."""

from __future__ import annotations

import pytest

from faithbench.cli import main

SUITE = """name: t
datasets: [{name: phantom_cxr, params: {size: 32, n: 8}}]
models: [{name: small_cnn, recipe: {epochs: 1}}]
explainers: [gradcam, random]
metrics: [pointing_game]
"""


def _validate(tmp_path, capsys, old, new):
    assert old in SUITE
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE.replace(old, new))
    code = main(["validate", str(path)])
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    return code, err, path


@pytest.mark.parametrize("old, new, expected", [
    ("[gradcam, random]", '[gradcam, {name: random, alias: "n\\0ul"}]',
     "explainers[1].alias: expected no control character in a name or alias, got 'n\\x00ul' (a NUL at position 2)"),
    ("[gradcam, random]", '[gradcam, {name: random, alias: "a\\nb | c"}]',
     "explainers[1].alias: expected no control character in a name or alias, got 'a\\nb | c' (a newline at "
     "position 2)"),
    ("[gradcam, random]", '[gradcam, {name: random, alias: "   "}]',
     "explainers[1].alias: expected a name or alias with a visible character, got '   '"),
    ("[gradcam, random]", '[{name: gradcam, alias: g}, {name: random, alias: "g "}]',
     "explainers[1].alias: expected no whitespace at the start or end of a name or alias (it would print like "
     "'g'), got 'g '"),
    ("[pointing_game]", '[{name: pointing_game, alias: "d\\tx"}]',
     "metrics[0].alias: expected no control character in a name or alias, got 'd\\tx' (a tab at position 2)"),
    ("{name: phantom_cxr,", '{name: phantom_cxr, alias: " ph",', "datasets[0].alias: expected no whitespace"),
    ("{name: small_cnn,", '{name: small_cnn, alias: "m\\u2028",', "models[0].alias: expected no control character "
                                                                   "in a name or alias, got 'm\\u2028' (U+2028 at"),
    ("[gradcam, random]", '[gradcam, "random\\r"]', "explainers[1].name: expected no control character in a name "
                                                    "or alias, got 'random\\r' (a carriage return at position 7)"),
    ("name: t", 'name: "t\\0"', "name: expected no control character"),
    ("{name: small_cnn,", '{name: small_cnn, alias: "cxr\\u200b",', "models[0].alias: expected no control "
                                                                      "character in a name or alias, got 'cxr\\u200b'"),
    ("{name: small_cnn,", '{name: small_cnn, alias: "cxr\\u202egnp.",', "models[0].alias: expected no control "
                                                                         "character in a name or alias, got 'cxr"),
])
def test_a_label_that_would_break_the_outputs_is_refused(tmp_path, capsys, old, new, expected):
    code, err, path = _validate(tmp_path, capsys, old, new)
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"faithbench: error: {path}: {expected}")


def test_labels_with_inner_spaces_and_symbols_stay_accepted():
    from faithbench.names import check_label

    for label in ["a b", "é中文🙂 spaced name", 'ph,an "tom" <b>x</b>', "../x", "1e3", "👨\u200d👩"]:
        assert check_label(label) == label
    assert check_label(None) is None


@pytest.mark.parametrize("old, new, expected", [
    ("datasets: [{name: phantom_cxr, params: {size: 32, n: 8}}]",
     "datasets: [{name: phantom_cxr, alias: Ph, params: {size: 32, n: 8}}, "
     "{name: phantom_cxr, alias: ph, params: {size: 32, n: 8, seed: 1}}]",
     "datasets[1]: label 'ph' and datasets[0] 'Ph' map to file names 'ph' and 'Ph' that differ only by case"
     ", one file on macOS and Windows (their plots would overwrite each other); give one an alias"),
    ("[pointing_game]", "[pointing_game, {name: pointing_game, alias: Pointing_Game, params: {mask: heart}}]",
     "metrics[1]: label 'Pointing_Game' and metrics[0] 'pointing_game' map to file names 'Pointing_Game' and "
     "'pointing_game' that differ only by case, one file on macOS and Windows (their plots would overwrite each "
     "other); give one an alias"),
    ("datasets: [{name: phantom_cxr, params: {size: 32, n: 8}}]\nmodels: [{name: small_cnn, recipe: {epochs: 1}}]",
     "datasets: [{name: phantom_cxr, alias: a_B, params: {size: 32, n: 8}}, "
     "{name: phantom_cxr, alias: a, params: {size: 32, n: 8, seed: 1}}]\n"
     "models: [{name: small_cnn, alias: c, recipe: default}, {name: small_cnn, alias: b_c, recipe: default}]",
     "datasets x models: labels a / b_c and a_B / c map to plot file names 'a_b_c' and 'a_B_c' that differ only "
     "by case, one file on macOS and Windows; give one an alias"),
])
def test_labels_whose_file_names_differ_only_by_case_are_refused(tmp_path, capsys, old, new, expected):
    code, err, path = _validate(tmp_path, capsys, old, new)
    assert (code, err) == (2, [f"faithbench: error: {path}: {expected}"])


@pytest.mark.parametrize("alias, expected", [
    ("12", "expected a string, got int 12: YAML reads an unquoted number, date, true or false as one; quote it "
           "as you wrote it"),
    ("0x1F", "expected a string, got int 31: YAML reads an unquoted number, date, true or false as one; quote it "
             "as you wrote it"),
    ("1e3", "expected a string, got float 1000.0: YAML reads an unquoted number, date, true or false as one; quote it "
            "as you wrote it"),
    ("2024-01-01", "expected a string, got date datetime.date(2024, 1, 1): YAML reads an unquoted number, date, true "
                   "or false as one; quote it as you wrote it"),  # a fuzzing review: "Input should be a valid string"
])
def test_an_unquoted_numeric_alias_is_told_to_be_quoted(tmp_path, capsys, alias, expected):
    code, err, path = _validate(tmp_path, capsys, "[gradcam, random]", f"[gradcam, {{name: random, alias: {alias}}}]")
    assert (code, err) == (2, [f"faithbench: error: {path}: explainers[1].alias: {expected}"])
    assert _validate(tmp_path, capsys, "[gradcam, random]", f"[gradcam, {{name: random, alias: '{alias}'}}]")[0] == 0
