"""Content-addressed store for expensive artefacts (checkpoints, saliency maps, scores).

The ground floor: models, runner and reports import it; it imports nothing of faithbench.

A key is the hash of everything an artefact depends on (:func:`make_key`). Writes are atomic
(a temporary file in the same folder, then ``os.replace``), so a killed run loses at most the
artefact in flight. Every file carries a SHA-256 of its content; a corrupted or truncated file
is detected on read, reported with a warning, and treated as missing (recomputed).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save as st_save
from torch import Tensor

CACHE_ENV = "FAITHBENCH_CACHE"


class CacheCorruptionWarning(UserWarning):
    pass


def default_cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "faithbench"


def make_key(*parts: Any) -> str:
    """SHA-256 (first 24 hex digits) of the canonical JSON of ``parts``."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def tensors_digest(tensors: dict[str, Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_tensors(path: Path, tensors: dict[str, Tensor], metadata: dict[str, str] | None = None) -> None:
    """Write a standard safetensors file whose metadata holds the SHA-256 of its tensors."""
    meta = dict(metadata or {})
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    meta["sha256"] = tensors_digest(tensors)
    atomic_write_bytes(path, st_save(tensors, metadata=meta))


def load_tensors(path: Path, *, verify: bool = True) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Read a safetensors file; raise ``ValueError`` if it is truncated or its checksum differs."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise ValueError(f"{path}: unreadable safetensors file ({exc})") from exc
    if verify and "sha256" in meta and tensors_digest(tensors) != meta["sha256"]:
        raise ValueError(f"{path}: checksum mismatch")
    return tensors, meta


class Cache:
    """Artefacts under ``root/<kind>/<key[:2]>/<key>.<ext>``."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.hits = 0
        self.misses = 0

    def path(self, kind: str, key: str, ext: str) -> Path:
        return self.root / kind / key[:2] / f"{key}.{ext}"

    # -- tensors ------------------------------------------------------------------------
    def get_tensors(self, kind: str, key: str) -> dict[str, Tensor] | None:
        path = self.path(kind, key, "safetensors")
        if not path.exists():
            self.misses += 1
            return None
        try:
            tensors, _ = load_tensors(path)
        except ValueError as exc:
            warnings.warn(f"corrupted cache entry, recomputing: {exc}", CacheCorruptionWarning, stacklevel=2)
            path.unlink(missing_ok=True)
            self.misses += 1
            return None
        self.hits += 1
        return tensors

    def put_tensors(self, kind: str, key: str, tensors: dict[str, Tensor]) -> Path:
        path = self.path(kind, key, "safetensors")
        save_tensors(path, tensors)
        return path

    # -- JSON ---------------------------------------------------------------------------
    def get_json(self, kind: str, key: str) -> Any | None:
        path = self.path(kind, key, "json")
        if not path.exists():
            self.misses += 1
            return None
        try:
            record = json.loads(path.read_text())
            payload = record["payload"]
            if _json_digest(payload) != record["sha256"]:
                raise ValueError("checksum mismatch")
        except (ValueError, KeyError, TypeError) as exc:
            warnings.warn(f"corrupted cache entry {path}, recomputing: {exc}", CacheCorruptionWarning, stacklevel=2)
            path.unlink(missing_ok=True)
            self.misses += 1
            return None
        self.hits += 1
        return payload

    def put_json(self, kind: str, key: str, payload: Any) -> Path:
        path = self.path(kind, key, "json")
        record = {"sha256": _json_digest(payload), "payload": payload}
        atomic_write_bytes(path, json.dumps(record).encode())
        return path


def _json_digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
