"""The public factories, suites from dicts and Suite objects, and registries usable before any import."""

import subprocess
import sys

import pytest
import torch

import faithbench
from faithbench.config import Suite, SuiteError


def test_a_registry_lookup_works_in_a_fresh_interpreter():
    code = ("from faithbench.registry import explainers, metrics, datasets, models\n"
            "print(explainers.get('gradcam').__name__, metrics.get('deletion_auc').__name__,"
            " datasets.get('phantom_cxr').__name__, 'small_cnn' in models)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["GradCAMExplainer", "DeletionAUC", "PhantomCXR", "True"]


def test_create_explainer_metric_dataset_model_give_working_objects():
    model = faithbench.create_model("small_cnn", in_chans=1, num_classes=2, input_size=(32, 32), width=4)
    data = faithbench.create_dataset("phantom_cxr", split="test", n=8, size=32)
    x = torch.stack([data[i].image for i in range(2)])
    saliency = faithbench.create_explainer("saliency")(model, x, torch.tensor([1, 0]))
    assert saliency.shape == (2, 32, 32)
    metric = faithbench.create_metric("deletion_auc", steps=4)
    assert metric.params["steps"] == 4 and metric.higher_is_better is False


def test_create_with_an_unknown_name_says_did_you_mean():
    with pytest.raises(KeyError, match="did you mean 'gradcam'"):
        faithbench.create_explainer("gradcamm")
    with pytest.raises(ValueError, match="unknown parameter 'stepz'"):
        faithbench.create_metric("deletion_auc", stepz=4)


TINY = {"name": "tiny", "samples": 4, "datasets": [{"name": "phantom_cxr", "params": {"n": 32, "size": 32}}],
        "models": [{"name": "small_cnn", "params": {"width": 4}, "recipe": {"epochs": 1}}],
        "explainers": ["random"], "metrics": ["pointing_game"]}


def test_load_suite_accepts_a_dict():
    suite = faithbench.load_suite(TINY)
    assert isinstance(suite, Suite) and suite.name == "tiny" and suite.explainers[0].name == "random"
    with pytest.raises(SuiteError, match=r"explainers\[0\]: unknown explainer 'randm'; did you mean 'random'"):
        faithbench.load_suite({**TINY, "explainers": ["randm"]})


def test_run_of_a_suite_object_with_an_unknown_name_is_the_did_you_mean_error(tmp_path):
    suite = Suite.model_validate({**TINY, "metrics": ["pointing_gam"]})  # the schema alone accepts any name
    with pytest.raises(SuiteError, match="did you mean 'pointing_game'"):
        faithbench.run(suite, out_dir=tmp_path / "out")
    assert not (tmp_path / "out" / "results.csv").exists()


def test_a_control_the_suite_sets_must_be_one_of_its_explainers():
    with pytest.raises(SuiteError, match="control: 'sobel' is not an explainer of the suite"):
        faithbench.load_suite({**TINY, "control": "sobel"})
    assert faithbench.load_suite({**TINY, "explainers": ["random", "sobel"], "control": "sobel"}).control == "sobel"
