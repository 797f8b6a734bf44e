import pytest
import torch

from faithbench.explainers.cam import find_target_layer
from faithbench.models.architectures import build_model


def test_max_pooling_keeps_a_small_finding_that_the_average_dilutes():
    torch.manual_seed(0)
    avg = build_model("small_cnn", 1, 2, (16, 16, 16), width=4, depth=2).eval()
    top = build_model("small_cnn", 1, 2, (16, 16, 16), width=4, depth=2, pool="max").eval()
    top.load_state_dict(avg.state_dict())  # the same weights: only the global pooling differs
    x = torch.zeros(1, 1, 16, 16, 16)
    feats = avg.features(x)
    spot = x.clone()
    spot[0, 0, 7:9, 7:9, 7:9] = 5.0  # one small bright cube
    grown_avg = (avg.pool(avg.features(spot)) - avg.pool(feats)).abs().max().item()
    grown_max = (top.pool(top.features(spot)) - top.pool(feats)).abs().max().item()
    assert grown_max > 10 * grown_avg > 0  # 8 voxels among 4096: the average moves by ~1/64 of the max
    assert top(spot).shape == (1, 2)
    assert find_target_layer(top, x)[0] == find_target_layer(avg, x)[0]  # the CAM layer is unchanged


def test_bad_pool_is_refused():
    with pytest.raises(ValueError, match="expected pool 'avg' or 'max', got 'mean'"):
        build_model("small_cnn", 1, 2, (16, 16), pool="mean")
