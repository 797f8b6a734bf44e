"""The rows the attention explainers read are the tokens the ViT's head reads.

faithbench's ``vit_tiny`` has a class token but max-pools the patch tokens (``global_pool="max"``):
the class token's output never reaches the head, so its attention row cannot move the logit.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from faithbench.explainers import gradient_weighted_rollout, readout_weights, recorded_attention
from faithbench.models import build_model
from faithbench.registry import explainers


def _vit(seed: int = 0, **kw):
    torch.manual_seed(seed)
    return build_model("vit_tiny", 1, 2, (32, 32), patch_size=8, embed_dim=48, depth=2, num_heads=2, **kw).eval()


def _x(n: int = 2) -> torch.Tensor:
    return torch.rand((n, 1, 32, 32), generator=torch.Generator().manual_seed(0))


def _pooled_tokens(model, x):
    with torch.no_grad():
        return model.forward_features(x)


def _logit_after_row_change(model, x, target, rows):
    """Target logit when the last block's attention rows ``rows`` (B, N) weights are moved toward key 1."""
    def shift(_m, _i, out):
        delta = torch.zeros_like(out)
        delta[..., 1] = 0.5
        return out + rows[:, None, :, None] * (delta - 0.5 * out)

    handle = model.blocks[-1].attn.attn_drop.register_forward_hook(shift)
    try:
        with recorded_attention(model), torch.no_grad():  # unfused, so the hook sees the attention
            return model(x).gather(1, target[:, None])[:, 0]
    finally:
        handle.remove()


def test_the_explained_rows_move_the_logit_and_the_class_row_does_not():
    model = _vit()
    assert model.global_pool == "max" and model.cls_token is not None
    x, target = _x(), torch.tensor([0, 1])
    with recorded_attention(model), torch.no_grad():
        base = model(x).gather(1, target[:, None])[:, 0]
    weights = readout_weights(model, _pooled_tokens(model, x), "auto")
    assert weights[:, 0].eq(0).all() and torch.allclose(weights.sum(1), torch.ones(2))
    moved = _logit_after_row_change(model, x, target, (weights > 0).float())
    assert (moved - base).abs().min() > 1e-4
    cls_row = torch.zeros_like(weights)
    cls_row[:, 0] = 1.0
    assert torch.equal(_logit_after_row_change(model, x, target, cls_row), base)  # the head never reads it


def test_readout_weights_by_pooling():
    x = _x()
    for pool, expected_cls in (("token", 1.0), ("avg", 0.0)):
        model = _vit(global_pool=pool)
        w = readout_weights(model, _pooled_tokens(model, x), "auto")
        assert torch.allclose(w[:, 0], torch.full((2,), expected_cls))
        if pool == "avg":
            assert torch.allclose(w[:, 1:], torch.full((2, 16), 1 / 16))
    model = _vit()
    tokens = _pooled_tokens(model, x)
    # max pooling: token t's weight is the share of channels whose maximum it holds
    wins = torch.stack([torch.bincount(tokens[b, 1:].argmax(0), minlength=16) for b in range(2)]).float()
    assert torch.allclose(readout_weights(model, tokens, "auto")[:, 1:], wins / tokens.shape[-1])


def test_chefer_reads_the_pooled_tokens_through_the_last_block():
    model = _vit(seed=2)
    x, target = _x(1), torch.tensor([1])
    ours = explainers.get("chefer")()(model, x, target)
    xg = x.clone().requires_grad_(True)
    with recorded_attention(model) as maps:
        score = model(xg)[0, 1]
        grads = torch.autograd.grad(score, maps)
    assert grads[-1][0, :, 0].abs().max() == 0  # the class token's last-block row: zero gradient
    weights = readout_weights(model, _pooled_tokens(model, x), "auto")

    def to_map(relevance):
        rows = (weights[:, :, None] * relevance).sum(1)[:, 1:].reshape(1, 1, 4, 4)
        return F.interpolate(rows, size=(32, 32), mode="bilinear", align_corners=False)[:, 0]

    maps = [m.detach() for m in maps]
    eye = torch.eye(maps[0].shape[-1])  # the identity start is no relevance (left out of the map)
    expected = to_map(gradient_weighted_rollout(maps, list(grads)) - eye)
    without_last = to_map(gradient_weighted_rollout(maps[:-1], list(grads[:-1])) - eye)
    assert torch.allclose(ours, expected, atol=1e-6)
    # small in an untrained model, yet 100x above rounding: the last block counts
    assert (expected - without_last).abs().max() > 1e-5 * expected.abs().max()
    # the class token's row, by contrast, is blind to the last block
    weights = torch.zeros_like(weights)
    weights[:, 0] = 1.0
    cls_all = to_map(gradient_weighted_rollout(maps, list(grads)))
    assert torch.equal(cls_all, to_map(gradient_weighted_rollout(maps[:-1], list(grads[:-1]))))


@pytest.mark.parametrize("name", ["attention", "attention_rollout", "chefer"])
def test_query_cls_keeps_the_papers_convention(name):
    model = _vit()
    a = explainers.get(name)(query="cls")(model, _x(), torch.tensor([0, 1]))
    b = explainers.get(name)()(model, _x(), torch.tensor([0, 1]))
    assert a.shape == b.shape == (2, 32, 32) and not torch.allclose(a, b)
