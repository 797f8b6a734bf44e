"""manifest.json's ``plugin_packages``: the code identity of every piece that is yours (a held-out review,
plugins9: an edited plugin dataset or model builder retrained everything, as it should, while the two runs'
manifests were the same, naming the code of explainers and metrics only)."""

from __future__ import annotations

import importlib
import sys

from faithbench.config import suite_from_dict
from faithbench.configurable import package_version
from faithbench.datasets.base import Dataset
from faithbench.models.factory import builder_package
from faithbench.registry import datasets
from faithbench.runner.output import plugin_packages

PLUGIN = '''
from faithbench.datasets.phantoms import PhantomCXR
from faithbench.models.architectures import small_cnn


class MyData(PhantomCXR):
    """A plugin dataset."""


def my_net(in_chans, num_classes, input_size):
    return small_cnn(in_chans, num_classes, input_size, width=4, depth=2)
'''


def test_plugin_packages_names_your_datasets_and_models(tmp_path, monkeypatch):
    (tmp_path / "zz_manifest_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "zz_manifest_plugin", raising=False)
    module = importlib.import_module("zz_manifest_plugin")
    datasets.register("zz_my_data")(module.MyData)
    try:
        suite = suite_from_dict({
            "name": "t", "samples": 2,
            "datasets": [{"name": "zz_my_data", "params": {"n": 40, "size": 32}}, {"name": "phantom_cxr"}],
            "models": [{"name": "zz_manifest_plugin:my_net", "recipe": {"epochs": 1}},
                       {"name": "small_cnn", "recipe": {"epochs": 1}}],
            "explainers": ["saliency"], "metrics": ["pointing_game"]})
        packages = plugin_packages(suite)
        dataset_key = module.MyData(n=40, size=32).spec()["package"]  # what the dataset's cache keys hold
        assert isinstance(module.MyData(n=40, size=32), Dataset)
        assert packages["datasets"] == {"zz_my_data": dataset_key} and dataset_key.startswith("source:")
        assert packages["models"] == {"zz_manifest_plugin:my_net": builder_package("zz_manifest_plugin:my_net")}
        assert packages["models"]["zz_manifest_plugin:my_net"].startswith(package_version("zz_manifest_plugin"))
        assert set(packages["explainers"]) == {"saliency"} and set(packages["metrics"]) == {"pointing_game"}
    finally:
        datasets.unregister("zz_my_data")
