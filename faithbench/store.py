"""Content-addressed store for expensive artefacts (checkpoints, saliency maps, scores).

The ground floor: models, runner and reports import it; it imports nothing of faithbench.

A key is the hash of everything an artefact depends on (:func:`make_key`). Writes are atomic
(a temporary file in the same folder, then ``os.replace``), so a killed run loses at most the
artefact in flight; files are written with mode 0644. Every file carries a SHA-256 of its
content and the ``kind/key`` it was stored under; a corrupted or truncated file, or one found
under another key (two entries swapped or copied), is detected on read, reported with a
warning, and treated as missing (recomputed).

Several runs may share one cache: :meth:`Cache.lock` is a per-key advisory file lock
(``fcntl.flock``) that a producer holds while it computes an entry, so a second run waits and
then reads the entry instead of computing it again.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save as st_save
from torch import Tensor

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, producers are not serialised
    fcntl = None  # type: ignore[assignment]

CACHE_ENV = "FAITHBENCH_CACHE"
FILE_MODE = 0o644  # results are shared and read by others; tempfile.mkstemp alone gives 0600


class CacheCorruptionWarning(UserWarning):
    pass


class CacheWriteError(OSError):
    """The cache cannot store an entry: its file system is full, over quota or read-only, or the
    folder is not writable for this user. The run stops (exit code 2) instead of failing cell after
    cell, computing work it cannot keep; what is cached stays."""

    def __str__(self) -> str:  # the message, without OSError's "[Errno 28]"
        return str(self.strerror)


_STOPPING_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


@contextmanager
def _writing(root: Path, path: Path) -> Iterator[None]:
    """Turns an OSError of the file system (full, read-only, no permission) into :class:`CacheWriteError`."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _STOPPING_ERRNOS or isinstance(exc, CacheWriteError):
            raise
        raise CacheWriteError(exc.errno, f"cannot write to the cache {root}: {exc.strerror} ({path}); free space or "
                                         "use another --cache (what is cached stays: a rerun resumes)") from exc


class CacheLockBusy(BlockingIOError):
    """``Cache.lock(..., wait=False)`` found the key locked by another process."""


class CacheLockWait(UserWarning):
    """``Cache.lock(..., waiting=...)`` waits for another process that holds the key."""


def default_cache_dir() -> Path:
    """``$FAITHBENCH_CACHE`` (blanks around it stripped, as ``$FAITHBENCH_DATA``'s; blank: unset, a review: ``" "``
    made a folder named by a space), else ``$XDG_CACHE_HOME/faithbench`` (set, not empty), else
    ``~/.cache/faithbench``."""
    env = os.environ.get(CACHE_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "faithbench"  # empty: unset (XDG spec)


def cache_origin(path: Path | str) -> str | None:
    """Where the cache folder ``path`` came from, for messages, when it is :func:`default_cache_dir` without
    ``$FAITHBENCH_CACHE``: ``$XDG_CACHE_HOME/faithbench`` or ``~/.cache/faithbench``; else None (a fuzzing review:
    a file at ``$XDG_CACHE_HOME`` was blamed on "--cache or $FAITHBENCH_CACHE", neither of them set)."""
    if os.environ.get(CACHE_ENV, "").strip() or Path(path) != default_cache_dir():
        return None
    return "$XDG_CACHE_HOME/faithbench" if os.environ.get("XDG_CACHE_HOME") else "~/.cache/faithbench"


def make_key(*parts: Any) -> str:
    """SHA-256 (first 24 hex digits) of the canonical JSON of ``parts``."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes (hex): the identity of a weights file (its path and time
    survive a replacement by ``cp -p``; a held-out review). Read once per process while the file's
    inode, size, modification and change times stay (a replacement changes the change time)."""
    st = Path(path).stat()
    return _sha256(str(Path(path).resolve()), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@functools.lru_cache(maxsize=64)
def _sha256(path: str, *_stat: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:  # a full disk's write
            raise named_os_error(exc, path) from exc  # names no file (a review)
        raise


def named_os_error(exc: OSError, path: Path) -> OSError:
    """``exc`` with ``path`` as its file name, for the one-line errors that name the file: the same type
    (``OSError(errno, …)`` makes the errno's subclass, ENOSPC an ``OSError``, ETIMEDOUT a ``TimeoutError``) and
    ``errno``; an error without an errno (``OSError("msg")``) is returned as it is (a diff review: it became
    ``[Errno None] msg``)."""
    if exc.errno is None:
        return exc
    return OSError(exc.errno, exc.strerror or str(exc), str(path))


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


def is_safetensors(path: Path) -> bool:
    """Whether ``path`` holds a safetensors file, by its name (``.safetensors``) or its first bytes
    (a little-endian header length, then the JSON header's ``{``), so that one saved under another
    name (``model.pt``) is read as what it is (a review: it was refused as a corrupt torch file)."""
    if path.suffix == ".safetensors":
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") < path.stat().st_size


def load_tensors(path: Path, *, verify: bool = True) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Read a safetensors file; raise ``ValueError`` if it is truncated or its checksum differs."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise ValueError(f"{path}: unreadable safetensors file ({exc})") from exc
    if verify and "sha256" in meta and tensors_digest(tensors) != meta["sha256"]:
        raise ValueError(f"{path}: checksum mismatch: the sha256 in the file's metadata (written with it by "
                         "faithbench's cache) does not match its tensors: the file is damaged, or its tensors were "
                         "changed and saved with the old metadata (save them without it)")
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
            tensors, meta = load_tensors(path)
            if "sha256" not in meta:  # every entry written here has one (helper 113: one without was read unchecked)
                raise ValueError(f"{path}: no checksum in its metadata")
            _check_bound(meta.get("key"), kind, key)
        except ValueError as exc:
            warnings.warn(f"corrupted cache entry, recomputing: {exc}", CacheCorruptionWarning, stacklevel=2)
            path.unlink(missing_ok=True)
            self.misses += 1
            return None
        self.hits += 1
        return tensors

    def put_tensors(self, kind: str, key: str, tensors: dict[str, Tensor]) -> Path:
        path = self.path(kind, key, "safetensors")
        with _writing(self.root, path):
            save_tensors(path, tensors, metadata={"key": f"{kind}/{key}"})
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
            if _json_digest(payload, record.get("key")) != record["sha256"]:
                raise ValueError("checksum mismatch")
            _check_bound(record.get("key"), kind, key)
        except (ValueError, KeyError, TypeError) as exc:
            warnings.warn(f"corrupted cache entry {path}, recomputing: {exc}", CacheCorruptionWarning, stacklevel=2)
            path.unlink(missing_ok=True)
            self.misses += 1
            return None
        self.hits += 1
        return payload

    def put_json(self, kind: str, key: str, payload: Any) -> Path:
        path = self.path(kind, key, "json")
        bound = f"{kind}/{key}"
        record = {"key": bound, "sha256": _json_digest(payload, bound), "payload": payload}
        with _writing(self.root, path):
            atomic_write_bytes(path, json.dumps(record).encode())
        return path

    # -- one producer per key -----------------------------------------------------------
    @contextmanager
    def lock(self, kind: str, key: str, *, wait: bool = True, waiting: str | None = None) -> Iterator[Path]:
        """Hold an exclusive advisory lock on ``kind/key`` (``.<key>.lock`` beside the entry).

        The pattern for an expensive entry shared by concurrent runs::

            with cache.lock("checkpoints", key):
                state = cache.get_tensors("checkpoints", key)  # another run may have made it
                if state is None:
                    state = train(...)
                    cache.put_tensors("checkpoints", key, state)

        ``wait=False`` raises :class:`CacheLockBusy` instead of waiting; ``waiting``, a text, is
        warned of (a :class:`CacheLockWait` naming the lock file) before a wait, to say why nothing moves (a
        review waited 15 minutes on another run's training with a 0 % bar only). The lock belongs to an
        open file, so the kernel releases it when the holder ends in any way (``kill -9``
        included). ``flock`` is per host: on a network file system shared by several nodes it
        may not exclude the other nodes' processes.
        """
        path = self.path(kind, key, "lock")
        path = path.with_name(f".{path.name}")
        with _writing(self.root, path):
            path.parent.mkdir(parents=True, exist_ok=True)
        read_only = False
        try:
            with _writing(self.root, path):
                handle = open(path, "a")
        except CacheWriteError as exc:  # another user's lock file (a shared cache): flock needs no write access
            if exc.errno not in (errno.EACCES, errno.EPERM):  # full, over quota, read-only: stop
                raise
            try:
                handle, read_only = open(path), True
            except OSError:  # not creatable in another user's folder, nor there
                raise CacheWriteError(exc.errno, f"{exc}; a cache shared by several users needs group-writable "
                                                 "folders (umask 002 and a setgid group folder)") from None
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    if not wait:
                        raise CacheLockBusy(f"{kind}/{key} is being computed by another process ({path})") from None
                    if waiting is not None:
                        warnings.warn(f"{waiting}; waiting for it to release {path}", CacheLockWait, stacklevel=3)
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
                except OSError:  # NFS emulates flock with fcntl locks, which need a writable file
                    if not read_only:
                        raise
            yield path
        finally:
            handle.close()  # closing the file releases the lock


def _check_bound(stored: str | None, kind: str, key: str) -> None:
    """An entry read under ``kind/key`` must have been written under it (not moved or swapped)."""
    if stored != f"{kind}/{key}":
        found = f"an entry written for {stored}" if stored else "an entry without its key (an older faithbench)"
        raise ValueError(f"found {found} where {kind}/{key} was expected")


def _json_digest(payload: Any, bound: str | None = None) -> str:
    """SHA-256 of the payload's canonical JSON, preceded by ``kind/key`` when bound to one."""
    prefix = f"{bound}\n" if bound is not None else ""
    return hashlib.sha256((prefix + json.dumps(payload, sort_keys=True)).encode()).hexdigest()
