"""Attention explainers on a tiny timm ViT: rollout known answers, the fused-attention switch is
per model and restored, and explaining leaves the model as it was."""

import pytest
import torch

from faithbench.explainers import attention_rollout, gradient_weighted_rollout, recorded_attention
from faithbench.models import build_model
from faithbench.registry import explainers

ATTENTION = ["attention", "attention_rollout", "chefer"]


def _vit(seed=0, **kw):
    torch.manual_seed(seed)
    return build_model("vit_tiny", 1, 2, (32, 32), patch_size=8, embed_dim=48, depth=2, num_heads=2, **kw).eval()


def _x(n=2):
    return torch.rand((n, 1, 32, 32), generator=torch.Generator().manual_seed(0))


def test_rollout_of_identity_and_uniform_attention():
    n = 17
    eye = torch.eye(n).expand(2, 3, n, n)
    assert torch.allclose(attention_rollout([eye, eye, eye]), torch.eye(n).expand(2, n, n))
    uniform = torch.full((1, 2, n, n), 1.0 / n)
    rolled = attention_rollout([uniform, uniform])
    assert torch.allclose(rolled.sum(-1), torch.ones(1, n))  # rows stay distributions
    patch_part = rolled[0, 0, 1:]
    assert torch.allclose(patch_part, patch_part[0].expand_as(patch_part))
    a = 0.5 * uniform[0, 0] + 0.5 * torch.eye(n)  # already row-normalised
    assert torch.allclose(rolled[0], a @ a)


def test_gradient_weighted_rollout_by_hand():
    attn = torch.tensor([[[[0.7, 0.3], [0.2, 0.8]]]])
    grad = torch.tensor([[[[1.0, -1.0], [2.0, 0.5]]]])
    a_bar = torch.tensor([[0.7, 0.0], [0.4, 0.4]])
    r1 = torch.eye(2) + a_bar
    assert torch.allclose(gradient_weighted_rollout([attn], [grad])[0], r1)
    assert torch.allclose(gradient_weighted_rollout([attn, attn], [grad, grad])[0], r1 + a_bar @ r1)


def test_uniform_attention_gives_a_uniform_map():
    """Zero query/key weights make q.k = 0: every attention row is exactly uniform."""
    model = _vit()
    with torch.no_grad():
        for block in model.blocks:
            dim = block.attn.qkv.in_features
            block.attn.qkv.weight[: 2 * dim] = 0
            if block.attn.qkv.bias is not None:
                block.attn.qkv.bias[: 2 * dim] = 0
    for name in ["attention", "attention_rollout"]:
        # the class token's row; rollout's residual identity makes pooled-token rows non-uniform
        s = explainers.get(name)(query="cls")(model, _x(), torch.tensor([0, 1]))
        assert torch.allclose(s, s[:, :1, :1].expand_as(s), atol=1e-6), name
        assert s.min() > 0


def test_identity_attention_gives_a_uniform_map():
    """A hook makes every block's attention the identity: rollout is then I, a uniform (zero) map
    from the class token and 1/n over patches for the mean query."""
    model = _vit()

    def identity(_m, _i, out):
        return torch.eye(out.shape[-1]).expand_as(out).clone()

    handles = [b.attn.attn_drop.register_forward_hook(identity) for b in model.blocks]
    try:
        cls_map = explainers.get("attention_rollout")(query="cls")(model, _x(), torch.tensor([0, 1]))
        mean_map = explainers.get("attention_rollout")(query="mean")(model, _x(), torch.tensor([0, 1]))
    finally:
        for h in handles:
            h.remove()
    assert torch.count_nonzero(cls_map) == 0
    assert torch.allclose(mean_map, torch.full_like(mean_map, 1 / 16))


def test_one_hot_attention_points_at_the_patch():
    """Every query attends only to patch token 6 (grid cell (1, 1) of 4x4): the maps peak there."""
    model = _vit()

    def to_patch(_m, _i, out):
        one_hot = torch.zeros_like(out)
        one_hot[..., 1 + 5] = 1.0
        return one_hot

    handles = [b.attn.attn_drop.register_forward_hook(to_patch) for b in model.blocks]
    try:
        for name in ["attention", "attention_rollout"]:
            s = explainers.get(name)()(model, _x(), torch.tensor([0, 1]))
            peak = divmod(int(s[0].argmax()), 32)
            assert 8 <= peak[0] < 16 and 8 <= peak[1] < 16, (name, peak)
    finally:
        for h in handles:
            h.remove()


@pytest.mark.parametrize("name", ATTENTION)
def test_fused_attention_restored_per_model(name):
    model, other = _vit(), _vit(1)
    model.blocks[0].attn.fused_attn = True
    model.blocks[1].attn.fused_attn = False
    other_before = [b.attn.fused_attn for b in other.blocks]
    x = _x()
    with torch.no_grad():
        before = model(x)
    seen = []
    probe = other.blocks[0].register_forward_pre_hook(lambda *_: seen.append(1))
    explainers.get(name)()(model, x, torch.tensor([0, 1]))
    probe.remove()
    assert [b.attn.fused_attn for b in model.blocks] == [True, False]
    assert [b.attn.fused_attn for b in other.blocks] == other_before and not seen
    assert all(len(b.attn.attn_drop._forward_hooks) == 0 for b in model.blocks)
    with torch.no_grad():
        assert torch.allclose(model(x), before, atol=1e-6)  # fused and unfused agree to rounding
    assert all(p.grad is None for p in model.parameters())


def test_recorded_attention_restores_on_error():
    model = _vit()
    flags = [b.attn.fused_attn for b in model.blocks]
    with pytest.raises(RuntimeError):
        with recorded_attention(model) as maps:
            model(_x())
            assert len(maps) == 2 and maps[0].shape == (2, 2, 17, 17)
            assert all(b.attn.fused_attn is False for b in model.blocks)
            raise RuntimeError("boom")
    assert [b.attn.fused_attn for b in model.blocks] == flags


def test_chefer_is_class_specific_and_attention_is_not():
    model = _vit()
    x = _x(1)
    s0, s1 = (explainers.get("chefer")()(model, x, torch.tensor([t])) for t in (0, 1))
    assert not torch.allclose(s0, s1)
    a0, a1 = (explainers.get("attention_rollout")()(model, x, torch.tensor([t])) for t in (0, 1))
    assert torch.equal(a0, a1)


def test_no_class_token_uses_mean_query_and_cls_is_refused():
    model = _vit(class_token=False)
    assert model.num_prefix_tokens == 0
    s = explainers.get("attention_rollout")()(model, _x(), torch.tensor([0, 1]))
    assert s.shape == (2, 32, 32) and torch.isfinite(s).all()
    with pytest.raises(ValueError, match="class token"):
        explainers.get("attention_rollout")(query="cls")(model, _x(), torch.tensor([0, 1]))


def test_unsupported_on_cnn_and_wrong_size():
    cnn = build_model("small_cnn", 1, 2, (32, 32), width=4)
    for name in ATTENTION:
        reason = explainers.get(name)().unsupported_reason(cnn, torch.rand(1, 1, 32, 32))
        assert reason and "vit" in reason
    cnn.arch_family = "vit"  # claims to be a ViT but has no blocks
    assert "timm VisionTransformer" in explainers.get("chefer")().unsupported_reason(cnn, torch.rand(1, 1, 32, 32))


def test_chefer_leaves_out_its_identity_start_so_patch_readouts_are_class_specific():
    """A held-out review: on vit_tiny (max-pooled patch tokens) the identity R starts from put each read
    token's weight on its own patch, 99.8 % of the map; the two classes' maps correlated at 1.000000."""
    from faithbench.explainers.transformer import readout_weights, token_map

    model = _vit(seed=3)
    x = _x(2)
    target = torch.tensor([0, 0])
    maps, grads = [], []
    with recorded_attention(model) as recorded, torch.enable_grad():
        tokens = []
        handle = model.norm.register_forward_hook(lambda _m, _i, out: tokens.append(out.detach()))
        score = model(x.requires_grad_(True)).gather(1, target[:, None]).sum()
        handle.remove()
        grads = torch.autograd.grad(score, recorded)
        maps = [m.detach() for m in recorded]
    relevance = gradient_weighted_rollout(maps, [g.detach() for g in grads])
    weights = readout_weights(model, tokens[-1], "auto")
    assert weights[:, model.num_prefix_tokens:].sum(1).allclose(torch.ones(2))  # patch rows: the identity counted
    expected = token_map(relevance - torch.eye(relevance.shape[-1]), weights, model, (32, 32))
    ours = explainers.get("chefer")()(model, x.detach(), target)
    assert torch.allclose(ours, expected, atol=1e-6)
    with_identity = token_map(relevance, weights, model, (32, 32))
    assert (with_identity - ours).abs().max() > 10 * ours.abs().max()  # the identity term dwarfed the rest


def test_pixels_past_the_last_whole_patch_get_no_relevance():
    """A held-out review: 8-px patches on a 30-px image; timm drops the last 6 pixels, which the map put
    39.6 % of its mass on (the grid was stretched over the whole image)."""
    import timm

    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=30, patch_size=8, embed_dim=48,
                              depth=2, num_heads=2, num_classes=2, in_chans=1).eval()
    assert tuple(model.patch_embed.grid_size) == (3, 3)
    x = torch.rand(2, 1, 30, 30, generator=torch.Generator().manual_seed(1))
    for name in ATTENTION:
        s = explainers.get(name)()(model, x, torch.tensor([0, 1]))
        assert s.shape == (2, 30, 30)
        assert torch.equal(s[:, 24:, :], torch.zeros(2, 6, 30)) and torch.equal(s[:, :, 24:], torch.zeros(2, 30, 6))
        assert s[:, :24, :24].abs().sum() > 0


@pytest.mark.parametrize("name", ["gradcam", "hirescam", "eigencam", "scorecam", "ablationcam"])
def test_a_vits_cam_covers_the_pixels_its_patches_cover(name):
    """A held-out review: vit_tiny with 24-px patches on 64 px put 38-75 % of its CAMs on the pixels the
    patch embedding drops (the token grid was stretched over the whole input, as pytorch-grad-cam does);
    the grid now spans the pixels its patches cover, as the attention explainers' maps."""
    import torch.nn.functional as F
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from faithbench.explainers.cam import raw_cam_class, vit_reshape_transform

    torch.manual_seed(0)
    model = build_model("vit_tiny", 1, 3, (30, 30), stem="patch", patch_size=8, embed_dim=48, depth=2,
                        num_heads=2).eval()
    assert tuple(model.patch_embed.grid_size) == (3, 3)  # 24 of 30 pixels per axis
    x, target = torch.rand(2, 1, 30, 30, generator=torch.Generator().manual_seed(1)), torch.tensor([0, 2])
    s = explainers.get(name)()(model, x, target)
    assert s.shape == (2, 30, 30)
    assert torch.equal(s[:, 24:, :], torch.zeros(2, 6, 30)) and torch.equal(s[:, :, 24:], torch.zeros(2, 30, 6))
    assert s[:, :24, :24].abs().sum() > 0
    if name == "gradcam":  # the library's raw grid, ReLU, upsampled over the 24 covered pixels
        cam = raw_cam_class(GradCAM)(model=model, target_layers=[model.blocks[-1].norm1],
                                     reshape_transform=vit_reshape_transform(model, (30, 30)))
        grid = torch.as_tensor(cam(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in target]))
        cam.activations_and_grads.release()
        expected = F.interpolate(grid.clamp(min=0)[:, None].float(), size=(24, 24), mode="bilinear",
                                 align_corners=False)[:, 0]
        torch.testing.assert_close(s[:, :24, :24], expected, rtol=1e-5, atol=1e-7)


def test_a_vit_behind_a_resizing_input_transform_covers_every_pixel():
    """A diff review: 36-px images resized to the network's 32 px (preprocess) got the 4 x 4 grid of 8-px
    patches on their top-left 32 pixels and 0 elsewhere, though the network saw every pixel."""
    import timm

    from faithbench.models.preprocess import InputConfig, attach_input_transform

    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, embed_dim=48,
                              depth=2, num_heads=2, num_classes=2, in_chans=1).eval()
    model.arch_family = "vit"
    attach_input_transform(model, InputConfig(in_chans=1, size=(32, 32), mean=(0.5,), std=(0.5,)))
    x = torch.rand(2, 1, 36, 36, generator=torch.Generator().manual_seed(1))
    for name in ("gradcam", "attention"):
        s = explainers.get(name)()(model, x, torch.tensor([0, 1]))
        assert s.shape == (2, 36, 36) and (s[:, 32:, :].abs().sum() > 0 or s[:, :, 32:].abs().sum() > 0), name


def test_a_distilled_deit_reads_both_tokens_and_attention_pooling_is_skipped():
    """A held-out review: a DeiT's head averages its class and distillation tokens, but only the class
    token's row was read; attention pooling passed the support check, then failed the cell."""
    import timm

    from faithbench.explainers.transformer import readout_weights

    deit = timm.create_model("deit_tiny_distilled_patch16_224", pretrained=False, img_size=32, patch_size=8,
                             embed_dim=48, depth=1, num_heads=2, num_classes=2, in_chans=1).eval()
    tokens = torch.rand(1, deit.num_prefix_tokens + 16, 48)
    assert readout_weights(deit, tokens, "auto")[0, :3].tolist() == [0.5, 0.5, 0.0]
    assert readout_weights(deit, tokens, "cls")[0, :3].tolist() == [1.0, 0.0, 0.0]  # asked for: the class token
    pooled = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, embed_dim=48,
                               depth=1, num_heads=2, num_classes=2, in_chans=1, global_pool="map").eval()
    pooled.arch_family = "vit"
    reason = explainers.get("attention")().unsupported_reason(pooled, torch.rand(1, 1, 32, 32))
    assert reason and "attention pooling (global_pool 'map') has no token readout" in reason
    assert explainers.get("attention")(query="mean").unsupported_reason(pooled, torch.rand(1, 1, 32, 32)) is None


def test_chefer_without_identity_is_accumulated_not_subtracted_and_int_patch_sizes_work():
    """A diff review: R - I computed by subtracting I from float32 R lost digits (2.7e-3 relative on a random
    ViT); a plugin's patch embedding storing patch_size as an int crashed token_map."""
    g = torch.Generator().manual_seed(0)
    attns = [torch.rand(2, 2, 5, 5, generator=g, dtype=torch.float64).softmax(-1) for _ in range(3)]
    grads = [torch.randn(2, 2, 5, 5, generator=g, dtype=torch.float64) for _ in range(3)]
    exact = gradient_weighted_rollout(attns, grads) - torch.eye(5, dtype=torch.float64)
    assert torch.allclose(gradient_weighted_rollout(attns, grads, identity=False), exact, atol=1e-15)
    single = gradient_weighted_rollout([a.float() for a in attns], [d.float() for d in grads], identity=False)
    assert ((single.double() - exact).abs().max() / exact.abs().max()) < 1e-6
    model = _vit()
    model.patch_embed.patch_size = 1  # vit_tiny's hybrid embed, as an int
    assert explainers.get("attention")()(model, _x(), torch.tensor([0, 1])).shape == (2, 32, 32)


def test_a_dynamic_size_vit_is_explained_on_the_inputs_own_grid():
    """Helper reviews: a timm ViT with dynamic_img_size, given another input size, passed the support check
    and failed its cell (the grid of the size it was built for)."""
    import timm
    import torch.nn.functional as F

    from faithbench.explainers.transformer import readout_weights

    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, embed_dim=48,
                              depth=1, num_heads=2, num_classes=2, in_chans=1, dynamic_img_size=True).eval()
    x = torch.rand(1, 1, 40, 48, generator=torch.Generator().manual_seed(2))
    ours = explainers.get("attention")()(model, x, torch.tensor([1]))
    tokens = []
    handle = model.norm.register_forward_hook(lambda _m, _i, out: tokens.append(out.detach()))
    with recorded_attention(model) as maps, torch.no_grad():
        model(x)
    handle.remove()
    rows = (readout_weights(model, tokens[-1], "auto")[:, :, None] * maps[-1].mean(1)).sum(1)[:, 1:]
    expected = F.interpolate(rows.reshape(1, 1, 5, 6), size=(40, 48), mode="bilinear", align_corners=False)[:, 0]
    assert torch.allclose(ours, expected, atol=1e-6)
