"""Every registered explainer on a small 2D CNN, a small ViT and a small 3D CNN: shape, finite,
seeded determinism, not constant; or a non-empty reason why the pair is unsupported."""

import pytest
import torch

from faithbench.models import build_model
from faithbench.registry import explainers
from faithbench.runner.guard import ModelGuard

# cheap settings: tests check the interface, not the quality of the maps
CHEAP: dict[str, dict] = {
    "integrated_gradients": {"n_steps": 4},
    "smoothgrad": {"n_samples": 4},
    "gradient_shap": {"n_samples": 4, "noise_level": 0.1},
    "occlusion": {"window": 8, "stride": 8},
    "lime": {"patch": 8, "n_samples": 24},
    "kernel_shap": {"patch": 8, "n_samples": 24},
    "rise": {"n_masks": 32, "grid": 4, "batch_size": 16},
    "scorecam": {"batch_size": 16},
    "ablationcam": {"batch_size": 16},
}

MODELS = {
    "cnn2d": (lambda: build_model("small_cnn", 1, 2, (32, 32), width=8), (32, 32)),
    "vit": (lambda: build_model("vit_tiny", 1, 2, (32, 32), patch_size=8, embed_dim=48, depth=2, num_heads=2),
            (32, 32)),
    "cnn3d": (lambda: build_model("small_cnn", 1, 2, (16, 16, 16), width=4), (16, 16, 16)),
}

# which pairs must run: a registered explainer may only be skipped where this says so
EXPECTED_UNSUPPORTED = {
    "vit": {"fullgrad", "deeplift", "guided_backprop", "guided_gradcam", "lrp", "lrp_epsilon_zplus",
            "temporal_occlusion"},
    "cnn2d": {"attention", "attention_rollout", "chefer", "temporal_occlusion"},
    "cnn3d": {"attention", "attention_rollout", "chefer", "ablationcam", "fullgrad"},
}


def fingerprint(model):
    """Hooks, public attributes, submodule types and parameter grads: what an explainer may not leave behind."""
    return [(name, type(m).__name__, len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks),
             len(m._backward_pre_hooks), sorted(k for k in vars(m) if not k.startswith("_")),
             [p.grad is None for p in m.parameters(recurse=False)])
            for name, m in model.named_modules()]


@pytest.fixture(scope="module")
def models():
    out = {}
    for key, (build, size) in MODELS.items():
        torch.manual_seed(0)
        model = build().eval()
        # non-trivial BatchNorm statistics, so no layer is an exact identity
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
        x = torch.rand((2, 1, *size), generator=torch.Generator().manual_seed(1))
        out[key] = (model, x)
    return out


@pytest.mark.parametrize("arch", list(MODELS))
@pytest.mark.parametrize("name", explainers.names())
def test_every_explainer(name, arch, models):
    model, x = models[arch]
    target = torch.tensor([0, 1])
    explainer = explainers.get(name)(seed=3, **CHEAP.get(name, {}))
    reason = explainer.unsupported_reason(model, x)
    if name in EXPECTED_UNSUPPORTED[arch]:
        assert isinstance(reason, str) and reason.strip(), f"{name} on {arch} should say why it cannot run"
        pytest.skip(reason)
    assert reason is None, reason
    before, state, guard = model(x).detach(), fingerprint(model), ModelGuard(model)
    a = explainer(model, x, target)
    guard.check(name)  # the runner's guard: no built-in explainer trips it (zennit's canonizers put weights back)
    assert fingerprint(model) == state, "explaining left hooks, attributes, modules or grads behind"
    b = explainers.get(name)(seed=3, **CHEAP.get(name, {}))(model, x, target)
    assert a.shape == (2, *x.shape[2:])
    assert torch.isfinite(a).all()
    assert torch.equal(a, b)
    varies = a.flatten(1).std(1) > 0
    if getattr(explainer, "relu", False):  # a CAM's ReLU zeroes a map with no positive evidence
        signed = explainers.get(name)(seed=3, relu=False, **CHEAP.get(name, {}))(model, x, target).flatten(1)
        assert signed.std(1).min() > 0, "constant map"
        varies |= signed.amax(1) <= 0
    assert varies.all(), "constant map"
    assert torch.equal(model(x), before), "explaining changed the model"


def test_metadata_complete():
    for name in explainers.names():
        cls = explainers.get(name)
        assert cls.family in {"cam", "gradient", "perturbation", "transformer", "control"}, name
        assert cls.description, name
        assert cls.dims <= {2, 3} and cls.architectures <= {"cnn", "vit"}, name
        if cls.family != "control":
            assert cls.paper, name
        cls()  # defaults are valid
