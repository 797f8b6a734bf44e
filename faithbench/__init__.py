"""faithbench: how faithful are saliency maps of medical-imaging classifiers?

Public API::

    import faithbench
    faithbench.list_explainers("*cam*")
    suite = faithbench.load_suite("quick")
    result = faithbench.run(suite, out_dir="reports/quick")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from faithbench import registry
from faithbench.registry import Registry, RegistryError

__version__ = "0.1.0"


def _plugins() -> None:
    from faithbench.config import ensure_plugins_loaded

    ensure_plugins_loaded()


def list_explainers(pattern: str = "*") -> list[str]:
    _plugins()
    return registry.explainers.names(pattern)


def list_metrics(pattern: str = "*") -> list[str]:
    _plugins()
    return registry.metrics.names(pattern)


def list_datasets(pattern: str = "*") -> list[str]:
    _plugins()
    return registry.datasets.names(pattern)


def list_models(pattern: str = "*") -> list[str]:
    _plugins()
    return registry.models.names(pattern)


def load_suite(suite: str | Path) -> Any:
    """Load and validate a suite: a YAML path or a built-in name (``quick``)."""
    from faithbench.config import load_suite as _load

    return _load(suite)


def run(suite: Any = "quick", out_dir: str | Path | None = None, **kwargs: Any) -> Any:
    """Run a suite (a :class:`~faithbench.config.Suite`, a YAML path or a built-in name)."""
    from faithbench.config import Suite
    from faithbench.runner.run import default_out_dir, run_suite

    if not isinstance(suite, Suite):
        suite = load_suite(suite)
    out = Path(out_dir) if out_dir is not None else default_out_dir(suite)
    return run_suite(suite, out, **kwargs)


__all__ = ["Registry", "RegistryError", "registry", "list_explainers",
           "list_metrics", "list_datasets", "list_models", "load_suite", "run", "__version__"]
