"""A train split of one class is refused before training, by ``validate`` where the labels are cheap to
know (the phantoms: the first draw of each sample's generator) and by the run's preflight otherwise,
with one message naming the suite file and ``datasets[i].params`` (a held-out review, F2: ``n: 1`` and
``prevalence: 0.001`` passed validate, then the run refused them without naming the file or the key)."""

from __future__ import annotations

import textwrap

import pytest

from faithbench.config import SuiteError, load_suite
from faithbench.datasets.phantoms import PhantomCXR, PhantomOrgan3D, _Phantom
from faithbench.runner.errors import InputDataError
from faithbench.runner.run import run_suite
from faithbench.store import Cache

SUITE = textwrap.dedent("""
    name: t
    datasets: [{name: phantom_cxr, params: PARAMS}]
    models: [{name: small_cnn, params: {width: 4}, recipe: RECIPE}]
    explainers: [saliency, random]
    metrics: [deletion_auc]
    """)
ONE_CLASS = ": a model trained on it predicts that class for every input; expected samples of 2 classes or more"


def write(tmp_path, params, recipe="{epochs: 1}"):
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE.replace("PARAMS", params).replace("RECIPE", recipe))
    return path


@pytest.mark.parametrize("cls, size", [(PhantomCXR, 32), (PhantomOrgan3D, 24)])
def test_phantom_labels_are_the_generated_ones(cls, size):
    data = cls(split="train", n=24, size=size, prevalence=0.3)
    assert list(data.labels()) == [data[i].label for i in range(24)]
    assert 0 < sum(data.labels()) < 24  # lazy: a generator of labels


@pytest.mark.parametrize("params, held", [
    ("{size: 32, n: 200, prevalence: 0.001}", "'normal': 200"),
    ("{size: 32, n: 1}", "'lesion': 1"),
])
def test_validate_refuses_a_train_split_of_one_class(tmp_path, params, held):
    with pytest.raises(SuiteError) as info:
        load_suite(write(tmp_path, params))
    assert str(info.value) == (f"{tmp_path / 'suite.yaml'}: datasets[0].params: dataset 'phantom_cxr': model "
                               f"'small_cnn': the train split holds one class only ({held}){ONE_CLASS}")


def test_a_recipe_n_train_of_one_class_is_named(tmp_path):
    with pytest.raises(SuiteError, match=r"datasets\[0\].params: dataset 'phantom_cxr': model 'small_cnn': the "
                                         r"train split holds one class only \('.*': 1\): .* \(the recipe's n_train 1 "
                                         r"takes the first 1 of the split; .*\)$"):
        load_suite(write(tmp_path, "{size: 32, n: 200}", "{epochs: 1, n_train: 1}"))
    assert load_suite(write(tmp_path, "{size: 32, n: 200}", "{epochs: 1, n_train: 40}")).name == "t"


def test_the_run_refuses_it_with_the_same_message_where_validate_cannot_tell(tmp_path, monkeypatch):
    path = write(tmp_path, "{size: 32, n: 200, prevalence: 0.001}")
    with pytest.raises(SuiteError) as refused:
        load_suite(path)
    monkeypatch.setattr(_Phantom, "cheap_splits", False)  # as a dataset whose splits validate does not build
    suite = load_suite(path)
    with pytest.raises(InputDataError) as info:
        run_suite(suite, tmp_path / "out", cache=Cache(tmp_path / "cache"), progress=False, log=lambda _: None)
    assert str(info.value) == str(refused.value)
    assert not (tmp_path / "cache" / "checkpoints").exists()  # refused before training
