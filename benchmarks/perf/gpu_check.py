"""CPU-vs-GPU check of faithbench, for a machine with CUDA (run by gpu_check.sh, < 8 min).

1. Agreement: the results of a suite computed with ``--device cpu`` and ``--device cuda`` from the
   same checkpoints (the CPU run trains them; the CUDA run gets a copy of the checkpoints only, so
   it recomputes every map and score). Prints max |difference| per metric and the share of
   values that differ by more than the stated tolerance (1e-3).
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

import pandas as pd
import torch

TOLERANCE = 1e-3


def agreement(work: Path, suite: str, limit: int) -> None:
    runs = {}
    for device in ("cpu", "cuda"):
        cache = work / f"cache_{device}"
        if device == "cuda":
            shutil.copytree(work / "cache_cpu" / "checkpoints", cache / "checkpoints", dirs_exist_ok=True)
        out = work / f"out_{device}"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "faithbench.cli", "run", suite, "--out", str(out), "--cache", str(cache),
                        "--limit", str(limit), "--device", device, "--quiet"], check=True)
        print(f"{suite} --device {device}: {time.perf_counter() - start:.1f} s", flush=True)
        runs[device] = pd.read_csv(out / "results.csv")
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
        print(f"deletion+insertion / forwards: {figures['deletion+insertion (50 steps)'] / figures['their forwards']:.2f}")


if __name__ == "__main__":
    work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/tmp/faithbench_gpu_check")
    work.mkdir(parents=True, exist_ok=True)
    if not torch.cuda.is_available():
        sys.exit("gpu_check: CUDA is not available here; run this on a machine with a GPU")
    agreement(work, "quick", limit=16)
    speed()
