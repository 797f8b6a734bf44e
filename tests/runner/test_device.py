"""Device plumbing, checked on the CPU: where things run, what leaves the device, out of memory.

This machine has no GPU, so the checks use doubles: a torch function mode that records every
copy from the device to the host (``.cpu()``, ``.numpy()``, ``.tolist()``, ``.item()``,
``.to("cpu")``) while a metric runs, and a model that raises the CUDA out-of-memory error above
a batch size. ``benchmarks/perf/gpu_check.sh`` runs the same suites on a real GPU.
"""

import json

import pytest
import torch
from torch.overrides import TorchFunctionMode

import faithbench
from faithbench.cli import main
from faithbench.metrics.base import EvalContext, ForwardCounter
from faithbench.runner.errors import UsageError
from faithbench.runner.settings import resolve_device

HOST_COPIES = {"cpu", "numpy", "tolist", "item"}


class HostCopies(TorchFunctionMode):
    """Counts the calls that bring a tensor from its device to the host: ``.cpu()``, ``.numpy()``,
    ``.tolist()``, ``.item()`` and ``.to("cpu")`` written out."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in HOST_COPIES:
            self.calls.append(name)
        elif name == "to":  # a hard-coded host device; .to(x.device) follows the model wherever it is
            target = kwargs.get("device", args[1] if len(args) > 1 else None)
            if isinstance(target, str) and torch.device(target).type == "cpu":
                self.calls.append("to(cpu)")
        return func(*args, **kwargs)


def _context(steps_model_seed=0):
    torch.manual_seed(steps_model_seed)
    model = faithbench.create_model("small_cnn", in_chans=1, num_classes=2, input_size=(32, 32), width=4).eval()
    x = torch.rand(4, 1, 32, 32)
    saliency = torch.rand(4, 32, 32)
    return EvalContext(model=model, x=x, target=torch.tensor([0, 1, 1, 0]), label=torch.tensor([0, 1, 1, 0]),
                       saliency=saliency, masks={"lesion": torch.rand(4, 32, 32) > 0.8},
                       predict=ForwardCounter(model))


def test_the_double_sees_a_host_copy():
    with HostCopies() as seen:
        torch.ones(3).cpu()
        torch.ones(3).to("cpu")
        torch.ones(3).to(torch.float64)  # a dtype change stays on the device
    assert seen.calls == ["cpu", "to(cpu)"]


@pytest.mark.parametrize("name", ["deletion_auc", "insertion_auc", "morf_aopc", "pointing_game", "relevance_mass"])
def test_a_metric_does_not_copy_to_the_host_per_step(name):
    """Host copies do not grow with the number of perturbation steps: the hot loop (building
    perturbed inputs, forwards, scores) stays on the model's device."""
    counts = {}
    for steps in (8, 32):
        params = {"steps": steps} if name in ("deletion_auc", "insertion_auc", "morf_aopc") else {}
        metric = faithbench.create_metric(name, **params)
        ctx = _context()
        with HostCopies() as seen:
            out = metric(ctx)
        assert out.value.device == ctx.x.device
        counts[steps] = len(seen.calls)
    # a scalar or two per call, never per step, and the images' bytes once for the per-image tie-break seeds
    # (faithbench.seeds.row_generators: morf_aopc 3, its ranks' sizes and a scalar besides)
    assert counts[8] == counts[32] and counts[8] <= 3, counts


class _OutOfMemoryAbove(torch.nn.Module):
    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit, self.linear = limit, torch.nn.Linear(3, 2)

    def forward(self, x):
        if len(x) > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.linear(x)


def test_forward_halves_its_chunk_on_out_of_memory_and_keeps_the_result():
    model = _OutOfMemoryAbove(limit=40)
    x = torch.randn(300, 3)
    counter = ForwardCounter(model, max_batch=256)
    out = counter(x)
    assert torch.allclose(out, model.linear(x))
    assert (counter.max_batch, counter.halvings, counter.passes) == (32, 3, 300)  # 256 -> 128 -> 64 -> 32
    counter(x)  # the smaller chunk is kept
    assert counter.halvings == 3
    with pytest.raises(torch.OutOfMemoryError):
        ForwardCounter(_OutOfMemoryAbove(limit=0), max_batch=4)(x)


def test_devices_resolve_or_fail_with_a_clear_error():
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(UsageError, match="expected one of auto, cpu, cuda"):
        resolve_device("gpu")
    # helper 112: the metrics compute in float64 on the device, which MPS lacks: refused before training
    with pytest.raises(UsageError, match=r"^--device 'mps': not supported: .* float64, .*; use --device cpu$"):
        resolve_device("mps", "--device")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="CUDA is not available here"):
            resolve_device("cuda:1")
        # which setting asked for it (a held-out review): the command line or the suite
        from faithbench.config import suite_from_dict
        from faithbench.runner.settings import RunSettings

        suite = suite_from_dict({**TINY, "device": "cuda"})
        with pytest.raises(UsageError, match=r"^suite 'tiny_device': device 'cuda': CUDA is not available"):
            RunSettings.from_suite(suite)
        with pytest.raises(UsageError, match=r"^--device 'cuda:1': CUDA is not available"):
            RunSettings.from_suite(suite, device="cuda:1")
        # review 164: a suite read from a file is named by its file, as its other errors are
        suite = suite_from_dict({**TINY, "device": "cuda"}, source="own.yaml")
        with pytest.raises(UsageError, match=r"^own.yaml: device 'cuda': CUDA is not available.*; use device: cpu "
                                             r"\(or --device cpu, run\(device='cpu'\)\) or auto$"):
            RunSettings.from_suite(suite)


@pytest.mark.parametrize("device, message", [
    ("cuda:256", r"^suite.yaml: device: expected cuda:N with N in \[0, 127\] \(torch keeps a device index in 8 "
                 r"bits: a larger N names another device\), got 'cuda:256'$"),
    ("cuda:1000", r"expected cuda:N with N in \[0, 127\] .*, got 'cuda:1000'$"),
    ("cuda:128", r"expected cuda:N with N in \[0, 127\] .*, got 'cuda:128'$"),
    ("cpu:300", r"^suite.yaml: device: expected cpu or cpu:0 \(torch has one cpu device\), got 'cpu:300'$"),
    ("cpu:1", r"expected cpu or cpu:0 .*, got 'cpu:1'$"),
])
def test_a_device_index_torch_would_wrap_is_refused(monkeypatch, device, message):
    """A fuzzing review (clifuzz5 F3): torch keeps a device index in an int8, so cuda:256 ran on cuda:0 and
    cuda:1000 became cuda:-24, which passed the 'index < device_count()' check; cpu:300 read as cpu:44."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a machine with 1 GPU
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(UsageError, match=message):
        resolve_device(device, "suite.yaml: device")
    assert resolve_device("cuda:0") == "cuda:0" and resolve_device("cpu:0") == "cpu:0"
    with pytest.raises(UsageError, match=r"'cuda:127': only 1 CUDA device\(s\) visible"):
        resolve_device("cuda:127")


def test_a_loaded_suites_device_error_names_its_file_through_the_api(tmp_path):
    """Diff review 15: faithbench.run(load_suite(file)) re-validated the suite under '<Suite>', so its
    device error named '<Suite>' (before: the suite's name) where the file is known."""
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    import yaml

    import faithbench
    from faithbench.config import load_suite

    path = tmp_path / "own.yaml"
    path.write_text(yaml.safe_dump({**TINY, "device": "cuda"}))
    with pytest.raises(UsageError, match=rf"^{path}: device 'cuda': CUDA is not available"):
        faithbench.run(load_suite(path), out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before anything is written


TINY = {"name": "tiny_device", "samples": 4, "batch_size": 4,
        "datasets": [{"name": "phantom_cxr", "params": {"n": 32, "size": 32}}],
        "models": [{"name": "small_cnn", "params": {"width": 4}, "recipe": {"epochs": 1}}],
        "explainers": ["saliency", "random"], "metrics": [{"name": "deletion_auc", "params": {"steps": 4}}]}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error of a machine without CUDA")
def test_device_cuda_without_a_gpu_is_exit_2_before_any_training(tmp_path, capsys):
    import yaml

    suite = tmp_path / "s.yaml"
    suite.write_text(yaml.safe_dump(TINY))
    code = main(["run", str(suite), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"),
                 "--device", "cuda", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "CUDA is not available" in err[0]
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.safetensors"))


def test_the_manifest_records_the_device(tmp_path):
    from faithbench.store import Cache

    faithbench.run(faithbench.load_suite({**TINY, "device": "cpu"}), out_dir=tmp_path / "out",
                   cache=Cache(tmp_path / "cache"), progress=False, log=lambda m: None, report=False)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["device"] == "cpu" and manifest["suite"]["device"] == "cpu"
