"""Property-based tests (hypothesis) for the suite loader and the metric functions."""

import math
import string

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faithbench.config import Suite, SuiteError, load_suite, suite_from_dict
from faithbench.metrics.functional import localization as loc
from faithbench.metrics.functional import perturbation as pert

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

BASE = {"name": "p", "datasets": ["phantom_cxr"], "models": [{"name": "small_cnn", "recipe": "default"}], "explainers": ["random"],
        "metrics": ["pointing_game"]}


# -- the suite loader --------------------------------------------------------------------------
@FAST
@given(key=st.text(string.ascii_lowercase + "_", min_size=1, max_size=12).filter(lambda k: k not in Suite.model_fields))
def test_any_unknown_top_level_key_is_named(key):
    # a key near a real one gets a did-you-mean (a random 'dls' failed the test: "did you mean 'models'?")
    with pytest.raises(SuiteError, match=rf"^<suite>: {key}: unknown key '{key}'(; did you mean '\w+'\?)?$"):
        suite_from_dict({**BASE, key: 1})


@FAST
@given(seeds=st.lists(st.integers(0, 2**31 - 1), min_size=1, max_size=5, unique=True), samples=st.integers(1, 10_000),
       batch_size=st.integers(1, 512), target=st.sampled_from(["predicted", "label"]),
       executor=st.sampled_from(["local", "ray"]))
def test_valid_values_round_trip(seeds, samples, batch_size, target, executor):
    suite = suite_from_dict({**BASE, "seeds": seeds, "samples": samples, "batch_size": batch_size,
                             "target": target, "executor": executor})
    assert (suite.seeds, suite.samples, suite.batch_size, suite.target, suite.executor) == (
        seeds, samples, batch_size, target, executor)
    assert suite_from_dict(suite.model_dump(mode="json")) == suite  # a resolved suite loads again


@FAST
@given(seeds=st.lists(st.integers(-1000, 1000), min_size=2, max_size=6))
def test_repeated_or_negative_seeds_are_refused(seeds):
    if len(set(seeds)) == len(seeds) and min(seeds) >= 0:
        assert suite_from_dict({**BASE, "seeds": seeds}).seeds == seeds
        return
    with pytest.raises(SuiteError, match=r"^<suite>: seeds: expected distinct integers from 0 to 2\*\*32 - 1 \(one run "
                                         r"per seed\), "
                                         r"got \[.*\]: -?\d+ is (repeated|negative)$"):
        suite_from_dict({**BASE, "seeds": seeds})


@FAST
@given(samples=st.integers(-1000, 0))
def test_non_positive_samples_are_refused(samples):
    with pytest.raises(SuiteError, match=r"^<suite>: samples: Input should be greater than or equal to 1"):
        suite_from_dict({**BASE, "samples": samples})


@FAST
@given(text=st.text(max_size=200))
def test_arbitrary_yaml_text_gives_a_suite_or_a_suite_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "suite.yaml"
    path.write_text(text)
    try:
        load_suite(path)
    except SuiteError as exc:
        assert str(exc).startswith(str(path))  # names the file
        assert "\n" not in str(exc)


# -- metric functions --------------------------------------------------------------------------
def _maps(draw, dims, positive=False):
    b = draw(st.integers(1, 3))
    spatial = tuple(draw(st.integers(2, 5)) for _ in range(dims))
    seed = draw(st.integers(0, 2**16))
    gen = torch.Generator().manual_seed(seed)
    saliency = torch.randn((b, *spatial), generator=gen)
    if positive:
        saliency = saliency.abs()
    mask = torch.rand((b, *spatial), generator=gen) < draw(st.floats(0.0, 1.0))
    return saliency, mask


@st.composite
def maps(draw, positive=False):
    return _maps(draw, draw(st.sampled_from([2, 3])), positive)


@FAST
@given(data=maps())
def test_relevance_mass_is_a_share_or_undefined(data):
    saliency, mask = data
    value = loc.relevance_mass(saliency, mask)
    assert value.shape == (saliency.shape[0],)
    for i in range(len(value)):
        undefined = not mask[i].any() or not (saliency[i] > 0).any()
        assert math.isnan(value[i]) == undefined
        if not undefined:
            assert 0.0 <= float(value[i]) <= 1.0 + 1e-6


@FAST
@given(data=maps(), level=st.floats(0.01, 100.0))
def test_constant_saliency_gives_chance_level(data, level):
    _, mask = data
    saliency = torch.full(mask.shape, level)
    mass = loc.relevance_mass(saliency, mask)
    area = loc.area_fraction(mask)
    rank = loc.relevance_rank(saliency, mask, generator=torch.Generator().manual_seed(0))
    hit = loc.pointing_game(saliency, mask, generator=torch.Generator().manual_seed(0))
    for i in range(len(mask)):
        if mask[i].any():
            assert float(mass[i]) == pytest.approx(float(area[i]), rel=1e-5)  # exactly the area share
            assert 0.0 <= float(rank[i]) <= 1.0 and float(hit[i]) in (0.0, 1.0)
        else:
            assert math.isnan(mass[i]) and math.isnan(rank[i]) and math.isnan(hit[i])


@FAST
@given(data=maps())
def test_all_zero_masks_are_undefined_for_every_localisation_metric(data):
    saliency, mask = data
    empty = torch.zeros_like(mask)
    gen = torch.Generator().manual_seed(0)
    for value in (loc.relevance_mass(saliency, empty), loc.relevance_rank(saliency, empty, generator=gen),
                  loc.pointing_game(saliency, empty, generator=gen)):
        assert torch.isnan(value).all()
    assert (loc.area_fraction(empty) == 0).all()


@FAST
@given(data=maps())
def test_pointing_game_hits_when_the_unique_maximum_is_inside(data):
    saliency, mask = data
    flat = saliency.flatten(1).clone()
    for i in range(len(flat)):
        inside = mask[i].flatten().nonzero()
        if len(inside):
            flat[i, inside[0, 0]] = flat[i].abs().max() + 1.0
    hit = loc.pointing_game(flat.view_as(saliency), mask)
    for i in range(len(hit)):
        assert float(hit[i]) == 1.0 if mask[i].any() else math.isnan(hit[i])


def _linear(x):
    z = x.flatten(1).sum(1)
    return torch.stack([torch.zeros_like(z), z], dim=1)


@FAST
@given(data=maps(), steps=st.integers(1, 8), constant=st.booleans())
def test_deletion_and_insertion_auc_are_probabilities_areas(data, steps, constant):
    saliency, _ = data
    if constant:
        saliency = torch.ones_like(saliency)
    x = torch.rand((saliency.shape[0], 1, *saliency.shape[1:]), generator=torch.Generator().manual_seed(1))
    target = torch.ones(len(x), dtype=torch.long)
    for fn in (pert.deletion_auc, pert.insertion_auc):
        value = fn(_linear, x, target, saliency, steps=steps, baseline="zero")
        assert value.shape == (len(x),) and torch.isfinite(value).all()
        assert ((value >= 0) & (value <= 1 + 1e-6)).all()  # the area under a probability curve on [0, 1]
    again = pert.deletion_auc(_linear, x, target, saliency, steps=steps, baseline="zero")
    assert torch.equal(again, pert.deletion_auc(_linear, x, target, saliency, steps=steps, baseline="zero"))


@FAST
@given(data=maps(), where=st.integers(0, 10_000), value=st.sampled_from([math.nan, math.inf, -math.inf]))
def test_nan_or_inf_saliency_is_refused_by_perturbation_metrics(data, where, value):
    saliency, _ = data
    saliency.view(-1)[where % saliency.numel()] = value
    x = torch.rand((saliency.shape[0], 1, *saliency.shape[1:]))
    with pytest.raises(ValueError, match="NaN or Inf"):
        pert.deletion_auc(_linear, x, torch.ones(len(x), dtype=torch.long), saliency, steps=2)


@FAST
@given(data=maps(), where=st.integers(0, 10_000))
def test_nan_saliency_never_gives_a_valid_looking_localisation_score(data, where):
    saliency, mask = data
    i = (where % saliency.numel()) // saliency[0].numel()
    saliency.view(-1)[where % saliency.numel()] = math.nan
    for fn in (loc.relevance_mass,):
        assert math.isnan(fn(saliency, mask)[i])


def test_pointing_game_with_nan_saliency():
    saliency = torch.rand(1, 4, 4)
    saliency[0, 0, 0] = math.nan
    mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    mask[0, 0, 0] = True
    assert math.isnan(loc.pointing_game(saliency, mask)[0])


@FAST
@given(level=st.floats(0.0, 1.0), k=st.integers(2, 20))
def test_auc_of_a_constant_curve_is_the_constant(level, k):
    fractions = torch.linspace(0, 1, k)
    assert float(pert.auc(torch.full((1, k), level), fractions)[0]) == pytest.approx(level, abs=1e-6)


def test_yaml_dump_of_a_suite_loads_back(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(BASE))
    assert load_suite(path).name == "p"
