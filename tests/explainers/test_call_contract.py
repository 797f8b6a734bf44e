"""What :meth:`Explainer.__call__` guarantees every explainer: a map independent of the batch, gradients
under a caller's ``torch.no_grad()``, the model's train/eval modes restored, targets checked; plus the
parameter bounds and list descriptions that the review found loose."""

import pytest
import torch

from faithbench.configurable import ParameterError
from faithbench.models import build_model
from faithbench.registry import explainers

# cheap settings; gradient_shap with noise, so both its NumPy (path points) and torch (noise) draws count
STOCHASTIC = {
    "smoothgrad": {"n_samples": 4},
    "gradient_shap": {"n_samples": 4, "noise_level": 0.1},
    "lime": {"patch": 8, "n_samples": 24},
    "kernel_shap": {"patch": 8, "n_samples": 24},
}


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    model = build_model("small_cnn", 1, 2, (32, 32), width=8).eval()
    for m in model.modules():  # non-trivial BatchNorm statistics: train and eval mode differ
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    x = torch.rand((4, 1, 32, 32), generator=torch.Generator().manual_seed(1))
    return model, x


@pytest.mark.parametrize("name", list(STOCHASTIC))
def test_stochastic_map_does_not_depend_on_the_batch(name, cnn):
    """Before the per-sample re-seeding, image 3 of 4 got other noise / coalitions than image 3 alone
    (measured max |diff| / max |map| 0.45-1.35)."""
    model, x = cnn
    target = torch.tensor([0, 1, 1, 0])
    explainer = explainers.get(name)(seed=3, **STOCHASTIC[name])
    in_batch = explainer(model, x, target)[2]
    alone = explainer(model, x[2:3], target[2:3])[0]
    assert alone.abs().max() > 0
    assert torch.allclose(in_batch, alone, rtol=0, atol=1e-6 * float(alone.abs().max()))
    other_seed = explainers.get(name)(seed=4, **STOCHASTIC[name])(model, x[2:3], target[2:3])[0]
    assert not torch.allclose(other_seed, alone), "the seed no longer reaches the explainer"


@pytest.mark.parametrize("name", sorted(STOCHASTIC))
def test_different_images_get_different_draws(name, cnn, monkeypatch):
    """A review of the per-sample re-seeding: every image got the same draws (smoothgrad's noise /
    range correlated 1.0 between images), so a cell's samples shared the explainer's random error."""
    from faithbench.explainers import base

    seeds = []
    original = torch.manual_seed
    monkeypatch.setattr(base.torch, "manual_seed", lambda s: seeds.append(int(s)) or original(s))
    model, x = cnn
    explainers.get(name)(seed=3, **STOCHASTIC[name])(model, x[:2], torch.tensor([0, 1]))
    per_image = seeds[1:]  # the first is __call__'s own, with the explainer's seed
    assert seeds[0] == 3 and len(per_image) == 2 and per_image[0] != per_image[1]
    seeds.clear()
    explainers.get(name)(seed=3, **STOCHASTIC[name])(model, x[1:2], torch.tensor([1]))
    assert seeds[1:] == per_image[1:]  # the same image, alone: the same draws


@pytest.mark.parametrize("name", ["gradcam", "deeplift"])
def test_gradient_explainer_under_no_grad(name, cnn):
    """A caller's ``torch.no_grad()`` used to break gradcam ("element 0 of tensors does not require grad")
    and deeplift; the map must be the one computed with gradients on."""
    model, x = cnn
    target = torch.tensor([0, 1, 1, 0])
    expected = explainers.get(name)()(model, x, target)
    with torch.no_grad():
        got = explainers.get(name)()(model, x, target)
    assert expected.abs().max() > 0
    assert torch.allclose(got, expected, rtol=0, atol=1e-6 * float(expected.abs().max()))


@pytest.mark.parametrize("name", ["saliency", "occlusion"])
def test_each_module_mode_is_restored(name, cnn):
    """The call explains the model in eval mode and then puts every module back: a model in training
    stays in training, with a submodule the caller froze in eval still in eval."""
    model, x = cnn
    target = torch.tensor([0, 1, 1, 0])
    params = {"window": 8, "stride": 8} if name == "occlusion" else {}
    expected = explainers.get(name)(**params)(model, x, target)
    model.train()
    model.features[0].eval()
    modes = {n: m.training for n, m in model.named_modules()}
    try:
        got = explainers.get(name)(**params)(model, x, target)
        assert {n: m.training for n, m in model.named_modules()} == modes
        assert torch.allclose(got, expected, rtol=0, atol=1e-6 * float(expected.abs().max()))  # explained in eval mode
        with pytest.raises(ValueError):  # restored when the explainer fails, too
            explainers.get("gradcam")(target_layer="no.such.layer")(model, x, target)
        assert {n: m.training for n, m in model.named_modules()} == modes
    finally:
        model.eval()


@pytest.mark.parametrize("name", ["saliency", "gradcam"])
def test_target_must_be_non_negative_class_indices(name, cnn):
    """1.7 used to be truncated to class 1, -1 made gradcam explain the last class, and a bool mask was
    taken for classes; floats with whole values are those classes."""
    model, x = cnn
    explainer = explainers.get(name)()
    for bad in ([1.7, 0.0, 1.0, 0.0], [-1, 0, 1, 0], [True, False, True, False], [0.0, float("inf"), 1.0, 0.0]):
        with pytest.raises(ValueError, match="expected target of"):
            explainer(model, x, torch.tensor(bad))
    as_long = explainer(model, x, torch.tensor([0, 1, 1, 0]))
    assert torch.equal(explainer(model, x, torch.tensor([0.0, 1.0, 1.0, 0.0])), as_long)
    assert not torch.equal(explainer(model, x, torch.tensor([1, 1, 1, 0])), as_long)


@pytest.mark.parametrize("name", ["lrp", "lrp_epsilon_zplus"])
def test_lrp_refuses_zero_epsilon(name):
    """epsilon 0 divides 0 by 0 where a pre-activation is 0: lrp's map of small_cnn was all NaN."""
    with pytest.raises(ParameterError, match="'epsilon' must be > 0"):
        explainers.get(name)(epsilon=0.0)
    explainers.get(name)(epsilon=1e-12)


@pytest.mark.parametrize("name", ["attention", "attention_rollout", "chefer"])
def test_attention_descriptions_name_the_tokens_the_head_reads(name):
    """The default query "auto" reads the tokens the head pools, not always the class token."""
    cls = explainers.get(name)
    assert cls.defaults["query"] == "auto"
    assert "class token" not in cls.description
    assert "the head" in cls.description


def test_a_map_that_is_no_tensor_is_refused_with_the_expected_shape(cnn):
    """A held-out review: a plugin returning a NumPy array failed with "'numpy.ndarray' object has no
    attribute 'detach'"."""
    from faithbench.explainers import Explainer

    class NumpyOut(Explainer):
        needs_grad = False
        defaults = {}

        def explain(self, model, x, target):
            return x.mean(1).numpy()

    model, x = cnn
    with pytest.raises(TypeError, match=r"expected saliency as a torch.Tensor of shape \(4, 32, 32\), got ndarray"):
        NumpyOut()(model, x, torch.tensor([0, 1, 1, 0]))


@pytest.mark.parametrize("convert", ["bool", "long"])
def test_a_map_that_is_not_floating_point_is_refused(cnn, convert):
    """A held-out review: a boolean map (a mask returned by mistake) and an integer map were scored without
    a word, next to the float explainers."""
    from faithbench.explainers import Explainer

    class Cast(Explainer):
        needs_grad = False
        defaults = {}

        def explain(self, model, x, target):
            m = x.mean(1)
            return m > m.mean() if convert == "bool" else (100 * m).long()

    model, x = cnn
    dtype = "torch.bool" if convert == "bool" else "torch.int64"
    with pytest.raises(TypeError, match=rf"expected a floating-point saliency map, got {dtype}"):
        Cast()(model, x, torch.tensor([0, 1, 1, 0]))


@pytest.mark.parametrize("stochastic", [False, True])
def test_a_map_on_another_device_than_the_input_is_refused_naming_both(cnn, stochastic):
    """A held-out review: a plugin's map on another device failed its cell with torch's "Tensor.item() cannot
    be called on meta tensors", naming neither the explainer nor the device (checked here with ``meta``:
    a CUDA model's map moved to the CPU is the same check)."""
    from faithbench.explainers import Explainer

    class Elsewhere(Explainer):
        name = "elsewhere"
        needs_grad = False
        defaults = {}

        def explain(self, model, x, target):
            return x.mean(1).to("meta")

    Elsewhere.stochastic = stochastic  # explained per image, each checked there
    model, x = cnn
    with pytest.raises(ValueError, match=r"^explainer 'elsewhere' returned its map on device meta; expected the "
                                         r"input's device cpu$"):
        Elsewhere()(model, x, torch.tensor([0, 1, 1, 0]))


def test_a_malformed_map_message_names_the_suites_alias(cnn):
    """Review plugins5 F2: the runner sets the suite entry's alias (``suite_label``); the messages name it before
    the registry name, as failures.csv's ``explainer`` column does."""
    from faithbench.explainers import Explainer

    class Shrunk(Explainer):
        registry_name = "shrunk"
        needs_grad = False
        defaults = {"meta": False}

        def explain(self, model, x, target):
            return x.mean(1).to("meta") if self.meta else x[:, 0, ::2, ::2]

    model, x = cnn
    target = torch.tensor([0, 1, 1, 0])
    for label, who in [("", "shrunk"), ("shrunk", "shrunk"), ("half", r"half \(shrunk\)")]:
        explainer = Shrunk()
        explainer.suite_label = label
        with pytest.raises(ValueError, match=rf"^{who}: expected saliency of shape \(4, 32, 32\), got \(4, 16, 16\)$"):
            explainer(model, x, target)
    explainer = Shrunk(meta=True)
    explainer.suite_label = "half"
    with pytest.raises(ValueError, match=r"^explainer 'half' \(shrunk\) returned its map on device meta; expected"):
        explainer(model, x, target)


def test_a_stochastic_plugin_is_explained_per_image(cnn):
    """A held-out review (helper 123): a plugin drawing ``torch.randn_like(x)`` per batch got another map
    for an image when only ``batch_size`` changed, and the images at one position of every batch shared
    their noise. ``stochastic = True`` explains one image at a time, reseeded from its bytes; NumPy's and
    Python's global generators are seeded too."""
    import random

    import numpy as np

    from faithbench.explainers import Explainer

    class Noisy(Explainer):
        needs_grad = False
        defaults = {}

        def explain(self, model, x, target):
            shift = torch.tensor([[np.random.rand() + random.random()]] * x.shape[0])
            return x.mean(1) + torch.randn_like(x.mean(1)) + shift[..., None]

    class PerImage(Noisy):
        stochastic = True

    model, x = cnn
    twice = torch.cat([x[:2], x[:2]])  # the same two images at positions 0-1 and 2-3
    target = torch.tensor([0, 1, 0, 1])
    per_batch = Noisy(seed=3)(model, twice, target)
    assert not torch.allclose(per_batch[0], per_batch[2])  # the old behaviour, kept for a plugin that says nothing
    assert torch.equal(Noisy(seed=3)(model, twice, target), per_batch)  # deterministic given the batch
    maps = PerImage(seed=3)(model, twice, target)
    assert torch.equal(maps[0], maps[2]) and torch.equal(maps[1], maps[3])  # an image's map, whatever its position
    assert not torch.allclose(maps[0] - x[0].mean(0), maps[1] - x[1].mean(0))  # two images: two draws
    assert torch.equal(PerImage(seed=3)(model, x[1:2], target[1:2])[0], maps[1])  # alone = in a batch
    assert not torch.equal(PerImage(seed=4)(model, x[1:2], target[1:2])[0], maps[1])
    state = (random.getstate(), np.random.get_state()[1].copy())
    PerImage(seed=3)(model, x, torch.tensor([0, 1, 1, 0]))
    assert random.getstate() == state[0] and (np.random.get_state()[1] == state[1]).all()  # restored


def test_a_stochastic_plugin_piece_of_the_wrong_shape_is_refused(cnn):
    from faithbench.explainers import Explainer

    class Wrong(Explainer):
        needs_grad = False
        stochastic = True
        defaults = {}

        def explain(self, model, x, target):
            return torch.rand(2, 32, 32)

    model, x = cnn
    with pytest.raises(ValueError, match=r"expected saliency of shape \(1, 32, 32\), got \(2, 32, 32\)"):
        Wrong()(model, x, torch.tensor([0, 1, 1, 0]))
