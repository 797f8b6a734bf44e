"""Temporal settings under which no map can change the value (review temporal6): sequences of one visit are
refused, a sample of one real visit (or, for visit pointing, whose mask is on every real visit) is undefined,
and a mask of the wrong shape is named. Known answers on a model that reads one visit only."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from faithbench.config import SuiteError, SuiteWarning, load_suite
from faithbench.configurable import ParameterError
from faithbench.datasets.longitudinal import LongitudinalFolder, PhantomLongitudinal
from faithbench.metrics.base import EvalContext, ForwardCounter
from faithbench.metrics.functional.temporal import temporal_deletion_auc, temporal_insertion_auc, visit_pointing
from faithbench.registry import metrics
from tests.metrics.test_temporal_metrics import OneVisitModel, sig

P1 = sig(4.0)  # the model's probability with visit 2 (all 1.0) present; 0.5 with it replaced by the padding frame


def _batch():
    """3 sequences of T = 3: 3 real visits, 1 (visits 0, 1 padding), 2 (visit 0 padding); visit 2 is 1.0."""
    x = torch.full((3, 1, 3, 4, 4), 0.5)
    x[:, :, 2] = 1.0
    x[1, :, :2] = 0.0
    x[2, :, 0] = 0.0
    valid = torch.tensor([[True, True, True], [False, False, True], [False, True, True]])
    s = torch.zeros(3, 3, 4, 4)
    s[:, 2], s[:, 1], s[:, 0] = 3.0, 2.0, 1.0  # visit 2 first, then 1, then 0
    return x, valid, s


def _ctx(x, s, masks):
    target = torch.ones(x.shape[0], dtype=torch.long)
    model = OneVisitModel(visit=2)
    return EvalContext(model=model, x=x, target=target, label=target, saliency=s, masks=masks,
                       predict=ForwardCounter(model), background=0.0, seed=0)


@pytest.mark.parametrize("mode", ["replace", "remove"])
def test_a_sequence_of_one_real_visit_is_undefined_for_the_curves(mode):
    x, valid, s = _batch()
    model, target = OneVisitModel(visit=2), torch.ones(3, dtype=torch.long)
    deletion = temporal_deletion_auc(model, x, target, s, valid=valid, mode=mode)
    insertion = temporal_insertion_auc(model, x, target, s, valid=valid, mode=mode)
    assert math.isnan(deletion[1]) and math.isnan(insertion[1])
    if mode == "replace":  # visit 2 out first: P1, .5, .5, .5; insertion .5, P1, P1, P1
        assert deletion[[0, 2]].tolist() == pytest.approx([((P1 + .5) / 2 + 1) / 3] * 2, abs=1e-6)
        assert insertion[[0, 2]].tolist() == pytest.approx([((P1 + .5) / 2 + 2 * P1) / 3] * 2, abs=1e-6)
    else:  # remove: visit 2 leaves and a 0.5 visit moves into slot 2, which the model reads: sig(2)
        s2 = sig(2.0)
        assert deletion[0] == pytest.approx(((P1 + s2) / 2 + s2 + (s2 + .5) / 2) / 3, abs=1e-6)  # P1, s2, s2, .5
        assert deletion[2] == pytest.approx(((P1 + s2) / 2 + (s2 + .5) / 2 + .5) / 3, abs=1e-6)  # P1, s2, .5, .5


@pytest.mark.parametrize("name", ["temporal_deletion", "temporal_insertion"])
def test_the_metric_class_gives_nan_for_one_real_visit_and_keeps_the_curve(name):
    x, valid, s = _batch()
    masks = {"valid": valid[:, :, None, None].expand(3, 3, 4, 4).clone()}
    out = metrics.get(name)()(_ctx(x, s, masks))
    assert math.isnan(out.value[1]) and not out.value[[0, 2]].isnan().any()
    assert out.curve.shape == (3, 4) and not out.curve.isnan().any()
    assert metrics.get(name)().undefined_hint == "a sequence of one real visit, where every map scores the same"


def test_visit_pointing_is_undefined_where_the_mask_is_on_every_real_visit():
    importance = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 2.0], [0.0, 1.0, 2.0], [0.0, 1.0, 2.0], [1.0, 0.0, 2.0]])
    valid = torch.tensor([[False, False, True], [False, True, True], [True] * 3, [True] * 3, [True] * 3])
    change = torch.tensor([[False, False, True],  # one real visit, holding the change: every map hits
                           [True, True, True],  # on every visit, padding too (an anatomy mask)
                           [True, True, True],  # on every real visit (mask: valid)
                           [False, True, True],  # 2 of 3: defined, a hit at chance 2/3
                           [True, False, False]])  # 1 of 3: a miss at 1/3
    hit, chance = visit_pointing(importance, change, valid)
    assert hit[:3].isnan().all() and chance[:3].isnan().all()
    assert hit[3:].tolist() == [1.0, 0.0] and chance[3:].tolist() == pytest.approx([2 / 3, 1 / 3])


@pytest.mark.parametrize("name", ["temporal_deletion", "temporal_insertion", "visit_pointing"])
def test_sequences_of_one_visit_are_refused_when_computed(name):
    x = torch.rand(2, 1, 1, 4, 4)
    masks = {"valid": torch.ones(2, 1, 4, 4, dtype=torch.bool), "change": torch.ones(2, 1, 4, 4, dtype=torch.bool)}
    with pytest.raises(ValueError, match=rf"^{name} compares the visits of a sequence, and sequences of 1 visit "
                                         r"\(seq_len 1\) leave every map the same value; expected seq_len >= 2$"):
        metrics.get(name)()(_ctx(x, torch.rand(2, 1, 4, 4), masks))


def test_per_visit_localisation_still_scores_one_visit():
    """visit_pointing_game asks where in a visit the map points: one visit is enough (not refused)."""
    x, s = torch.rand(2, 1, 1, 4, 4), torch.zeros(2, 1, 4, 4)
    s[:, 0, 1, 1] = 1.0
    lesion = torch.zeros(2, 1, 4, 4, dtype=torch.bool)
    lesion[0, 0, 1, 1] = lesion[1, 0, 3, 3] = True
    out = metrics.get("visit_pointing_game")()(_ctx(x, s, {"lesion": lesion, "valid": torch.ones_like(lesion)}))
    assert out.value.tolist() == [1.0, 0.0]


@pytest.mark.parametrize("name", ["visit_pointing", "visit_pointing_game", "visit_relevance_mass"])
def test_the_validity_mask_as_the_region_is_refused(name):
    with pytest.raises(ParameterError, match=rf"^{name}: parameter 'mask' = 'valid' is the validity mask"):
        metrics.get(name)(mask="valid")


@pytest.mark.parametrize("shape", [(3, 4, 4, 4), (3, 2, 4, 4), (3, 3, 2, 4)])
@pytest.mark.parametrize("name, mask", [("visit_pointing", "change"), ("visit_pointing_game", "lesion"),
                                        ("visit_relevance_mass", "lesion")])
def test_a_mask_of_the_wrong_shape_is_named(name, mask, shape):
    x, valid, s = _batch()
    masks = {"valid": valid[:, :, None, None].expand(3, 3, 4, 4).clone(), mask: torch.ones(shape, dtype=torch.bool)}
    expected = rf"^{name}: expected mask '{mask}' of the sequence's shape \(3, 3, 4, 4\) \(B, T, H, W\), got "
    with pytest.raises(ValueError, match=expected + re.escape(str(shape)) + "$"):
        metrics.get(name)()(_ctx(x, s, masks))


def test_the_functional_visit_pointing_names_the_change_mask():
    with pytest.raises(ValueError, match=r"^expected a change mask of shape \(2, 3, ...\), got \(2, 4\)$"):
        visit_pointing(torch.zeros(2, 3), torch.ones(2, 4, dtype=torch.bool), torch.ones(2, 3, dtype=torch.bool))


SUITE = """name: t
samples: 4
subset: SUBSET
datasets: [{name: phantom_longitudinal, params: {size: 32, n: 8, PARAMS}}]
models: [{name: temporal_mlp, params: {backbone: small_cnn, backbone_recipe: {epochs: 1}}, recipe: {epochs: 1}}]
explainers: [random]
metrics: [METRIC]
"""


def _suite(tmp_path, params, metric, subset="positive"):
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE.replace("PARAMS", params).replace("METRIC", metric).replace("SUBSET", subset))
    return path


@pytest.mark.parametrize("metric", ["temporal_deletion", "temporal_insertion", "visit_pointing",
                                    "{name: temporal_deletion, params: {mode: remove}}"])
def test_validate_refuses_seq_len_1_and_max_visits_1(tmp_path, metric):
    with pytest.raises(SuiteError, match=r"metrics\[0\]\.params: \w+ compares the visits of a sequence, and "
                                         r"sequences of 1 visit \(seq_len 1\) .* \(dataset 'phantom_longitudinal'\)$"):
        load_suite(_suite(tmp_path, "seq_len: 1", metric))
    with pytest.raises(SuiteError, match=r"metrics\[0\] '\w+': \w+ compares the visits of a sequence, and each "
                                         r"sequence of dataset 'phantom_longitudinal' holds at most 1 real visit"):
        load_suite(_suite(tmp_path, "max_visits: 1", metric))


def test_one_visit_data_stays_valid_for_the_other_metrics(tmp_path):
    for params in ("seq_len: 1", "max_visits: 1"):
        assert load_suite(_suite(tmp_path, params, "visit_pointing_game, pointing_game")).metrics[0].name == \
            "visit_pointing_game"
    assert load_suite(_suite(tmp_path, "max_visits: 2", "visit_pointing")).metrics[0].name == "visit_pointing"


def test_most_visits_of_the_datasets(tmp_path):
    assert PhantomLongitudinal(n=2, size=32, seq_len=3, max_visits=1).most_visits == 1
    assert PhantomLongitudinal(n=2, size=32, seq_len=3, max_visits=5).most_visits == 3
    assert PhantomLongitudinal(n=2, size=32, seq_len=1).most_visits == 1
    (tmp_path / "img").mkdir()
    rows = ["patient_id,date,path,label"]
    for p in range(8):  # patients p0..p7 with 1 visit each, p3 with 2
        for v in range(2 if p == 3 else 1):
            Image.fromarray(np.full((12, 12), 20 * p + v, dtype=np.uint8)).save(tmp_path / "img" / f"p{p}_{v}.png")
            rows.append(f"p{p},2021-0{v + 1}-01,p{p}_{v}.png,{'neg' if p % 2 else 'pos'}")
    (tmp_path / "visits.csv").write_text("\n".join(rows) + "\n")
    splits = {split: LongitudinalFolder(split, path=str(tmp_path / "img"), labels=str(tmp_path / "visits.csv"), size=8,
                                        fractions=(0.5, 0.25, 0.25)) for split in ("train", "val", "test")}
    most = {split: ds.most_visits for split, ds in splits.items()}
    has_p3 = [split for split, ds in splits.items() if any(pid == "p3" for pid, _k in ds.entries)]
    assert most == {split: 2 if split in has_p3 else 1 for split in splits}


def test_validate_warns_of_an_anatomy_mask_on_every_visit(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_suite(_suite(tmp_path, "seq_len: 3", "{name: visit_pointing, params: {mask: lung_left}}"))
        load_suite(_suite(tmp_path, "seq_len: 3", "visit_pointing"))  # mask change: at one visit of each
    said = [str(w.message) for w in caught if issubclass(w.category, SuiteWarning) and "every" in str(w.message)]
    assert said == [f"{tmp_path / 'suite.yaml'}: metrics[0] 'visit_pointing': mask 'lung_left' is set on every real "
                    "visit of each of the first 4 samples of dataset 'phantom_longitudinal', so every map hits there "
                    "(chance 1): those samples are undefined (NaN, counted in skipped.csv); expected a mask of the "
                    "deciding change (change, lesion)"]
