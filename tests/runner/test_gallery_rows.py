"""The saliency gallery shows whole samples: every explained class of its first samples, in a bounded number of
rows (a held-out review: 4 rows of a multi-label run showed 3 images and cut the fourth's cavity row, as if
test-00004 had been explained for nodule only)."""

import pytest
import torch

from faithbench.config import ClassTargets, suite_from_dict
from faithbench.datasets import PhantomCXRMultiLabel
from faithbench.runner.run import run_suite
from faithbench.runner.targets import collate_units, expand_targets
from faithbench.store import Cache
from faithbench.types import Sample

CLASSES = ("nodule", "cavity", "effusion")


@pytest.mark.parametrize("ids, kwargs, rows", [
    (list("aabccddee"), {}, 7),  # the first 4 samples, all their rows: a 2, b 1, c 2, d 2
    (list("abcdefg"), {}, 4),  # one row a sample (single-label, 3D, sequences): the first 4
    (list("ab"), {}, 2),  # fewer samples than 4
    (list("aaabbbccc"), {}, 6),  # c's 3 rows would make 9 > 8: c left out, not cut
    (list("aaaaaaaaaab"), {}, 10),  # the first sample whole even past the bound
    (list("aabbb"), {"last_whole": False}, 2),  # b goes on in the next batch: left out
    (list("aaa"), {"last_whole": False}, 3),  # ... unless it is the first: what the batch holds
    (list("aabbc"), {"samples": 2}, 4),
    (list("aabbc"), {"rows": 3}, 2),
    ([], {}, 0),
])
def test_whole_sample_rows(ids, kwargs, rows):
    from faithbench.runner.gallery import whole_sample_rows

    assert whole_sample_rows(ids, **kwargs) == rows


def test_the_documented_bounds():
    from faithbench.runner.gallery import GALLERY_ROWS, GALLERY_SAMPLES

    assert (GALLERY_SAMPLES, GALLERY_ROWS) == (4, 8)


def _sample(i: int, labels: list[int]) -> Sample:
    return Sample(id=f"s{i}", image=torch.zeros(1, 4, 4), label=0, labels=torch.tensor(labels))


def test_a_batch_that_cuts_its_last_sample_leaves_it_out():
    from faithbench.runner.gallery import gallery_rows

    samples = [_sample(0, [1, 0, 1]), _sample(1, [0, 1, 0]), _sample(2, [1, 1, 1])]
    units = expand_targets(samples, "each_positive", CLASSES)  # s0 x2, s1, s2 x3
    whole, _ = collate_units(units, CLASSES)
    cut, _ = collate_units(units[:5], CLASSES)  # s2's effusion is in the next batch
    assert gallery_rows(whole, "each_positive", CLASSES, multilabel=True) == 6
    assert gallery_rows(cut, "each_positive", CLASSES, multilabel=True) == 3
    every = ClassTargets(classes=["cavity", "nodule"], samples="all")  # two rows each, the same cut
    units = expand_targets(samples, every, CLASSES)
    cut, _ = collate_units(units[:5], CLASSES)
    assert gallery_rows(cut, every, CLASSES, multilabel=True) == 4


PHANTOM = {"n": 64, "size": 32}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return Cache(tmp_path_factory.mktemp("gallery_cache"))


@pytest.mark.parametrize("batch_size", [8, 4])
def test_the_runs_multilabel_gallery_keeps_every_class_of_its_samples(tmp_path, monkeypatch, cache, batch_size):
    from faithbench.reports import gallery

    calls = []
    monkeypatch.setattr(gallery, "plot_saliency_gallery", lambda *args, **kwargs: calls.append((args, kwargs)))
    suite = suite_from_dict({
        "name": "ml_gallery", "samples": 10, "batch_size": batch_size, "target": "each_positive",
        "datasets": [{"name": "phantom_cxr_multilabel", "params": PHANTOM}],
        "models": [{"name": "small_cnn", "params": {"width": 4}, "recipe": {"epochs": 1, "batch_size": 32}}],
        "explainers": ["sobel", "random"], "metrics": [{"name": "deletion_auc", "params": {"steps": 2}}]})
    run_suite(suite, tmp_path / "out", cache=cache, progress=False, log=lambda m: None)
    test = PhantomCXRMultiLabel("test", **PHANTOM)
    units = [(test[i].id, c) for i in range(10) for c in range(2) if test[i].labels[c]]
    first = units[:batch_size]
    ids = list(dict.fromkeys(sid for sid, _ in first))
    ids = [sid for sid in ids if sum(u[0] == sid for u in units) == sum(u[0] == sid for u in first)][:4]
    expected = [u for u in units if u[0] in ids]
    # batch 8: test-00001 (nodule, cavity), -00003 (cavity), -00004 (nodule, cavity), -00005 (nodule): 6 rows;
    # batch 4: -00004's cavity is in the second batch, so -00004 is left out: 3 rows
    assert len(expected) == {8: 6, 4: 3}[batch_size]
    (args, kwargs), = calls
    assert kwargs["ids"] == [sid for sid, _ in expected]
    names = ("nodule", "cavity")
    assert kwargs["labels"] == [f"{names[c]} present" for _, c in expected]
    assert args[0].shape[0] == len(expected) and args[2].shape[0] == len(expected)  # images and outlines
    assert {k: v.shape[0] for k, v in args[1].items()} == {"sobel": len(expected), "random": len(expected)}
