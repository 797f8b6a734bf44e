"""Strict suite YAML: alias budget, duplicate keys, include cycles, encoding (issue 17)."""

from __future__ import annotations

import re

import pytest

from faithbench.config import SuiteError, load_suite
from faithbench.config_yaml import YAMLFileError, load_yaml_file


BASE = """name: t
datasets: [phantom_cxr]
models: [{name: resnet18, recipe: {epochs: 1}}]
explainers: [EXPLAINER, random]
metrics: [pointing_game]
"""


def _bomb(levels: int) -> str:
    items = ['&l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    items += [f"&l{i} [" + ",".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return BASE.replace("EXPLAINER", "{name: gradcam, params: {target_layer: [" + ", ".join(items) + "]}}")


def test_alias_bomb_is_refused_naming_file_and_key(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(_bomb(9))  # ~600 bytes; 10**9 strings written out
    assert len(path.read_bytes()) < 700
    with pytest.raises(SuiteError, match=r"bomb.yaml: explainers: YAML aliases expand the suite beyond "
                                         r"10000 extra nodes \(near line 4\)"):
        load_suite(path)


def test_values_nested_too_deeply_are_a_suite_error(tmp_path):
    """A fuzzing review: 5000 nested lists were a RecursionError, exit 1."""
    path = tmp_path / "deep.yaml"
    path.write_text(BASE.replace("name: t", "name: t\ndescription: " + "[" * 5000 + "]" * 5000))
    with pytest.raises(SuiteError, match=r"deep.yaml: malformed YAML: values nested too deeply to read"):
        load_suite(path)


def test_aliases_within_the_budget_still_work(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text(BASE.replace("EXPLAINER", "gradcam").replace(
        "models: [{name: resnet18, recipe: {epochs: 1}}]",
        "models: [{name: resnet18, recipe: &r {epochs: 1, lr: 0.01}}, {name: small_cnn, recipe: *r}]"))
    suite = load_suite(path)
    assert [m.recipe.lr for m in suite.models] == [0.01, 0.01]


def test_recursive_alias_is_refused(tmp_path):
    path = tmp_path / "rec.yaml"
    path.write_text(BASE.replace("EXPLAINER", "{name: gradcam, params: {target_layer: &a [*a]}}"))
    with pytest.raises(SuiteError, match="rec.yaml: explainers: YAML aliases expand"):
        load_suite(path)


def test_duplicate_key_is_an_error(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text(BASE.replace("EXPLAINER", "gradcam") + "seeds: [0]\nseeds: [1, 2]\n")
    with pytest.raises(SuiteError, match=r"dup.yaml: line 7, column 1: malformed YAML: duplicate key 'seeds' "
                                         r"\(first written at line 6\)"):
        load_suite(path)


def test_duplicate_nested_key_is_an_error(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text(BASE.replace("EXPLAINER", "gradcam").replace("{epochs: 1}", "{epochs: 1, epochs: 3}"))
    with pytest.raises(SuiteError, match=r"dup.yaml: line 3, .*duplicate key 'epochs'"):
        load_suite(path)


@pytest.mark.parametrize("key, line", [("~", 7), ("null", 7)])
def test_a_null_key_is_named_with_its_line(tmp_path, key, line):
    """A fuzzing review: ``~: 3`` was "d25.yaml: : Keys should be strings" (no key, no line)."""
    path = tmp_path / "null.yaml"
    path.write_text(BASE.replace("EXPLAINER", "gradcam") + f"seeds: [0]\n{key}: 3\n")
    with pytest.raises(SuiteError, match=rf"^{path}: line {line}, column 1: malformed YAML: a null key \(~, null or "
                                         r"nothing before the colon\); expected a key name$"):
        load_suite(path)


def test_include_cycle_through_relative_paths(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.yaml").write_text("include: ../b.yaml\nname: a\n")
    (tmp_path / "b.yaml").write_text("include: sub/../sub/a.yaml\n" + BASE.replace("EXPLAINER", "gradcam"))
    with pytest.raises(SuiteError, match=r"include: circular include of .*\(a.yaml -> b.yaml -> a.yaml\)"):
        load_suite(tmp_path / "sub" / "a.yaml")


def test_non_utf8_suite_names_the_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(BASE.replace("EXPLAINER", "gradcam").replace("name: t", "name: t\ndescription: 'Br\xfcckner'")
                     .encode("latin-1"))
    with pytest.raises(SuiteError, match=r"latin1.yaml: line 2: not UTF-8 text \(byte 0xfc at offset 24\)"):
        load_suite(path)


def test_an_exponent_without_a_decimal_point_is_a_number(tmp_path):
    """A review: YAML 1.1 (PyYAML) reads 1e-3 as a string, so recipe: {lr: 1e-3} was refused ("expected a
    number, got str '1e-3'"); a suite reads YAML 1.2's floats. A quoted "1e-3" stays a string."""
    import yaml

    from faithbench.config_yaml import StrictLoader

    assert yaml.load("[1e-3, -2E+2, 1.5e3, 12, '1e-3', abc1e3]", Loader=StrictLoader) == \
        [0.001, -200.0, 1500.0, 12, "1e-3", "abc1e3"]
    path = tmp_path / "s.yaml"
    path.write_text("name: t\ndatasets: [{name: phantom_cxr, params: {size: 32, n: 8}}]\n"
                    "models: [{name: small_cnn, recipe: {epochs: 1, lr: 1e-3, weight_decay: 5e-2}}]\n"
                    "explainers: [saliency]\nmetrics: [pointing_game]\n")
    recipe = load_suite(path).models[0].recipe
    assert (recipe.lr, recipe.weight_decay) == (0.001, 0.05)


@pytest.mark.parametrize("written, read", [("010", 8), ("007", 7), ("1:30", 90), ("1_0", 10), ("0b101", 5),
                                           ("1:30.5", 90.5), ("1_0.5", 10.5)])
def test_yaml_1_1_number_forms_are_refused_not_read_as_other_numbers(tmp_path, written, read):
    """A fuzzing review: ``samples: 010`` ran 8 samples, ``seeds: [1:30]`` seed 90, without a word."""
    path = tmp_path / "s.yaml"
    path.write_text(f"samples: {written}\n")
    with pytest.raises(YAMLFileError, match=rf"^{re.escape(str(path))}: line 1, column 10: malformed YAML: "
                                            rf"'{re.escape(written)}' is a YAML 1.1 number form that reads as {read}; "
                                            r"write the number plainly \(or quote it, if it is text\)$"):
        load_yaml_file(path)


def test_plain_numbers_and_quoted_text_still_read(tmp_path):
    for text, value in (("10", 10), ("-5", -5), ("0", 0), ("+3", 3), ("0x1F", 31), ("1.5", 1.5), ("1e-3", 0.001),
                        ("'010'", "010"), ("'1:30'", "1:30"), ("'on'", "on")):
        path = tmp_path / "s.yaml"
        path.write_text(f"v: {text}\n")
        assert load_yaml_file(path) == {"v": value}


def test_a_key_yaml_reads_as_a_boolean_is_named(tmp_path):
    """A fuzzing review: ``on: 1`` at the top of a suite was refused as "[1]: Keys should be strings"."""
    path = tmp_path / "s.yaml"
    path.write_text("name: x\non: 1\n")
    with pytest.raises(YAMLFileError, match=r"line 2, column 1: malformed YAML: the key 'on' is read by YAML as True; "
                                            r"quote it \('on'\) if it is a name$"):
        load_yaml_file(path)


def test_a_merge_key_written_twice_in_one_mapping_is_refused(tmp_path):
    """A fuzzing review: ``{<<: {width: 4}, <<: {width: 8}}`` passed and the later one won."""
    path = tmp_path / "s.yaml"
    path.write_text("a: &a {width: 4}\nb: &b {width: 8}\nc: {<<: *a, <<: *b}\nd: {<<: [*a, *b], depth: 2}\n")
    with pytest.raises(YAMLFileError, match=r"line 3, column 13: malformed YAML: a merge key << written twice in one "
                                            r"mapping \(the later would win without a word\); keep one$"):
        load_yaml_file(path)
    path.write_text("a: &a {width: 4}\nd: {<<: *a, depth: 2}\n")
    assert load_yaml_file(path)["d"] == {"width": 4, "depth": 2}
