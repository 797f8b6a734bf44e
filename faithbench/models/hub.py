"""Pretrained weights through each library's own hub client, and the offline error.

timm and ``hf-hub:`` models download through ``huggingface_hub`` into its cache (``HF_HOME``,
default ``~/.cache/huggingface``); torchvision weights through ``torch.hub`` into
``$TORCH_HOME/hub/checkpoints``. Offline (``HF_HUB_OFFLINE=1`` or ``FAITHBENCH_OFFLINE=1``) a
model whose weights are not in that cache fails at once, before anything is trained, with one
line that names the model and how to provide the weights. Online, a failed download (no
network) gives the same one line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, TypeVar

from faithbench.datasets.paths import downloads_allowed, env_true
from faithbench.models.errors import CheckpointError

T = TypeVar("T")


class PretrainedUnavailableError(CheckpointError):
    """Pretrained weights that cannot be had here (offline and not cached, or no network)."""


def offline() -> bool:
    """``HF_HUB_OFFLINE`` or ``FAITHBENCH_OFFLINE`` set to 1/true/yes/on (any case), read as the datasets read it."""
    return env_true("HF_HUB_OFFLINE") or not downloads_allowed()


def hf_cache_dir() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def torch_cache_dir() -> str:
    import torch

    return str(Path(torch.hub.get_dir()) / "checkpoints")


def hf_cached(repo_id: str, filenames: tuple[str, ...] = ("model.safetensors", "pytorch_model.bin")) -> bool:
    """Whether ``repo_id`` (``repo`` or ``repo@revision``) has a weights file in the hub cache."""
    from huggingface_hub import try_to_load_from_cache

    repo, _, revision = repo_id.partition("@")
    return any(isinstance(try_to_load_from_cache(repo, f, revision=revision or None), str) for f in filenames)


def timm_weights_cached(pretrained_cfg: Any) -> tuple[bool, str]:
    """``(cached, where)`` for a timm ``PretrainedCfg``: its hub repo, else its URL's file."""
    hub_id = getattr(pretrained_cfg, "hf_hub_id", None)
    if hub_id:
        filename = getattr(pretrained_cfg, "hf_hub_filename", None)
        names = (filename,) if filename else ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")
        return hf_cached(hub_id, names), f"hf-hub {hub_id} (cache {hf_cache_dir()})"
    url = getattr(pretrained_cfg, "url", "") or ""
    path = Path(torch_cache_dir()) / os.path.basename(url)
    return bool(url) and path.exists(), f"{url} (cache {torch_cache_dir()})"


def unavailable(label: str, where: str, how: str, reason: str) -> PretrainedUnavailableError:
    """The one-line error: which model, which weights, why, and how to provide them (``how``: advice
    that fits the entry, :func:`faithbench.models.factory.check_pretrained_available`)."""
    return PretrainedUnavailableError(f"model {label!r}: pretrained weights {where} are not available ({reason}); "
                                      f"{how}")


def local_advice(source: str, spec: Any) -> str:
    """The offline alternatives that fit the entry, each as ", or ...": a ``weights`` file only where the
    entry may have one (not with a recipe or replace_head; under a hub name, for a ``timm:`` architecture),
    a ``local-dir:`` folder for timm networks (a review: an entry with a recipe was told to add weights:,
    which is a suite error, and hf-hub: names were never told of local-dir:)."""
    folder = ("where there is a network save it with timm.models.save_for_hf(model, '<folder>', "
              "safe_serialization=True) and name the entry 'local-dir:<folder>' (the offline twin of hf-hub:)")
    weights = "replace 'pretrained: true' with 'weights: <file.safetensors>' (a local weights file)"
    if source == "hf-hub":
        weights = "name the architecture 'timm:<arch>' with 'weights: <file.safetensors>' (a local weights file)"
    trains = spec.recipe is not None or spec.replace_head
    options = ([] if source == "torchvision" else [folder]) + ([] if trains else [weights])
    return "".join(f", or {option}" for option in options)


def offline_reason() -> str:
    return "offline: HF_HUB_OFFLINE/FAITHBENCH_OFFLINE is set and they are not in the cache"


def fetch(label: str, where: str, how: str, load: Callable[[], T]) -> T:
    """Run ``load`` (a library call that may download); a download failure becomes the one-line
    :class:`PretrainedUnavailableError` (any other error passes through)."""
    try:
        return load()
    except Exception as exc:  # hub clients raise many types: sort out the network ones
        if _is_download_error(exc):
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise unavailable(label, where, how, f"download failed: {type(exc).__name__}: {first[:200]}") from None
        raise


def _is_download_error(exc: BaseException) -> bool:
    import urllib.error

    module = type(exc).__module__ or ""
    if module.startswith(("huggingface_hub", "requests", "urllib3", "httpx", "httpcore")):
        return True
    return isinstance(exc, (urllib.error.URLError, ConnectionError, TimeoutError))


__all__ = ["PretrainedUnavailableError", "offline", "hf_cached", "timm_weights_cached", "unavailable", "fetch",
           "local_advice", "hf_cache_dir", "torch_cache_dir", "offline_reason"]
