"""The public factories, suites from dicts and Suite objects, and registries usable before any import."""

import re
import subprocess
import sys

import pytest
import torch

import faithbench
from faithbench.config import Suite, SuiteError


def test_a_registry_lookup_works_in_a_fresh_interpreter():
    code = ("from faithbench.registry import explainers, metrics, datasets, models\n"
            "print(explainers.get('gradcam').__name__, metrics.get('deletion_auc').__name__,"
            " datasets.get('phantom_cxr').__name__, 'small_cnn' in models)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["GradCAMExplainer", "DeletionAUC", "PhantomCXR", "True"]


def test_create_explainer_metric_dataset_model_give_working_objects():
    model = faithbench.create_model("small_cnn", in_chans=1, num_classes=2, input_size=(32, 32), width=4)
    data = faithbench.create_dataset("phantom_cxr", split="test", n=8, size=32)
    x = torch.stack([data[i].image for i in range(2)])
    saliency = faithbench.create_explainer("saliency")(model, x, torch.tensor([1, 0]))
    assert saliency.shape == (2, 32, 32)
    metric = faithbench.create_metric("deletion_auc", steps=4)
    assert metric.params["steps"] == 4 and metric.higher_is_better is False


def test_create_with_an_unknown_name_says_did_you_mean():
    with pytest.raises(KeyError, match="did you mean 'gradcam'"):
        faithbench.create_explainer("gradcamm")
    with pytest.raises(ValueError, match="unknown parameter 'stepz'"):
        faithbench.create_metric("deletion_auc", stepz=4)


TINY = {"name": "tiny", "samples": 4, "datasets": [{"name": "phantom_cxr", "params": {"n": 32, "size": 32}}],
        "models": [{"name": "small_cnn", "params": {"width": 4}, "recipe": {"epochs": 1}}],
        "explainers": ["random"], "metrics": ["pointing_game"]}


def test_load_suite_accepts_a_dict():
    suite = faithbench.load_suite(TINY)
    assert isinstance(suite, Suite) and suite.name == "tiny" and suite.explainers[0].name == "random"
    with pytest.raises(SuiteError, match=r"explainers\[0\]: unknown explainer 'randm'; did you mean 'random'"):
        faithbench.load_suite({**TINY, "explainers": ["randm"]})


def test_run_of_a_suite_object_with_an_unknown_name_is_the_did_you_mean_error(tmp_path):
    suite = Suite.model_validate({**TINY, "metrics": ["pointing_gam"]})  # the schema alone accepts any name
    with pytest.raises(SuiteError, match="did you mean 'pointing_game'"):
        faithbench.run(suite, out_dir=tmp_path / "out")
    assert not (tmp_path / "out" / "results.csv").exists()


def test_a_suite_warning_is_given_once_by_load_suite_then_run(tmp_path, monkeypatch):
    """A held-out review: `run(load_suite(...))` gave "no 'random' control" twice, from load_suite and again
    from run's validation of the Suite. A Suite changed since it was loaded, or built without load_suite,
    is warned of by run."""
    import warnings

    monkeypatch.setattr("faithbench.runner.run.run_suite", lambda suite, out, **kwargs: suite)

    def warned(call):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call()
        return sum("no 'random' control" in str(w.message) for w in caught)

    data = {**TINY, "explainers": ["saliency", "sobel"]}
    loaded: list[Suite] = []
    assert warned(lambda: loaded.append(faithbench.load_suite(data))) == 1
    suite = loaded[0]
    assert warned(lambda: faithbench.run(suite, out_dir=tmp_path / "out")) == 0  # load_suite warned of it
    suite.samples = 2
    assert warned(lambda: faithbench.run(suite, out_dir=tmp_path / "out")) == 1  # changed since
    assert warned(lambda: faithbench.run(Suite.model_validate(data), out_dir=tmp_path / "out")) == 1


def test_a_control_the_suite_sets_must_be_one_of_its_explainers():
    with pytest.raises(SuiteError, match="control: 'sobel' is not an explainer of the suite"):
        faithbench.load_suite({**TINY, "control": "sobel"})
    assert faithbench.load_suite({**TINY, "explainers": ["random", "sobel"], "control": "sobel"}).control == "sobel"


def test_run_takes_the_cache_folder_as_a_path_string_and_names_every_setting(tmp_path):
    from faithbench.runner.errors import UsageError

    result = faithbench.run(TINY, out_dir=tmp_path / "out", cache=str(tmp_path / "cache"), limit=2, progress=False,
                            log=lambda _line: None)  # a review: a str cache was an AttributeError on .root
    assert result.status == "ok" and any((tmp_path / "cache").rglob("*.safetensors"))
    with pytest.raises(UsageError, match="unknown setting 'quiet'; expected limit, device, cache, executor, progress"):
        faithbench.run(TINY, out_dir=tmp_path / "out2", quiet=True)


@pytest.mark.parametrize("kwargs, message", [
    ({"device": "tpu"}, r"run: device: expected one of auto, cpu, cuda, cuda:N, mps, got 'tpu'"),
    ({"device": "mps"}, r"run: device 'mps': not supported: .*; use device='cpu'"),
    ({"bogus": 1}, r"run: unknown setting 'bogus'; expected limit, device, cache, executor, progress, log or report"),
])
def test_run_errors_name_its_own_arguments_not_the_cli_flags(tmp_path, kwargs, message):
    """A docs review: device='tpu' was "--device: expected …", an unknown keyword "run_suite: unknown setting"."""
    from faithbench.runner.errors import UsageError

    with pytest.raises(UsageError, match=rf"^{message}$"):
        faithbench.run(TINY, out_dir=tmp_path / "out", cache=tmp_path / "cache", progress=False, **kwargs)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("limit, shown", [(0, "0"), (-1, "-1"), ("x", "'x' (str)"), (2.5, "2.5 (float)"),
                                         (True, "True (bool)")])
def test_run_refuses_a_limit_that_is_not_a_positive_int_before_any_work(tmp_path, limit, shown):
    """A review: limit=0 ran the whole suite, -1 blamed a metric, 'x' was a raw TypeError, 2.5 trained the model
    for minutes and then failed with a raw TypeError."""
    from faithbench.runner.errors import UsageError

    with pytest.raises(UsageError, match=rf"^run: limit: expected a positive number of samples \(an int >= 1\), "
                                         rf"got {re.escape(shown)}$"):
        faithbench.run(TINY, out_dir=tmp_path / "out", cache=tmp_path / "cache", progress=False, limit=limit)
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def _tiny_model(train: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                torch.nn.Dropout(0.5), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(4, 2))
    return model.train(train)


def test_a_metric_call_hands_the_model_back_in_its_own_modes():
    from faithbench.metrics.base import EvalContext, ForwardCounter

    model = _tiny_model(train=True)
    model[3].eval()  # one module's own mode, kept as it was
    x = torch.rand(2, 1, 16, 16)
    saliency = faithbench.create_explainer("saliency")(model, x, torch.tensor([0, 1]))
    for name in ("deletion_auc", "completeness", "faithfulness_correlation"):
        ctx = EvalContext(model, x, torch.tensor([0, 1]), torch.tensor([0, 1]), saliency, {}, ForwardCounter(model))
        value = faithbench.create_metric(name)(ctx).value
        assert value.shape == (2,) and ctx.predict.passes > 0
        # a review: ForwardCounter left the caller's model in eval mode
        assert model.training and model[1].training and not model[3].training, name


@pytest.mark.parametrize("x, target, expected", [
    (torch.rand(2, 1, 16, 16), 1, "expected target as a torch.Tensor of 2 class indices, shape (2,), got int"),
    (torch.rand(2, 1, 16, 16), [0, 1], "got list"),
    (torch.rand(2, 1, 16, 16).numpy(), torch.tensor([0, 1]),
     "expected x as a floating-point torch.Tensor, got ndarray"),
    ((torch.rand(2, 1, 16, 16) * 255).to(torch.uint8), torch.tensor([0, 1]), "got a torch.uint8 tensor"),
])
def test_an_explainer_names_the_argument_a_notebook_user_passed_wrongly(x, target, expected):
    with pytest.raises(TypeError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        faithbench.create_explainer("saliency")(_tiny_model(train=False), x, target)


def test_an_explainer_that_needs_gradients_is_refused_inside_inference_mode():
    model, x = _tiny_model(train=False), torch.rand(2, 1, 16, 16)
    with torch.inference_mode(), pytest.raises(RuntimeError, match=r"outside torch.inference_mode\(\)"):
        faithbench.create_explainer("saliency")(model, x, torch.tensor([0, 1]))
    with torch.inference_mode():  # no gradients needed: allowed
        assert faithbench.create_explainer("random")(model, x, torch.tensor([0, 1])).shape == (2, 16, 16)


def test_a_metric_refuses_a_bool_map_and_a_non_tensor_target():
    from faithbench.metrics.base import EvalContext, ForwardCounter

    model, x = _tiny_model(train=False), torch.rand(2, 1, 16, 16)
    masks = {"lesion": torch.zeros(2, 16, 16, dtype=torch.bool)}
    masks["lesion"][:, 4:8, 4:8] = True
    metric = faithbench.create_metric("relevance_mass")
    with pytest.raises(TypeError, match="expected saliency as a floating-point torch.Tensor, got a torch.bool tensor"):
        metric(EvalContext(model, x, torch.tensor([0, 1]), torch.tensor([0, 1]), x[:, 0] > 0.5, masks,
                           ForwardCounter(model)))
    with pytest.raises(TypeError, match="expected target as a torch.Tensor of 2 class indices"):
        metric(EvalContext(model, x, 1, torch.tensor([0, 1]), x[:, 0], masks, ForwardCounter(model)))


def test_a_nan_image_and_a_target_past_the_outputs_are_refused():
    # a held-out review: a NaN image (NaN logits) got a finite saliency map and a max_sensitivity of 0.252; a
    # target past the model's outputs, with no class names in the context, was a raw torch RuntimeError
    from faithbench.metrics.base import EvalContext, ForwardCounter

    model, x = _tiny_model(train=False), torch.rand(2, 1, 16, 16)
    bad = x.clone()
    bad[0, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="saliency: x contains NaN or Inf; expected finite images"):
        faithbench.create_explainer("saliency")(model, bad, torch.tensor([0, 1]))
    saliency = torch.rand(2, 16, 16)
    for name in ("max_sensitivity", "deletion_auc", "sparseness"):
        ctx = EvalContext(model, bad, torch.tensor([0, 1]), torch.tensor([0, 1]), saliency, {}, ForwardCounter(model))
        with pytest.raises(ValueError, match=f"{name}: x contains NaN or Inf"):
            faithbench.create_metric(name)(ctx)
    n_out = model(x).shape[1]
    for name in ("saliency", "integrated_gradients", "gradcam"):  # a diff review: explainers too
        with pytest.raises(ValueError, match=f"{name}: target class {n_out} is past the model's {n_out} outputs"):
            faithbench.create_explainer(name)(model, x, torch.tensor([0, n_out]))
    ctx = EvalContext(model, x, torch.tensor([0, n_out]), torch.tensor([0, 1]), saliency, {}, ForwardCounter(model))
    with pytest.raises(ValueError, match=f"target class {n_out} is past the model's {n_out} outputs; expected class "
                                         f"indices 0 to {n_out - 1}"):
        faithbench.create_metric("deletion_auc", steps=4)(ctx)


def test_run_leaves_the_callers_random_streams_as_they_were(tmp_path):
    """A review: after `torch.manual_seed(123)` and a run, torch's next draw was the run's (0.573), not 0.296."""
    import random

    import numpy as np

    torch.manual_seed(123), np.random.seed(123), random.seed(123)
    expected = torch.rand(3), np.random.rand(3), random.random()
    torch.manual_seed(123), np.random.seed(123), random.seed(123)
    faithbench.run(TINY, out_dir=tmp_path / "out", cache=tmp_path / "cache", limit=2, progress=False, report=False,
                   log=lambda _line: None)
    assert torch.equal(torch.rand(3), expected[0]) and np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]


@pytest.mark.parametrize("call, message", [
    (lambda out: faithbench.run(5, out_dir=out), "run: suite expects a path, a built-in suite name, a dict or a "
                                                 "Suite, got int"),
    (lambda out: faithbench.run(None, out_dir=out), "run: suite expects a path, a built-in suite name, a dict or a "
                                                    "Suite, got NoneType"),
    (lambda out: faithbench.run(TINY, out_dir=42), "run: out_dir expects a folder (a str or a path) or None, got int"),
    (lambda out: faithbench.run(TINY, out_dir=out, cache=3), "run: cache expects a folder (a str or a path), a Cache "
                                                             "or None, got int"),
    (lambda out: faithbench.run(TINY, out_dir=out, log=3), "run: log expects a callable taking each log line "
                                                           "(print, list.append) or None, got int"),
    (lambda out: faithbench.load_suite(3), "load_suite: suite expects a path, a built-in suite name or a dict, "
                                           "got int"),
    (lambda out: faithbench.list_metrics(3), "list_metrics: pattern expects a shell-style pattern"),
])
def test_a_wrong_argument_type_is_a_type_error_naming_the_parameter(tmp_path, call, message):
    """A review: each gave "expected str, bytes or os.PathLike object, not int", naming neither the parameter nor
    what it takes; log=3 was accepted and failed at the run's first log line."""
    with pytest.raises(TypeError, match=f"^{re.escape(message)}"):
        call(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_models_warnings_go_to_the_log_callable_when_one_is_given(tmp_path, capsys):
    """A review: "model at chance" and "model predicts one class" went to stderr past `log=lines.append`."""
    lines: list[str] = []
    faithbench.run(TINY, out_dir=tmp_path / "out", cache=tmp_path / "cache", limit=2, progress=False, log=lines.append)
    warned = [line for line in lines if line.startswith(("model at chance:", "model predicts one class:"))]
    assert warned and not any(line in capsys.readouterr().err for line in warned)


def test_the_errors_a_run_raises_import_from_faithbench_without_importing_torch():
    """A review: SuiteError, UsageError, OutputInUseError, InputDataError and CheckpointError could not be imported
    from `faithbench`, and docs/api.md named only SuiteError."""
    from faithbench.config import SuiteError as config_suite_error
    from faithbench.runner.errors import OutputInUseError, UsageError

    assert faithbench.SuiteError is config_suite_error and faithbench.UsageError is UsageError
    assert issubclass(faithbench.OutputInUseError, RuntimeError) and faithbench.OutputInUseError is OutputInUseError
    assert all(issubclass(getattr(faithbench, name), ValueError)
               for name in ("SuiteError", "UsageError", "InputDataError", "CheckpointError", "ParameterError"))
    assert issubclass(faithbench.RegistryError, KeyError) and callable(faithbench.build_report)
    assert {"SuiteError", "CacheWriteError", "RunResult", "build_report"} <= set(faithbench.__all__)
    code = "import sys, faithbench; print('torch' in sys.modules, 'pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "False"], out.stderr


@pytest.mark.parametrize("call, message", [
    (lambda: faithbench.create_dataset("phantom_cxr", split="tset"),
     "phantom_cxr: split expects 'train', 'val' or 'test', got 'tset'"),
    (lambda: faithbench.create_dataset("phantom_cxr", sise=3), "phantom_cxr: unknown parameter 'sise'; valid "
                                                               "parameters: n, size,"),
    (lambda: faithbench.create_model("small_cnn", in_chans=1, num_classes=2, input_size=(64, 64), widht=3),
     "small_cnn: unknown parameter 'widht'; valid parameters: width, depth, pool"),
    (lambda: faithbench.create_model("small_cnn", in_chans=1, num_classes=2, input_size=(64, 64), width="x"),
     "small_cnn.width: expected int, got str 'x'"),
    (lambda: faithbench.create_model("small_cnn", in_chans=1, num_classes=0, input_size=(64, 64)),
     "small_cnn: num_classes expects an int >= 1, got 0"),
    (lambda: faithbench.create_model("small_cnn", in_chans=1, num_classes=2, input_size=64),
     "small_cnn: input_size expects the spatial size, 2 or 3 ints >= 1 such as (64, 64), got 64"),
])
def test_create_dataset_and_model_check_their_parameters_as_create_metric_does(call, message):
    """A review: a bad split was a bare KeyError, an unknown parameter a raw TypeError, num_classes=0 built a
    model with no outputs, input_size=64 "'int' object is not iterable"."""
    from faithbench.configurable import ParameterError

    with pytest.raises(ParameterError, match=f"^{re.escape(message)}"):
        call()


@pytest.mark.parametrize("call, message", [
    (lambda: faithbench.create_metric(5), "create_metric: name expects a registered metric name (a str such as "
                                          "'deletion_auc'), got int"),
    (lambda: faithbench.create_explainer(None), "create_explainer: name expects a registered explainer name (a str "
                                                "such as 'gradcam'), got NoneType"),
    (lambda: faithbench.create_dataset(["phantom_cxr"]), "create_dataset: name expects a registered dataset name"),
    (lambda: faithbench.create_model(3.0, in_chans=1, num_classes=2, input_size=(8, 8)),
     "create_model: name expects a registered model name (a str such as 'small_cnn'), got float"),
    (lambda: faithbench.list_explainers(None), "list_explainers: pattern expects a shell-style pattern"),
    (lambda: faithbench.registry.metrics.get(5), "metric name expects a str, got int"),
])
def test_a_factory_given_a_name_that_is_not_a_str_says_name_expects_a_str(call, message):
    """A held-out review: `create_metric(5)` and `create_explainer(None)` were a bare AttributeError
    "'int' object has no attribute 'lower'" from the did-you-mean lookup."""
    with pytest.raises(TypeError, match=f"^{re.escape(message)}"):
        call()


def test_report_false_logs_the_model_warnings_once_and_models_has_the_files_columns(tmp_path, capsys):
    """A held-out review: `run(report=False)` sent no "model at chance" / "model predicts one class" to `log`
    (only build_report did, later, to stderr), and `RunResult.models` lacked models.csv's `auc_exact_p`."""
    import io

    import pandas as pd

    tables, full = [], []
    result = faithbench.run(TINY, out_dir=tmp_path / "tables", cache=tmp_path / "cache", limit=2, progress=False,
                            report=False, log=tables.append)
    faithbench.run(TINY, out_dir=tmp_path / "full", cache=tmp_path / "cache", limit=2, progress=False, log=full.append)
    kinds = ("model at chance:", "model predicts one class:")
    warned = [line for line in tables if line.startswith(kinds)]
    assert warned and warned == [line for line in full if line.startswith(kinds)]  # the same, each once
    assert len(set(warned)) == len(warned) and not any(line in capsys.readouterr().err for line in warned)
    assert not (tmp_path / "tables" / "index.html").exists()
    file = pd.read_csv(tmp_path / "tables" / "models.csv")
    assert list(result.models.columns) == list(file.columns) and "auc_exact_p" in result.models.columns
    assert result.models["auc_exact_p"].isna().all() == file["auc_exact_p"].isna().all()
    pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(result.models.to_csv(index=False))), file)
