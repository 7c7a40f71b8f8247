"""Checkpoints written atomically: a crash mid-write never leaves a half file behind."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

__all__ = ["save_atomic", "write_text_atomic", "load_checkpoint", "CheckpointError"]


class CheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be read."""


def _write_atomic(path: str | os.PathLike, write) -> Path:
    """``write(binary file)`` to a temporary file beside ``path``, flushed, then renamed over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_atomic(obj, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to ``path`` atomically."""
    return _write_atomic(path, lambda f: torch.save(obj, f))


def write_text_atomic(text: str, path: str | os.PathLike) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically, e.g. a results table."""
    return _write_atomic(path, lambda f: f.write(text.encode("utf-8")))


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint written by :func:`save_atomic` (tensors, numbers, strings, lists, dicts only)."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:
        cause = (str(exc).strip().splitlines() or [""])[0][:160]
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a samlib checkpoint ({type(exc).__name__}: {cause}); "
            "move it away to start the run afresh"
        ) from exc
