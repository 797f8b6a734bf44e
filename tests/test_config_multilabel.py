"""Suite keys of multi-label runs: ``target: each_positive`` and ``target: {classes, samples}``."""

import textwrap

import pytest

from faithbench.config import ClassTargets, SuiteError, load_suite

BASE = """
name: t
target: each_positive
datasets: [{name: phantom_cxr_multilabel, params: {n: 4}}]
models: [{name: small_cnn, recipe: default}]
explainers: [gradcam, sobel]
metrics: [{name: pointing_game, params: {mask: target}}, class_sensitivity]
"""


def write(tmp_path, text):
    path = tmp_path / "suite.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_builtin_multilabel_suite_loads():
    suite = load_suite("multilabel")
    assert suite.target == "each_positive" and suite.datasets[0].name == "phantom_cxr_multilabel"
    assert {m.name for m in suite.metrics} >= {"pointing_game", "class_sensitivity"}


def test_class_targets_parse(tmp_path):
    assert load_suite(write(tmp_path, BASE)).target == "each_positive"
    suite = load_suite(write(tmp_path, BASE.replace("each_positive", "{classes: [cavity], samples: one_vs_normal}")))
    assert suite.target == ClassTargets(classes=["cavity"], samples="one_vs_normal")
    assert load_suite(write(tmp_path, BASE.replace("each_positive", "{}"))).target == ClassTargets()


@pytest.mark.parametrize("target, expected", [
    ("{classes: [cavty]}", r"suite.yaml: target.classes\[0\]: unknown class 'cavty' of datasets\[0\] "
                           r"'phantom_cxr_multilabel'; did you mean 'cavity'\? \(classes: nodule, cavity\)"),
    ("{classes: [nodule], sample: all}", r"suite.yaml: target.sample: unknown key 'sample'"),
    ("{samples: some}", r"suite.yaml: target.samples: Input should be 'all', 'positive' or 'one_vs_normal'"),
    ("{classes: []}", r"suite.yaml: target.classes: List should have at least 1 item"),
    ("each_postive", r"suite.yaml: target: Input should be 'predicted', 'label' or 'each_positive'"),
    ("predicted", r"suite.yaml: target: 'predicted' explains one class per sample, but datasets\[0\] "
                  r"'phantom_cxr_multilabel' is multi-label"),
])
def test_target_errors_name_the_key(tmp_path, target, expected):
    with pytest.raises(SuiteError, match=expected):
        load_suite(write(tmp_path, BASE.replace("each_positive", target)))


def test_class_targets_need_a_multilabel_dataset(tmp_path):
    text = BASE.replace("{name: phantom_cxr_multilabel, params: {n: 4}}", "phantom_cxr")
    with pytest.raises(SuiteError, match=r"target: each_positive explains the classes of multi-label datasets, "
                                         r"but datasets\[0\] 'phantom_cxr' is single-label"):
        load_suite(write(tmp_path, text))


def test_class_sensitivity_parameter_error(tmp_path):
    with pytest.raises(SuiteError, match=r"metrics\[1\].params: class_sensitivity: parameter 'others' expects"):
        load_suite(write(tmp_path, BASE.replace("class_sensitivity]", "{name: class_sensitivity, params: {others: x}}]")))


def test_regions_block_on_a_multilabel_dataset_is_a_suite_error(tmp_path):
    path = write(tmp_path, BASE + "regions: {masks: [heart, lung_left]}\n")
    with pytest.raises(SuiteError, match=r"regions: .*datasets\[0\] 'phantom_cxr_multilabel' is multi-label"):
        load_suite(path)


def test_softmax_scored_explainer_on_a_multilabel_dataset_is_a_suite_error(tmp_path):
    text = BASE.replace("explainers: [gradcam, sobel]", "explainers: [gradcam, {name: rise, params: {n_masks: 8}}]")
    with pytest.raises(SuiteError, match=r"explainers\[1\]\.params: score 'softmax' couples the classes"):
        load_suite(write(tmp_path, text))
    fixed = text.replace("{n_masks: 8}", "{n_masks: 8, score: sigmoid}")
    assert load_suite(write(tmp_path, fixed)).explainers[1].params["score"] == "sigmoid"
