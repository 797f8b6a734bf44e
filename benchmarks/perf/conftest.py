"""Prints the ratios the perf report asks for (medians of the paired benchmarks); the ``gray``
fixture that feeds the benchmarks' 1-channel (or 3-channel) images to a 3-channel network."""

from __future__ import annotations

import pytest
import torch


class Gray(torch.nn.Module):
    """A 3-channel network fed a 1-channel image (repeated; a 3-channel image as it is); on a GPU
    it waits for its kernels, so a timer around a forward measures the forward."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x.expand(-1, 3, *x.shape[2:]) if x.shape[1] == 1 else x)
        if out.is_cuda:
            torch.cuda.synchronize(out.device)
        return out


@pytest.fixture(scope="session")
def gray() -> type[Gray]:
    return Gray

PAIRS = {  # group: (ours, reference)
    "overhead": ("test_deletion_insertion", "test_bare_forward"),
    "vs_quantus (chunk 256)": ("test_our_deletion_224[256]", "test_quantus_pixel_flipping_224"),
    "vs_quantus (chunk 16)": ("test_our_deletion_224[16]", "test_quantus_pixel_flipping_224"),
    "max_sensitivity vs_quantus (1 draw per call)": ("test_our_max_sensitivity[1]", "test_quantus_max_sensitivity"),
    "max_sensitivity vs_quantus (10 draws per call)": ("test_our_max_sensitivity[10]",
                                                       "test_quantus_max_sensitivity"),
    "max_sensitivity overhead (1 draw per call)": ("test_our_max_sensitivity[1]", "test_bare_explanations"),
    "quantus max_sensitivity overhead": ("test_quantus_max_sensitivity", "test_bare_explanations"),
    # test_perf_faithfulness_extra.py: ours / floor, ours / Quantus
    "faithfulness_correlation / floor": ("test_ours_faithfulness_correlation", "test_floor_faithfulness_correlation"),
    "faithfulness_correlation / quantus": ("test_ours_faithfulness_correlation",
                                           "test_quantus_faithfulness_correlation"),
    "road_morf / floor": ("test_ours_road", "test_floor_road"),
    "road_morf / quantus": ("test_ours_road", "test_quantus_road"),
    "road_morf smooth saliency / floor": ("test_ours_road_smooth", "test_floor_road_smooth"),
    "road_morf smooth saliency / quantus": ("test_ours_road_smooth", "test_quantus_road_smooth"),
    "irof / floor": ("test_ours_irof", "test_floor_irof"),
    "irof / quantus": ("test_ours_irof", "test_quantus_irof"),
    "resnet50 pipeline over floor": ("test_resnet50_ours", "test_resnet50_floor"),
    "resnet50 gradcam vs pytorch-grad-cam": ("test_resnet50_ours_gradcam", "test_resnet50_pytorch_grad_cam"),
    "resnet50 IG vs captum": ("test_resnet50_ours_ig", "test_resnet50_captum_ig"),
    "resnet50 deletion vs quantus": ("test_resnet50_ours_deletion", "test_resnet50_quantus_pixel_flipping"),
}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    session = getattr(config, "_benchmarksession", None)
    if session is None or not getattr(session, "benchmarks", None):
        return
    medians = {b.name: b.stats.median for b in session.benchmarks if b.stats is not None and b.stats.data}
    terminalreporter.section("faithbench perf ratios (median / median)")
    for group, (ours, ref) in PAIRS.items():
        if ours in medians and ref in medians:
            terminalreporter.write_line(f"{group}: {ours} {medians[ours]:.4f}s / {ref} {medians[ref]:.4f}s "
                                        f"= {medians[ours] / medians[ref]:.3f}x")
    for b in session.benchmarks:
        if b.extra_info:
            terminalreporter.write_line(f"{b.name}: {b.extra_info}")
