"""An explainer's ``dataset_reason`` hook written with the two parameters docs/plugins.md first gave
(``masks, spatial_dims``) is honoured, and one that raises is a validate error (a held-out review: the
runner called it with a third argument, every cell failed with a TypeError, and validate said ok)."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from torch import Tensor, nn

from faithbench.cli import main
from faithbench.explainers import Explainer
from faithbench.explainers.base import call_dataset_reason
from faithbench.registry import explainers
from faithbench.types import MaskRole


class NeedsMaskA(Explainer):
    """Runs only where the samples carry a mask 'a' (the two-parameter hook)."""

    def dataset_reason(self, masks, spatial_dims):  # noqa: ANN001, ANN201 - as a plugin writes it
        return None if "a" in masks else f"needs a mask 'a' ({spatial_dims}D)"

    def explain(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        return x.sum(1)


class RaisingHook(Explainer):
    """A hook with a bug."""

    def dataset_reason(self, masks, spatial_dims, roles=None):  # noqa: ANN001, ANN201
        raise KeyError("valid")

    def explain(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        return x.sum(1)


@pytest.fixture
def hook_plugins():
    explainers.register("test_needs_a")(NeedsMaskA)
    explainers.register("test_raising_hook")(RaisingHook)
    try:
        yield
    finally:
        explainers.unregister("test_needs_a")
        explainers.unregister("test_raising_hook")


def test_the_hook_gets_the_arguments_its_signature_takes():
    roles = {"pad": MaskRole.VALIDITY}
    assert call_dataset_reason(NeedsMaskA(), {"lesion"}, 2, roles) == "needs a mask 'a' (2D)"
    assert call_dataset_reason(NeedsMaskA(), {"a"}, 3, roles) is None

    class Roles(NeedsMaskA):
        def dataset_reason(self, masks, spatial_dims, roles=None):  # noqa: ANN001, ANN201
            return f"{sorted(masks)} {spatial_dims} {roles}"

    class Star(NeedsMaskA):
        def dataset_reason(self, *args):  # noqa: ANN002, ANN201
            return f"{len(args)} arguments"

    assert call_dataset_reason(Roles(), {"a"}, 2, roles) == f"['a'] 2 {roles}"
    assert call_dataset_reason(Star(), {"a"}, 2, roles) == "3 arguments"
    # the built-ins take roles: a padding mask with the validity role is temporal_occlusion's 'valid'
    assert call_dataset_reason(explainers.get("temporal_occlusion")(), {"pad"}, 3, roles) is None
    assert "a volume?" in call_dataset_reason(explainers.get("temporal_occlusion")(), {"pad"}, 3, None)


def _suite(tmp_path, names: str):
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({
        "name": "hooks", "samples": 8, "batch_size": 8, "reliability": 0,
        "datasets": [{"name": "phantom_cxr", "params": {"n": 32, "size": 32}}],
        "models": [{"name": "small_cnn", "params": {"width": 4}, "recipe": {"epochs": 1, "batch_size": 32}}],
        "explainers": names.split(), "metrics": [{"name": "deletion_auc", "params": {"steps": 4}}]}))
    return path


def test_validate_warns_of_a_two_parameter_hook_and_the_run_skips_its_cell(tmp_path, capsys, hook_plugins):
    suite = _suite(tmp_path, "test_needs_a random")
    assert main(["validate", str(suite)]) == 0
    err = capsys.readouterr().err
    assert "explainers[0] 'test_needs_a' does not support model 'small_cnn' on dataset 'phantom_cxr': needs a " \
           "mask 'a' (2D); the run skips that cell" in err
    out = tmp_path / "out"
    code = main(["run", str(suite), "--out", str(out), "--cache", str(tmp_path / "cache"), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert not (out / "failures.csv").exists()
    skipped = pd.read_csv(out / "skipped.csv")
    row = skipped[skipped["cell"] == "phantom_cxr/small_cnn/test_needs_a/seed0"]
    assert list(row["reason"]) == ["needs a mask 'a' (2D)"]
    assert set(pd.read_csv(out / "results.csv")["explainer"]) == {"random"}


def test_a_hook_that_raises_is_a_validate_error(tmp_path, capsys, hook_plugins):
    assert main(["validate", str(_suite(tmp_path, "random test_raising_hook"))]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.endswith("suite.yaml: explainers[1] 'test_raising_hook': dataset_reason failed on dataset "
                        "'phantom_cxr': KeyError: 'valid'"), err
