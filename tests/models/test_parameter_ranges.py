"""Every numeric parameter of a built-in model outside its range is refused when it is built, so by
``faithbench validate`` (which builds each model on the meta device): exit 2, one line naming the
parameter, its range and the value; before, most of these built and failed at the first forward."""

import textwrap

import pytest
import torch

from faithbench.cli import main
from faithbench.models import build_model


@pytest.mark.parametrize("name, size, params, message", [
    ("small_cnn", (32, 32), {"width": 0}, "small_cnn: expected width >= 1, got 0"),
    ("small_cnn", (32, 32), {"depth": 0}, "small_cnn: expected depth >= 1, got 0"),
    ("small_cnn", (4, 4), {"depth": 4}, r"small_cnn: expected depth in \[1, 3\] for an input of \(4, 4\) \(each "
                                        r"of the first depth - 1 blocks halves the grid: an input of at least "
                                        r"2\^\(depth - 1\) on every axis\), got 4$"),
    ("small_cnn", (16, 16, 2), {"depth": 3}, r"expected depth in \[1, 2\] for an input of \(16, 16, 2\) .*, got 3$"),
    # a fuzzing review (clifuzz5 F2): depth 1e12 computed 2 ** (depth - 1) for minutes, depth 100000 printed it
    ("small_cnn", (32, 32), {"depth": 10**12}, r"expected depth in \[1, 6\] for an input of \(32, 32\) .*, "
                                              r"got 1000000000000$"),
    ("small_cnn", (32, 32), {"depth": 100_000}, r"expected depth in \[1, 6\] .*, got 100000$"),
    ("vit_tiny", (64, 64), {"depth": 0}, "vit_tiny: expected depth >= 1, got 0"),
    ("vit_tiny", (64, 64), {"num_heads": 0}, "vit_tiny: expected num_heads >= 1, got 0"),
    ("vit_tiny", (64, 64), {"num_heads": 5}, "vit_tiny: expected embed_dim divisible by num_heads .*got embed_dim "
                                             "96 and num_heads 5"),
    ("vit_tiny", (64, 64), {"embed_dim": 2, "num_heads": 1}, r"vit_tiny: expected embed_dim >= 4 \(the conv stem"),
    ("vit_tiny", (64, 64), {"stem": "patch", "patch_size": 100}, r"expected patch_size in \[1, 64\] .*got 100"),
    ("vit_tiny", (64, 64), {"stem": "patch", "patch_size": 0}, r"expected patch_size in \[1, 64\]"),
    ("vit_tiny", (64, 64), {"patch_size": 4}, r"vit_tiny: the conv stem \(stem: conv, the default\) makes 8 x 8 "
                                              r"patches, so patch_size must be 8, got 4; set stem: patch"),
    ("vit_tiny", (64, 64), {"drop_rate": 1.0}, r"vit_tiny: expected drop_rate in \[0, 1\), got 1.0"),
    ("resnet18", (64, 64), {"drop_rate": 1.5}, r"resnet18: expected drop_rate in \[0, 1\), got 1.5"),
    ("resnet18_3d", (16, 16, 16), {"widen_factor": 0.01}, r"expected widen_factor >= 0.015625 \(.*\), got 0.01"),
    ("resnet18_3d", (16, 16, 16), {"conv1_t_stride": 0}, "expected conv1_t_stride >= 1, got 0"),
    ("resnet18_3d", (16, 16, 16), {"conv1_t_size": 0}, "expected conv1_t_size >= 1, got 0"),
    ("temporal_mlp", (3, 32, 32), {"hidden": 0}, "temporal_mlp: expected hidden >= 1, got 0"),
    ("temporal_gru", (3, 32, 32), {"dropout": 1.0}, r"temporal_gru: expected dropout in \[0, 1\), got 1.0"),
    ("temporal_mlp", (3, 32, 32), {"backbone_params": {"width": 0}}, "small_cnn: expected width >= 1, got 0"),
])
def test_out_of_range_model_parameter(name, size, params, message):
    with pytest.raises(ValueError, match=message), torch.device("meta"):
        build_model(name, 1, 2, size, **params)


def test_in_range_values_still_build():
    with torch.device("meta"):
        assert build_model("small_cnn", 1, 2, (4, 4), width=1, depth=3).head.in_features == 4
        assert build_model("small_cnn", 1, 2, (32, 33), width=1, depth=6).head.in_features == 32  # 32 = 2^5
        assert build_model("vit_tiny", 1, 2, (64, 64), embed_dim=4, num_heads=2, depth=1).embed_dim == 4
        assert build_model("vit_tiny", 1, 2, (64, 64), stem="patch", patch_size=64).patch_embed.grid_size == (1, 1)
        assert build_model("resnet18_3d", 1, 2, (16, 16, 16), widen_factor=1 / 64).fc.in_features == 8
        assert build_model("temporal_gru", 1, 2, (3, 32, 32), hidden=1, dropout=0.0,
                           backbone_params={"width": 2, "depth": 2}).head.out.in_features == 1


def test_validate_refuses_a_model_that_cannot_be_built(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(textwrap.dedent("""
        name: bad
        datasets: [{name: phantom_cxr, params: {n: 8}}]
        models: [{name: small_cnn, params: {width: 0}, recipe: default}]
        explainers: [saliency]
        metrics: [deletion_auc]
    """))
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "models[0].params" in err and "small_cnn: expected width >= 1, got 0" in err
