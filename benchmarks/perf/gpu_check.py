"""CPU-vs-GPU check of faithbench, for a machine with CUDA (run by gpu_check.sh, < 10 min).

1. Agreement: the results of a suite computed with ``--device cpu`` and ``--device cuda`` from the
   same weights. A first CPU run (``--limit 1``) trains the suite's recipe checkpoints; each is
   exported as a weights file, and both devices then run suites whose models load those files
   (:func:`weights_suites`: one per dataset entry and seed, as a checkpoint is trained per dataset and
   seed), each device with a cache of its own, so each recomputes every map and score. A recipe
   checkpoint trained off the CPU is keyed by the device type (a review: the CUDA run of the
   copied CPU checkpoints retrained every model, and compared two different models); a weights
   file's key is the file's content, on every device. Prints max |difference| per metric and the
   share of values that differ by more than the stated tolerance (1e-3), and each step's time.
2. Speed at 224 px: a random-init timm ResNet-50, 4 images of 3x224x224: Grad-CAM, integrated
   gradients (32 steps) and deletion/insertion (50 steps) on each device, medians of 5 runs after
   a warm-up, and the bare forward/backward floor.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import yaml
from safetensors.torch import save_file

TOLERANCE = 1e-3


def weights_suites(suite: Any, models: pd.DataFrame, cache: Any, folder: Path) -> dict[str, dict[str, Any]]:
    """Suites (name -> mapping of suite keys) that compute what ``suite`` computes from the weights a run
    of it trained: one per (dataset entry, seed), its recipe models given ``weights:`` files written to
    ``folder`` from the checkpoints that ``models`` (the run's ``models.csv``) names in ``cache``. Labels
    are kept, so the rows of their results pair with the run's. Models with fixed weights (a file,
    pretrained) stay as they are: their keys hold no device. ``SystemExit`` for what it cannot export:
    a checkpoint missing from the cache, a pretrained network fine-tuned by a recipe (its input
    transform comes from the pretrained config), the permuted-label twin of ``data_randomization``."""
    from faithbench.runner.settings import RunSettings

    if RunSettings.from_suite(suite, device="cpu").needs_permuted:
        raise SystemExit(f"gpu_check: suite {suite.name!r} trains permuted-label twins (data_randomization), which "
                         "a weights file cannot stand for; leave that metric out")
    data = suite.model_dump(mode="json", exclude_unset=True)
    data.pop("device", None)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for dataset in data["datasets"]:
        label = dataset.get("alias") or dataset["name"]
        paired = dataset.get("models") or [m.get("alias") or m["name"] for m in data["models"]]
        for seed in suite.seeds:
            entries = []
            for model in data["models"]:
                name = model.get("alias") or model["name"]
                if name not in paired:
                    continue
                if "recipe" not in model:
                    entries.append(model)
                    continue
                if model.get("pretrained") or model.get("replace_head"):
                    raise SystemExit(f"gpu_check: model {name!r} fine-tunes pretrained weights; its exported "
                                     "weights would lose the pretrained input transform")
                rows = models[(models["dataset"] == label) & (models["model"] == name) & (models["seed"] == seed)]
                state = cache.get_tensors("checkpoints", str(rows["checkpoint"].iloc[0])) if len(rows) else None
                if state is None:
                    raise SystemExit(f"gpu_check: no trained checkpoint of {name!r} on {label!r} (seed {seed}) "
                                     f"in {cache.root}")
                path = folder / f"{label}__{name}__seed{seed}.safetensors"
                save_file({k: v.contiguous() for k, v in state.items()}, str(path))
                entries.append({k: v for k, v in model.items() if k != "recipe"} | {"weights": str(path.resolve())})
            out[f"{suite.name}__{label}__seed{seed}"] = {**data, "name": f"{suite.name}__{label}__seed{seed}",
                                                         "datasets": [dataset], "seeds": [seed], "models": entries}
    return out


def _run(suite: str | Path, out: Path, cache: Path, limit: int, device: str) -> None:
    subprocess.run([sys.executable, "-m", "faithbench.cli", "run", str(suite), "--out", str(out), "--cache", str(cache),
                    "--limit", str(limit), "--device", device, "--quiet"], check=True)


def agreement(work: Path, suite: str, limit: int) -> None:
    import faithbench
    from faithbench.store import Cache

    start = time.perf_counter()
    _run(suite, work / "out_train", work / "cache_train", 1, "cpu")
    print(f"{suite} --device cpu --limit 1, training its recipe checkpoints: {time.perf_counter() - start:.1f} s")
    suites = weights_suites(faithbench.load_suite(suite), pd.read_csv(work / "out_train" / "models.csv"),
                            Cache(work / "cache_train"), work / "weights")
    (work / "suites").mkdir(exist_ok=True)
    runs = {}
    for device in ("cpu", "cuda"):
        cache = work / f"cache_{device}"
        shutil.rmtree(cache, ignore_errors=True)  # a fresh cache: every map and score computed on this device
        frames = []
        start = time.perf_counter()
        for name, data in suites.items():
            path = work / "suites" / f"{name}.yaml"
            path.write_text(yaml.safe_dump(data, sort_keys=False))
            out = work / f"out_{device}" / name
            _run(path, out, cache, limit, device)
            frames.append(pd.read_csv(out / "results.csv"))
        print(f"{suite} from the exported weights, --device {device} --limit {limit}: "
              f"{time.perf_counter() - start:.1f} s (maps and scores, no training; {len(suites)} runs, each with "
              f"its process start and data loading)", flush=True)
        runs[device] = pd.concat(frames, ignore_index=True)
    keys = ["dataset", "model", "explainer", "metric", "seed", "sample_id"]
    both = runs["cpu"].merge(runs["cuda"], on=keys, suffixes=("_cpu", "_cuda"))
    both["diff"] = (both["value_cpu"] - both["value_cuda"]).abs()
    table = both.groupby("metric")["diff"].agg(max_abs="max", share_over_tol=lambda d: float((d > TOLERANCE).mean()))
    print(f"rows cpu {len(runs['cpu'])}, cuda {len(runs['cuda'])}, paired {len(both)}")
    print(table.to_string())


def _median(fn, repeats: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def speed() -> None:
    import faithbench
    import timm
    from faithbench.metrics.base import EvalContext, ForwardCounter

    for device in ("cpu", "cuda"):
        torch.manual_seed(0)
        model = timm.create_model("resnet50", pretrained=False, num_classes=2).eval().to(device)
        x = torch.rand(4, 3, 224, 224, device=device)
        target = torch.tensor([0, 1, 0, 1], device=device)
        gradcam = faithbench.create_explainer("gradcam")
        ig = faithbench.create_explainer("integrated_gradients", n_steps=32)
        saliency = gradcam(model, x, target)

        def floor() -> None:
            x.requires_grad_(True)
            model(x).gather(1, target[:, None]).sum().backward()
            x.requires_grad_(False)

        def perturbation() -> None:
            for name in ("deletion_auc", "insertion_auc"):
                ctx = EvalContext(model=model, x=x, target=target, label=target, saliency=saliency, masks={},
                                  predict=ForwardCounter(model))
                faithbench.create_metric(name, steps=50)(ctx)

        def forwards() -> None:  # the floor of deletion + insertion: 2 x 51 x 4 images
            with torch.inference_mode():
                for _ in range(2):
                    for i in range(0, 51 * 4, 64):
                        model(x.repeat(16, 1, 1, 1)[: min(64, 51 * 4 - i)])

        figures = {"forward+backward": _median(floor), "gradcam": _median(lambda: gradcam(model, x, target)),
                   "integrated_gradients (32 steps)": _median(lambda: ig(model, x, target)),
                   "deletion+insertion (50 steps)": _median(perturbation), "their forwards": _median(forwards)}
        print(f"--- {device} (resnet50, 4x3x224x224), median seconds of 5")
        for name, seconds in figures.items():
            print(f"{name:32s} {seconds:8.4f}")
        ratio = figures["deletion+insertion (50 steps)"] / figures["their forwards"]
        print(f"deletion+insertion / forwards: {ratio:.2f}")


if __name__ == "__main__":
    work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/tmp/faithbench_gpu_check")
    work.mkdir(parents=True, exist_ok=True)
    if not torch.cuda.is_available():
        sys.exit("gpu_check: CUDA is not available here; run this on a machine with a GPU")
    agreement(work, "quick", limit=16)
    speed()
