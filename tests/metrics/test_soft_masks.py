"""A mask that is not 0/1 is refused by every metric in one line (a held-out review: a probability mask, 0.95 on a
4 x 4 lesion and 0.01 elsewhere, was read as the whole image: pointing_game, relevance_mass, relevance_rank and
auprc 1.0, their best, against 0.0, 0.069, 0.125 and 0.106 for the mask thresholded at 0.5)."""

import pytest
import torch

from faithbench.metrics.base import EvalContext, ForwardCounter
from faithbench.models import build_model
from faithbench.registry import metrics

NAMES = ["pointing_game", "relevance_mass", "relevance_rank", "auprc", "iou_top10", "roc_auc"]


def _ctx(mask: torch.Tensor) -> EvalContext:
    torch.manual_seed(0)
    model = build_model("small_cnn", 1, 2, (16, 16), width=4).eval()
    saliency = torch.rand((1, 16, 16), generator=torch.Generator().manual_seed(0))
    x = torch.rand((1, 1, 16, 16))
    return EvalContext(model, x, torch.tensor([1]), torch.tensor([1]), saliency, {"lesion": mask},
                       ForwardCounter(model))


@pytest.mark.parametrize("name", NAMES)
def test_a_probability_mask_is_refused(name):
    soft = torch.full((1, 16, 16), 0.01)
    soft[0, 4:8, 4:8] = 0.95
    with pytest.raises(ValueError, match=rf"^{name}: expected masks\['lesion'\] bool \(or 0/1\), got torch.float32 "
                                         r"values other than 0 and 1 \(e.g. 0.01\): threshold"):
        metrics.get(name)()(_ctx(soft))


@pytest.mark.parametrize("name", NAMES)
def test_a_0_1_mask_of_another_dtype_scores_as_the_bool_mask(name):
    hard = torch.zeros((1, 16, 16), dtype=torch.bool)
    hard[0, 4:8, 4:8] = True
    expected = metrics.get(name)()(_ctx(hard))["value"]
    for dtype in (torch.float32, torch.uint8):
        assert torch.equal(metrics.get(name)()(_ctx(hard.to(dtype)))["value"], expected), dtype
    if name == "relevance_mass":  # by hand: the map's mass on the 16 lesion pixels
        saliency = torch.rand((1, 16, 16), generator=torch.Generator().manual_seed(0))
        assert expected.item() == pytest.approx((saliency[0, 4:8, 4:8].sum() / saliency.sum()).item(), rel=1e-6)
