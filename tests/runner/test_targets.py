"""Multi-label targets: (sample, class) expansion, the per-row target mask, collate of label vectors."""

import pytest
import torch

from faithbench.config import ClassTargets
from faithbench.metrics.base import EvalContext, ForwardCounter
from faithbench.metrics.localization import PointingGame
from faithbench.runner.errors import InputDataError
from faithbench.runner.batches import iter_batches
from faithbench.runner.targets import TARGET_MASK, class_batches, collate_units, expand_targets, sample_targets
from faithbench.types import Batch, Sample

CLASSES = ("nodule", "cavity", "effusion")


def _sample(i: int, labels: list[int]) -> Sample:
    """A 6x6 image whose class-c mask is the single pixel (c, i): masks differ by class and sample."""
    masks = {}
    for c, name in enumerate(CLASSES):
        m = torch.zeros(6, 6, dtype=torch.bool)
        if labels[c]:
            m[c, i] = True
        masks[name] = m
    return Sample(id=f"s{i}", image=torch.full((1, 6, 6), float(i)), label=0, masks=masks,
                  labels=torch.tensor(labels))


# a hand-made batch: s0 has nodule and effusion, s1 nothing, s2 only cavity, s3 all three
SAMPLES = [_sample(0, [1, 0, 1]), _sample(1, [0, 0, 0]), _sample(2, [0, 1, 0]), _sample(3, [1, 1, 1])]


@pytest.mark.parametrize("target, expected", [
    ("each_positive", [[0, 2], [], [1], [0, 1, 2]]),
    (ClassTargets(), [[0, 1, 2]] * 4),
    (ClassTargets(classes=["cavity", "nodule"]), [[1, 0]] * 4),
    (ClassTargets(classes=["cavity", "nodule"], samples="positive"), [[0], [], [1], [1, 0]]),
    # one-vs-normal: a class on images where it is the only finding, and on normal images
    (ClassTargets(samples="one_vs_normal"), [[], [0, 1, 2], [1], []]),
    (ClassTargets(classes=["nodule"], samples="one_vs_normal"), [[], [0], [], []]),
])
def test_sample_targets_known_answers(target, expected):
    assert [sample_targets(s.labels, target, CLASSES) for s in SAMPLES] == expected


def test_each_positive_expands_one_unit_per_positive_class():
    units = expand_targets(SAMPLES, "each_positive", CLASSES)
    assert [(s.id, c) for s, c in units] == [("s0", 0), ("s0", 2), ("s2", 1), ("s3", 0), ("s3", 1), ("s3", 2)]
    batch, target = collate_units(units, CLASSES)
    assert batch.ids == ["s0", "s0", "s2", "s3", "s3", "s3"]
    assert target.tolist() == [0, 2, 1, 0, 1, 2]
    assert batch.label.tolist() == [1] * 6  # the explained class is present in every row
    assert batch.labels.tolist() == [[1, 0, 1], [1, 0, 1], [0, 1, 0], [1, 1, 1], [1, 1, 1], [1, 1, 1]]
    # row i's target mask is the mask of its own class: the single pixel (class, sample index)
    where = [tuple(torch.nonzero(m)[0].tolist()) for m in batch.masks[TARGET_MASK]]
    assert where == [(0, 0), (2, 0), (1, 2), (0, 3), (1, 3), (2, 3)]
    assert torch.equal(batch.x[:, 0, 0, 0], torch.tensor([0.0, 0.0, 2.0, 3.0, 3.0, 3.0]))


def test_label_column_is_the_explained_class_presence():
    batch, target = collate_units(expand_targets(SAMPLES[:2], ClassTargets(classes=["effusion", "cavity"]), CLASSES),
                                  CLASSES)
    assert target.tolist() == [2, 1, 2, 1] and batch.label.tolist() == [1, 0, 0, 0]
    assert batch.masks[TARGET_MASK].flatten(1).sum(1).tolist() == [1, 0, 0, 0]  # absent class: empty mask


def test_pointing_game_scores_each_row_against_its_class_mask():
    """A map peaking on the nodule of each image: a hit for the nodule rows, a miss for the others."""
    batch, target = collate_units(expand_targets(SAMPLES, "each_positive", CLASSES), CLASSES)
    saliency = torch.zeros(len(batch), 6, 6)
    for row, sample_index in enumerate([0, 0, 2, 3, 3, 3]):
        saliency[row, 0, sample_index] = 1.0  # the nodule pixel (class 0) of that sample
    ctx = EvalContext(model=torch.nn.Identity(), x=batch.x, target=target, label=batch.label, saliency=saliency,
                      masks=batch.masks, predict=ForwardCounter(torch.nn.Identity()), labels=batch.labels)
    metric = PointingGame(mask="target")
    assert metric.required_masks() == ["target"]
    out = metric(ctx)
    assert out["value"].tolist() == [1.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    assert out["chance"].tolist() == pytest.approx([1 / 36] * 6)


def test_class_batches_rechunk_units_across_samples():
    chunks = list(class_batches(iter(SAMPLES), "each_positive", CLASSES, batch_size=4))
    assert [b.ids for b, _ in chunks] == [["s0", "s0", "s2", "s3"], ["s3", "s3"]]
    assert [t.tolist() for _, t in chunks] == [[0, 2, 1, 0], [1, 2]]


def test_no_target_mask_without_a_mask_per_class():
    samples = [Sample(id="a", image=torch.zeros(1, 4, 4), label=1, labels=torch.tensor([0, 1, 0]))]
    batch, target = collate_units(expand_targets(samples, "each_positive", CLASSES), CLASSES)
    assert TARGET_MASK not in batch.masks and target.tolist() == [1]


def _present_only(i: int, labels: list[int]) -> Sample:
    """As :func:`_sample`, carrying only the masks of the classes present (a common layout)."""
    sample = _sample(i, labels)
    sample.masks = {name: m for (name, m), on in zip(sample.masks.items(), labels) if on}
    return sample


def test_a_batch_without_a_rare_class_mask_still_has_the_target_mask():
    """A review: with masks of the present findings only, a batch lacking one class's mask had no
    `target` mask (the metric failed for the whole cell), and whether it did depended on batch_size."""
    samples = [_present_only(0, [1, 0, 1]), _present_only(1, [0, 0, 0]), _present_only(2, [0, 1, 0]),
               _present_only(3, [1, 0, 0]), _present_only(4, [0, 0, 0])]
    for batch_size in (2, 3, 15):
        chunks = list(class_batches(iter(samples), ClassTargets(), CLASSES, batch_size=batch_size))
        assert all(TARGET_MASK in b.masks for b, _ in chunks), batch_size
        target = torch.cat([t for _, t in chunks])
        masks = torch.cat([b.masks[TARGET_MASK] for b, _ in chunks])
        for row, (sample, c) in enumerate(expand_targets(samples, ClassTargets(), CLASSES)):
            expected = sample.masks.get(CLASSES[c], torch.zeros(6, 6, dtype=torch.bool))
            assert int(target[row]) == c and torch.equal(masks[row], expected), (batch_size, row)
    # the batch of the two samples with no finding (s3's nodule, s4): `target` because an earlier batch had it
    only_empty = list(class_batches(iter(samples[3:]), ClassTargets(), CLASSES, batch_size=3))
    assert [TARGET_MASK in b.masks for b, _ in only_empty] == [True, True]
    assert only_empty[1][0].masks[TARGET_MASK].sum() == 0


def test_a_first_batch_of_normal_images_has_the_target_mask_when_later_samples_have_class_masks():
    """A diff review: the first batch without any class mask (normal images first) skipped the
    localisation metrics for the whole cell at batch_size 4, not at 8."""
    from faithbench.config_checks import class_masks_in

    samples = [_present_only(0, [0, 0, 0]), _present_only(1, [0, 0, 0]), _present_only(2, [0, 1, 0])]

    class Present(_MultiLabel):
        def __len__(self):
            return len(samples)

        def __getitem__(self, i):
            return samples[i]

    assert class_masks_in(Present(), 3) and not class_masks_in(Present(), 2)
    assert class_masks_in(Present(), 1, "positive")  # the first positive sample is s2
    out = list(iter_batches(Present(), "ml", 3, 3, torch.nn.Identity(), ClassTargets()))
    assert [TARGET_MASK in b.masks for b, _ in out] == [True, True, True]
    assert out[0][0].masks[TARGET_MASK].sum() == 0 and out[2][0].masks[TARGET_MASK].sum() == 1  # s2's cavity


def test_validate_offers_the_target_mask_as_the_run_builds_it():
    from faithbench.config_checks import mask_names

    class Present(_MultiLabel):
        def __getitem__(self, i):
            return [_present_only(0, [0, 1, 0]), _present_only(1, [0, 0, 0])][i]

    assert mask_names(Present(), 0) == {"cavity", "target"}  # a mask of one class: the run builds `target`
    assert mask_names(Present(), 1) == set()


def test_collate_label_vectors():
    batch = Batch.collate(SAMPLES[:2])
    assert batch.labels.dtype == torch.long and batch.labels.tolist() == [[1, 0, 1], [0, 0, 0]]
    single = Batch.collate([Sample(id="a", image=torch.zeros(1, 4, 4), label=1)])
    assert single.labels is None and single.label.tolist() == [1]
    with pytest.raises(ValueError, match="sample 'b' has no multi-label vector"):
        Batch.collate([SAMPLES[0], Sample(id="b", image=torch.zeros(1, 6, 6), label=0)])
    with pytest.raises(ValueError, match="one shape"):
        Batch.collate([SAMPLES[0], Sample(id="c", image=torch.zeros(1, 6, 6), label=0, labels=torch.tensor([1, 0]))])


class _MultiLabel:
    multilabel, classes, split = True, CLASSES, "test"

    def __len__(self):
        return len(SAMPLES)

    def __getitem__(self, i):
        return SAMPLES[i]


def test_iter_batches_streams_units_of_a_multilabel_dataset():
    # 3 images (samples: 3): s0 (2 positives), s1 (none), s2 (1) -> 3 units
    out = list(iter_batches(_MultiLabel(), "ml", 3, 2, torch.nn.Identity(), "each_positive"))
    assert [(b.ids, t.tolist()) for b, t in out] == [(["s0", "s0"], [0, 2]), (["s2"], [1])]
    # subset: positive skips the image with no finding, so 3 images reach s3
    out = list(iter_batches(_MultiLabel(), "ml", 3, 16, torch.nn.Identity(), ClassTargets(), "positive"))
    assert out[0][0].ids == ["s0"] * 3 + ["s2"] * 3 + ["s3"] * 3
    with pytest.raises(InputDataError, match="multi-label: target 'predicted'"):
        list(iter_batches(_MultiLabel(), "ml", 3, 2, torch.nn.Identity(), "predicted"))
    with pytest.raises(InputDataError, match="no \\(sample, class\\) pair to explain"):
        list(iter_batches(_MultiLabel(), "ml", 2, 2, torch.nn.Identity(), ClassTargets(classes=["cavity"],
                                                                                         samples="positive")))


def test_samples_csv_area_is_nan_for_a_class_without_a_mask_in_the_sample():
    """A held-out review: samples.csv gave lesion_area 0.0 for class c, which had no mask in any sample,
    where docs/outputs.md promise NaN without one ("a finding of area 0" reads as an absent finding).
    Here effusion has no mask anywhere and s3 has no cavity mask; nodule's area is its one pixel of 36."""
    from types import SimpleNamespace

    from torch import nn

    from faithbench.runner.group import sample_rows

    samples = [Sample(id=s.id, image=s.image, label=0, labels=s.labels,
                      masks={k: v for k, v in s.masks.items() if k != "effusion" and (s.id, k) != ("s3", "cavity")})
               for s in SAMPLES]
    batch, target = collate_units(expand_targets(samples, "each_positive", CLASSES), CLASSES)
    assert batch.held.tolist() == [True, False, True, True, False, False]  # (s0 nodule, effusion), s2 cavity, s3
    named = SimpleNamespace(label="d")
    group = SimpleNamespace(dataset=named, model=SimpleNamespace(label="m"), seed=0)
    data = SimpleNamespace(model=nn.Sequential(nn.Flatten(), nn.Linear(36, 3)), multilabel=True, mask_roles={},
                           classes=CLASSES)
    rows, _ = sample_rows(group, data, batch, target)
    areas = [row["lesion_area"] for row in rows]
    assert areas[0] == areas[2] == areas[3] == pytest.approx(1 / 36)
    assert all(a != a for a in (areas[1], areas[4], areas[5]))  # NaN: no mask of the class in the sample
    assert torch.equal(batch.to("cpu").held, batch.held)
