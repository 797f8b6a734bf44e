"""The metrics that compare a row with the other samples of its batch (consistency, sufficiency,
focus) on a multi-label batch, one row per (image, explained class): an image's other class rows are
not other samples (a held-out review: a class-blind map's two rows matched each other, and the random
control scored consistency 1.0, the best)."""

import math

import pytest
import torch
from torch import nn

from faithbench.metrics import Consistency, Focus, Sufficiency
from faithbench.metrics.functional import mosaic_plan
from tests.metrics.conftest import make_ctx

# rows: image a twice (two classes), then b, c, d; the model predicts class 0 for a, b, c and 1 for d
IDS = ["a", "a", "b", "c", "d"]
SIGN = torch.tensor([1.0, 1.0, 1.0, 1.0, -1.0])


class Sign(nn.Module):
    """Logits (v, -v) with v the image's first pixel."""

    def forward(self, x):
        v = x.flatten(1)[:, 0]
        return torch.stack([v, -v], dim=1)


def _x() -> torch.Tensor:
    x = torch.zeros(5, 1, 4, 4)
    x[:, 0, 0, 0] = SIGN
    return x


def test_same_sample_pairs_the_rows_of_one_id():
    ctx = make_ctx(Sign(), _x(), torch.rand(5, 4, 4), ids=IDS)
    same = ctx.same_sample()
    assert same.tolist() == [[i == j or {i, j} == {0, 1} for j in range(5)] for i in range(5)]
    assert make_ctx(Sign(), _x(), torch.rand(5, 4, 4)).same_sample().equal(torch.eye(5, dtype=torch.bool))
    with pytest.raises(ValueError, match="4 ids for a batch of 5 rows"):
        make_ctx(Sign(), _x(), torch.rand(5, 4, 4), ids=IDS[:4]).same_sample()


@pytest.mark.parametrize("multilabel", [False, True])
def test_consistency_leaves_out_the_rows_of_the_same_image(multilabel):
    saliency = torch.zeros(5, 4, 4)
    saliency[[0, 1, 4], 0, 0] = 1.0  # a (both rows) and d: top-left cell
    saliency[[2, 3], 3, 3] = 1.0     # b and c: bottom-right cell
    ctx = make_ctx(Sign(), _x(), saliency, ids=IDS, multilabel=multilabel)
    # a's rows: the only other image in their cell is d, predicted otherwise (0; counting each other: 0.5)
    assert Consistency(grid=2)(ctx).value.tolist() == [0.0, 0.0, 1.0, 1.0, 0.0]
    alone = make_ctx(Sign(), _x()[:3], saliency[:3], ids=IDS[:3], multilabel=multilabel)
    value = Consistency(grid=2)(alone).value.tolist()  # a's rows match only each other: undefined
    assert math.isnan(value[0]) and math.isnan(value[1]) and math.isnan(value[2])


def test_sufficiency_leaves_out_the_rows_of_the_same_image():
    # one feature varies: a 0, a 0, b 1.0, c 0.95, d 0.1; distances / the largest (1.0): a-d 0.1, b-c 0.05
    saliency = torch.zeros(5, 4, 4)
    saliency[:, 0, 0] = torch.tensor([0.0, 0.0, 1.0, 0.95, 0.1])
    ctx = make_ctx(Sign(), _x(), saliency, ids=IDS, multilabel=True)
    # a's only neighbour of another image is d (another set of classes): 0 (with a's other row: 0.5)
    assert Sufficiency(threshold=0.6)(ctx).value.tolist() == [0.0, 0.0, 1.0, 1.0, 0.0]


def test_mosaic_plan_tiles_each_image_once():
    ids = ["a", "a", "b", "b", "c", "d", "e"]
    group = torch.tensor([0, 0, 1, 1, 2, 3, 4])
    same = group[:, None] == group[None, :]
    member = torch.tensor([[1, 1, 1, 1, 1, 0, 0]] * 7, dtype=torch.bool)  # a, b, c of the class; d, e not
    member[5:] = ~member[5:]  # d and e explained for the other class
    for seed in range(20):
        tiles, _, valid = mosaic_plan(member, torch.Generator().manual_seed(seed), same)
        assert valid.all()
        for i in range(7):
            images = [ids[int(j)] for j in tiles[i]]
            assert len(set(images)) == 4, (seed, i, images)  # never one image twice
            assert i in tiles[i].tolist()  # x_i itself, not its image's other class row
            assert set(tiles[i].tolist()) - {i} <= {0, 2, 4, 5, 6}  # other images by their first row


class _Brightness:
    def __call__(self, model, inputs, target):
        return inputs[:, 0].clone()


def test_focus_mosaics_never_hold_one_image_twice():
    # five images, a and b with both classes (two rows each): x[:, 0] is the image's number
    ids = ["a", "a", "b", "b", "c", "d", "e"]
    number = torch.tensor([1.0, 1.0, 2.0, 2.0, 3.0, 4.0, 5.0])
    x = number.reshape(7, 1, 1, 1).expand(7, 1, 4, 4).clone()
    labels = torch.tensor([[1, 1], [1, 1], [1, 1], [1, 1], [1, 0], [0, 1], [0, 1]])
    target = torch.tensor([0, 1, 0, 1, 0, 1, 1])
    mosaics = []

    class Recording(_Brightness):
        def __call__(self, model, inputs, target):
            mosaics.append(inputs.clone())
            return super().__call__(model, inputs, target)

    for seed in range(5):
        ctx = make_ctx(Sign(), x, x[:, 0], target=target,
                       explainer=Recording(), seed=seed, ids=ids, multilabel=True, labels=labels)
        Focus()(ctx)
    assert len(mosaics) == 5
    for batch in mosaics:  # the class-0 rows have valid mosaics (d and e the others); class 1 has one other
        for m in batch[target == 0]:
            tiles = {m[0, 0, 0].item(), m[0, 0, 4].item(), m[0, 4, 0].item(), m[0, 4, 4].item()}
            assert len(tiles) == 4  # four images
