"""Images in another floating dtype than the model's: a one-line TypeError naming both dtypes, from every
explainer and every metric whose model raises on them (a review: torch's "Input type (double) and bias type
(float) should be the same" came from deep inside the explainer); a model and images in one dtype, and metrics and
explainers that never call the model, work as before."""

import pytest
import torch

from faithbench.device import dtype_mismatch
from faithbench.metrics.base import EvalContext, ForwardCounter
from faithbench.models import build_model
from faithbench.registry import explainers, metrics


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    return build_model("small_cnn", 1, 2, (16, 16), width=4).eval()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", ["saliency", "gradcam", "integrated_gradients", "occlusion", "scorecam", "lime"])
def test_an_explainer_refuses_images_in_another_dtype_than_the_model(cnn, name, dtype):
    x = torch.rand((2, 1, 16, 16)).to(dtype)
    with pytest.raises(TypeError, match=rf"^{name}: expected x in the model's dtype torch.float32, got {dtype}") as err:
        explainers.get(name)()(cnn, x, torch.tensor([0, 1]))
    assert "\n" not in str(err.value) and "x.to(torch.float32)" in str(err.value)


@pytest.mark.parametrize("name", ["deletion_auc", "faithfulness_correlation", "max_sensitivity", "completeness"])
def test_a_metric_refuses_images_in_another_dtype_than_the_model(cnn, name):
    x = torch.rand((2, 1, 16, 16), dtype=torch.float64)
    saliency = torch.rand((2, 16, 16), dtype=torch.float64)
    ctx = EvalContext(cnn, x, torch.tensor([0, 1]), torch.tensor([0, 1]), saliency, {}, ForwardCounter(cnn),
                      explainer=explainers.get("saliency")())
    expected = r"^(\w+): expected x in the model's dtype torch.float32, got torch.float64"
    with pytest.raises(TypeError, match=expected) as err:
        metrics.get(name)()(ctx)
    assert "\n" not in str(err.value) and str(err.value).split(":")[0] in (name, "saliency")  # or its re-explanation


@pytest.mark.parametrize("name", ["random", "sobel"])
def test_an_explainer_that_never_calls_the_model_takes_any_float_dtype(cnn, name):
    assert explainers.get(name)()(cnn, torch.rand((2, 1, 16, 16), dtype=torch.float64), torch.tensor([0, 1])).shape \
        == (2, 16, 16)


def test_a_model_and_images_in_one_dtype_pass(cnn):
    """Also a network that casts its input (the bfloat16 wrapper of tests/explainers/test_user_models.py)."""
    model = build_model("small_cnn", 1, 2, (16, 16), width=4).double().eval()
    x = torch.rand((2, 1, 16, 16), dtype=torch.float64)
    saliency = explainers.get("saliency")()(model, x, torch.tensor([0, 1]))
    assert saliency.shape == (2, 16, 16) and saliency.abs().sum() > 0
    assert dtype_mismatch("m", cnn, torch.rand(1, 1, 4, 4)) is None
    assert dtype_mismatch("m", torch.nn.ReLU(), torch.rand(1, 1, 4, 4).double()) is None  # no parameters: unchecked
    assert dtype_mismatch("m", "not a module", torch.rand(1)) is None
    # once the model raised: torch's dtype errors only, not a device mismatch that uses the same words (diff review)
    device = RuntimeError("Input type (torch.FloatTensor) and weight type (torch.cuda.FloatTensor) should be the same")
    dtype = RuntimeError("Input type (double) and bias type (float) should be the same")
    x64 = torch.rand(1, 1, 4, 4).double()
    assert dtype_mismatch("m", cnn, x64, device) is None and dtype_mismatch("m", cnn, x64, dtype) is not None
    assert dtype_mismatch("m", cnn, x64, RuntimeError("CUDA out of memory")) is None


@pytest.mark.parametrize("name", ["pointing_game", "sparseness"])
def test_a_metric_that_never_calls_the_model_takes_float64_images(cnn, name):
    x = torch.rand((2, 1, 16, 16), dtype=torch.float64)
    saliency = torch.rand((2, 16, 16), dtype=torch.float64)
    masks = {"lesion": torch.zeros((2, 16, 16), dtype=torch.bool).index_fill_(1, torch.tensor([3]), True)}
    value = metrics.get(name)()(EvalContext(cnn, x, torch.tensor([0, 1]), torch.tensor([0, 1]), saliency, masks,
                                            ForwardCounter(cnn)))["value"]
    assert value.shape == (2,) and torch.isfinite(value).all()


class _CastsToBf16(torch.nn.Module):
    """A network run in bfloat16 on float32 images (its parameters' dtype is never the images')."""

    def __init__(self, fail: str = "") -> None:
        super().__init__()
        self.net = build_model("small_cnn", 1, 2, (16, 16), width=4).eval().to(torch.bfloat16)
        self.fail = fail

    def forward(self, x):
        if self.fail:
            raise RuntimeError(self.fail)
        return self.net(x.to(torch.bfloat16)).float()


def test_other_errors_of_a_casting_network_keep_their_own_message():
    """A diff review: on the bfloat16 wrapper every failure, an out-of-memory error or a target past the outputs,
    became "expected x in the model's dtype torch.bfloat16"; only torch's dtype errors are explained so."""
    x = torch.rand((2, 1, 16, 16))
    with pytest.raises(ValueError, match=r"^saliency: target class 5 is past the model's 2 outputs"):
        explainers.get("saliency")()(_CastsToBf16(), x, torch.tensor([0, 5]))
    with pytest.raises(RuntimeError, match="^CUDA out of memory") as err:
        explainers.get("saliency")()(_CastsToBf16("CUDA out of memory. Tried to allocate 2 GiB"), x,
                                     torch.tensor([0, 1]))
    assert type(err.value) is RuntimeError
    failing = _CastsToBf16("boom: a failure inside the network")
    ctx = EvalContext(failing, x, torch.tensor([0, 1]), torch.tensor([0, 1]), torch.rand((2, 16, 16)), {},
                      ForwardCounter(failing))
    with pytest.raises(RuntimeError, match="^boom: a failure inside the network$") as err:
        metrics.get("deletion_auc")()(ctx)
    assert type(err.value) is RuntimeError
    assert explainers.get("saliency")()(_CastsToBf16(), x, torch.tensor([0, 1])).shape == (2, 16, 16)
