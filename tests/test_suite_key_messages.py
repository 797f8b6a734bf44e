"""A fuzzing review of dataset, model and top-level keys (clifuzz5 F8): refusals that named no key, or the
wrong one: a capitalised key gave an empty location (``: unknown key 'Samples'``) or lost its own name
(``models[0].preprocess: Input should be 'auto' or 'none'``), a model entry's ``epochs`` was told "did you mean
'preprocess'?", and ``weights: ''`` was read as the suite's folder."""

from __future__ import annotations

import pytest

from faithbench.cli import main

SUITE = """name: t
datasets: [{name: phantom_cxr, params: {size: 32, n: 8}}]
models: [MODEL]
explainers: [random]
metrics: [relevance_mass]
"""
MODEL = "{name: small_cnn, params: {width: 4}, recipe: {epochs: 1}}"


@pytest.mark.parametrize("model, top, expected", [
    (MODEL, "Samples: 3", "Samples: unknown key 'Samples'; did you mean 'samples'?"),
    ("{name: small_cnn, preprocess: {Size: [32, 32]}, recipe: {epochs: 1}}", "",
     "models[0].preprocess.Size: unknown key 'Size'; did you mean 'size'?"),
    ("{name: small_cnn, epochs: 1, recipe: {lr: 0.01}}", "",
     "models[0].epochs: unknown key 'epochs'; it belongs under 'recipe': write recipe: {epochs: ...}"),
    ("{name: small_cnn, weights: ''}", "", "models[0].weights: expected the path of a weights file, got an empty "
                                          "string"),
    ("{name: small_cnn, weights: '  '}", "", "models[0].weights: expected the path of a weights file, got an "
                                            "empty string"),
])
def test_the_refusal_names_the_key(tmp_path, capsys, model, top, expected):
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE.replace("MODEL", model) + top + "\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"faithbench: error: {path}: {expected}"
