"""Checkpoints: written atomically, stamped with a fingerprint of the run, and refused when the run differs.

* :func:`save_atomic` / :func:`write_text_atomic`: a crash mid-write never leaves a half file behind; the next
  save removes the temporary file a killed write left, and files get ordinary permissions (the umask's).
* :func:`stamped` / :func:`load_resumable`: a resumable checkpoint carries its ``kind`` (``"fit"``,
  ``"toy sweep"``) and a **fingerprint**, a flat {field: text} dict of what determines the run (optimizer and
  hyperparameters, model shapes, a digest of the training data, ...). Resuming compares it with the new run's
  and refuses a mismatch, naming the fields that differ; ``resume="force"`` skips the comparison.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import torch
from torch import Tensor, nn

from .checks import choice

__all__ = ["save_atomic", "write_text_atomic", "write_bytes_atomic", "load_checkpoint", "CheckpointError",
           "CheckpointMismatch", "FORMAT", "RESUME", "stamped", "load_resumable", "tensor_digest", "module_fingerprint",
           "optimizer_fingerprint"]

FORMAT = "samlib-checkpoint-2"  # the marker of a fingerprinted checkpoint (older samlib wrote none)
RESUME = ("check", "force")  # resume= values: compare fingerprints, or trust the file


class CheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be used: corrupt, not samlib's, or of another kind."""


class CheckpointMismatch(CheckpointError, ValueError):
    """A checkpoint belongs to a run with other settings, data or model."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove_stale_temporaries(path: Path) -> None:
    """Delete the ``.<name>.*.tmp`` files that a killed write of ``path`` left behind."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)


def _write_atomic(path: str | os.PathLike, write) -> Path:
    """``write(binary file)`` to a temporary file beside ``path``, flushed, then renamed over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600 files; a checkpoint is an ordinary file
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


def write_bytes_atomic(data: bytes, path: str | os.PathLike) -> Path:
    """Write ``data`` to ``path`` atomically, e.g. a copy of a checkpoint."""
    return _write_atomic(path, lambda f: f.write(data))


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


def stamped(kind: str, fingerprint: dict[str, str], state: dict) -> dict:
    """``state`` with the marker, ``kind`` and ``fingerprint`` that :func:`load_resumable` checks."""
    return {"format": FORMAT, "kind": kind, "fingerprint": dict(fingerprint), **state}


def _differences(saved: dict, current: dict) -> list[str]:
    def shown(text):
        return "(absent)" if text is None else (text if len(text) <= 80 else text[:77] + "...")

    return [f"{field}: checkpoint {shown(saved.get(field))}, now {shown(current.get(field))}"
            for field in sorted(set(saved) | set(current)) if saved.get(field) != current.get(field)]


def load_resumable(path: str | os.PathLike, kind: str, fingerprint: dict[str, str], required: tuple[str, ...],
                   resume: str = "check") -> dict:
    """The checkpoint at ``path`` if it is a samlib ``kind`` checkpoint whose fingerprint equals ``fingerprint``
    (with ``resume="force"``: whatever its fingerprint), holding the keys ``required``; otherwise a
    :class:`CheckpointError` (:class:`CheckpointMismatch` for other settings) that names the file and the fix.
    ``state["fingerprint"]`` is what the run goes on with: the file's (``fingerprint`` for an older file)."""
    choice("resume", resume, RESUME)
    path = Path(path)
    state = load_checkpoint(path)
    away = "move it away (or pass another checkpoint path) to start the run afresh"
    if not isinstance(state, dict) or ("format" not in state and not set(required) <= set(state)):
        raise CheckpointError(f"{path} is not a samlib {kind} checkpoint (it lacks {', '.join(required)}); {away}")
    if state.get("format") != FORMAT:
        if resume != "force":
            raise CheckpointError(
                f"{path} was written by an older samlib and has no fingerprint, so nothing shows it was made with "
                f"this run's settings; {away}, or pass resume='force' if you are sure it was")
    elif state.get("kind") != kind:
        raise CheckpointError(f"{path} is a samlib {state.get('kind')!r} checkpoint, not a {kind!r} one; {away}")
    elif resume == "check" and (diffs := _differences(state["fingerprint"], fingerprint)):
        raise CheckpointMismatch(
            f"{path} belongs to another run; it differs in {len(diffs)} field(s):\n  " + "\n  ".join(diffs)
            + f"\n{away.capitalize()}, or pass resume='force' to continue it with the settings it holds")
    missing = [key for key in required if key not in state]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}: it is not a complete {kind} checkpoint; {away}")
    state.setdefault("fingerprint", dict(fingerprint))  # an older file, forced: record this run's from now on
    return state


def tensor_digest(*tensors: Tensor) -> str:
    """A short hash of the tensors' dtypes, shapes and contents (any device): equal data, equal digest."""
    h = hashlib.blake2b(digest_size=12)
    for t in tensors:
        t = t.detach().to("cpu").contiguous().reshape(-1)
        h.update(f"{t.dtype}{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy() if t.numel() else b"")
    return h.hexdigest()


def module_fingerprint(model: nn.Module) -> dict[str, str]:
    """The model's class and the name, shape and dtype of each parameter."""
    shapes = ", ".join(f"{name} {tuple(p.shape)} {str(p.dtype).removeprefix('torch.')}"
                       for name, p in model.named_parameters())
    return {"model": type(model).__name__, "model.parameters": shapes}


def optimizer_fingerprint(optimizer: torch.optim.Optimizer) -> dict[str, str]:
    """The optimizer's class (with its base optimizer's, for SAM and LSAM), its ``eps`` if any, and every
    hyperparameter and size of each parameter group."""
    base = getattr(optimizer, "base_optimizer", None)
    name = type(optimizer).__name__ + (f"({type(base).__name__})" if base is not None else "")
    out = {"optimizer": name}
    if hasattr(optimizer, "eps"):
        out["optimizer.eps"] = repr(optimizer.eps)
    for i, group in enumerate(optimizer.param_groups):
        out[f"optimizer.group{i}.numel"] = str(sum(p.numel() for p in group["params"]))
        for key, value in group.items():
            if key not in ("params", "initial_lr"):
                out[f"optimizer.group{i}.{key}"] = repr(value.item() if isinstance(value, Tensor) else value)
    return out
