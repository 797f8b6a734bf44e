"""CLI hardening: broken plugins, signals, --quiet, --debug placement, exit codes (issue 17)."""

from __future__ import annotations

import pytest

from faithbench.cli import main
from faithbench.registry import RegistryError, explainers


@pytest.fixture
def broken_plugin():
    explainers.register_lazy("zz_broken", "no_such_module_fb17:Thing", origin="entry-point:brokenpkg")
    yield "zz_broken"
    explainers.unregister("zz_broken")


def test_broken_entry_point_is_named_and_list_goes_on(broken_plugin, capsys):
    assert main(["list", "explainers"]) == 0
    captured = capsys.readouterr()
    names = [line.split()[0] for line in captured.out.strip().splitlines()]
    assert {"gradcam", "random", "zz_broken"} <= set(names)
    assert any(line.startswith("zz_broken ") and line.endswith("[broken plugin]") for line in captured.out.splitlines())
    assert "explainer 'zz_broken' (entry-point:brokenpkg, no_such_module_fb17:Thing) cannot be loaded: " \
           "ModuleNotFoundError" in captured.err
    with pytest.raises(RegistryError, match="explainer 'zz_broken'.*cannot be loaded"):
        explainers.get(broken_plugin)
