import sys
import textwrap

import pytest

from faithbench.registry import Registry, RegistryError, explainers


def test_register_get_and_names():
    reg: Registry[type] = Registry("widgets")

    @reg.register("blue_widget")
    class Blue:
        pass

    assert reg.get("blue_widget") is Blue and Blue.registry_name == "blue_widget"
    assert reg.names("blue*") == ["blue_widget"] and "blue_widget" in reg


def test_duplicate_raises():
    reg: Registry[type] = Registry("widgets")
    reg.register("a")(type("A", (), {}))
    with pytest.raises(RegistryError, match="duplicate widget name 'a'"):
        reg.register("a")(type("B", (), {}))


def test_unknown_did_you_mean_and_valid_names():
    with pytest.raises(RegistryError) as info:
        explainers.get("gradcm")
    msg = str(info.value)
    assert "unknown explainer 'gradcm'" in msg and "did you mean 'gradcam'" in msg
    assert "valid names:" in msg and "integrated_gradients" in msg


def test_entry_point_plugin(tmp_path, monkeypatch):
    """A third-party package registers through the entry-point group faithbench.<kind>."""
    pkg = tmp_path / "my_plugin"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent("""
        class Constant:
            def __call__(self, model, x, target):
                return x.mean(1)
    """))
    dist = tmp_path / "my_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[faithbench.explainers]\nconstant_map = my_plugin:Constant\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg: Registry[type] = Registry("explainers")
    assert "constant_map" in reg.names()
    assert "my_plugin" not in sys.modules  # lazy until first use
    cls = reg.get("constant_map")
    assert cls.__name__ == "Constant" and reg.origin("constant_map") == "entry-point:my-plugin"


def test_public_listing_api():
    import faithbench

    assert "gradcam" in faithbench.list_explainers("*cam*")
    assert "deletion_auc" in faithbench.list_metrics()
    assert faithbench.list_datasets("phantom*") == ["phantom_cxr", "phantom_cxr_multilabel", "phantom_longitudinal",
                                                    "phantom_organ3d"]
    assert {"resnet18", "vit_tiny", "small_cnn"} <= set(faithbench.list_models())
