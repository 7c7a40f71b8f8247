"""Checkpoints: written atomically, checksummed, stamped with a fingerprint of the run, and refused when the run
differs.

* :func:`save_atomic` / :func:`write_text_atomic`: a crash mid-write never leaves a half file behind; the next
  save removes the temporary file a killed write left, and files get ordinary permissions (the umask's).
* **A digest of the payload**: :func:`save_atomic` writes a checkpoint (a dict) with a blake2b digest of every
  tensor's bytes and every other value in it (:func:`payload_digest`), and :func:`load_checkpoint` recomputes it:
  a file whose bytes changed since it was written (a flipped bit on disk, a truncated copy) is refused with
  :class:`CheckpointCorrupt`, instead of resuming a run from weights that are not the ones it saved.
* :func:`stamped` / :func:`load_resumable`: a resumable checkpoint carries its ``kind`` (``"fit"``,
  ``"toy sweep"``) and a **fingerprint**, a flat {field: text} dict of what determines the run (optimizer and
  hyperparameters, model shapes, a digest of the training data, ...). Resuming compares it with the new run's
  and refuses a mismatch, naming the fields that differ; ``resume="force"`` skips the comparison (never the
  digest).
"""
from __future__ import annotations

import hashlib
import math
import numbers
import os
import tempfile
from pathlib import Path

import torch
from torch import Tensor, nn

from . import checks
from .checks import choice

__all__ = ["save_atomic", "write_text_atomic", "write_bytes_atomic", "load_checkpoint", "CheckpointError",
           "CheckpointCorrupt", "CheckpointMismatch", "FORMAT", "RESUME", "DIGEST_KEY", "stamped", "load_resumable",
           "payload_digest", "tensor_digest", "module_fingerprint", "optimizer_fingerprint"]

FORMAT = "samlib-checkpoint-3"  # the marker of a fingerprinted, checksummed checkpoint (2: no digest; older: neither)
RESUME = ("check", "force")  # resume= values: compare fingerprints, or trust the file's settings
DIGEST_KEY = "payload_digest"  # the key under which save_atomic stores the digest of the rest of the dict


class CheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be used: corrupt, not samlib's, or of another kind."""


class CheckpointCorrupt(CheckpointError):
    """A checkpoint's bytes are not the ones samlib wrote: unreadable, truncated, or its digest does not match."""


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
    path = checks.path("path", path)
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


def save_atomic(obj: dict, path: str | os.PathLike) -> Path:
    """``torch.save`` of the checkpoint ``obj`` (a dict of tensors, numbers, strings, lists and dicts) to ``path``
    atomically, with the digest of its contents (:func:`payload_digest`) under :data:`DIGEST_KEY`."""
    if not isinstance(obj, dict):
        raise TypeError(f"save_atomic saves a checkpoint, a dict of tensors, numbers and strings, got "
                        f"{type(obj).__name__}: put it in a dict, e.g. {{'model': model.state_dict()}}")
    if DIGEST_KEY in obj:
        raise ValueError(f"the key {DIGEST_KEY!r} is save_atomic's own (the digest it writes): rename that entry")
    payload = {**obj, DIGEST_KEY: payload_digest(obj)}
    return _write_atomic(path, lambda f: torch.save(payload, f))


def write_text_atomic(text: str, path: str | os.PathLike) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically, e.g. a results table."""
    return _write_atomic(path, lambda f: f.write(text.encode("utf-8")))


def write_bytes_atomic(data: bytes, path: str | os.PathLike) -> Path:
    """Write ``data`` to ``path`` atomically, e.g. a copy of a checkpoint."""
    return _write_atomic(path, lambda f: f.write(data))


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint written by :func:`save_atomic` (tensors, numbers, strings, lists, dicts only), its digest
    checked and removed. A file that cannot be read, or whose contents do not match the digest written with them,
    raises :class:`CheckpointCorrupt`; a dict without a digest (not written by save_atomic) is returned as it is."""
    path = checks.path("path", path, writable=False)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:
        cause = (str(exc).strip().splitlines() or [""])[0][:160]
        raise CheckpointCorrupt(
            f"checkpoint {path} is corrupt or not a samlib checkpoint ({type(exc).__name__}: {cause}); "
            "move it away to start the run afresh"
        ) from exc
    if isinstance(state, dict) and DIGEST_KEY in state:
        written = state.pop(DIGEST_KEY)
        try:
            found = payload_digest(state)
        except (TypeError, ValueError, RuntimeError) as exc:
            found = f"(not computable: {exc})"
        if written != found:
            raise CheckpointCorrupt(
                f"checkpoint {path} is corrupt: its contents do not match the digest written with them (written "
                f"{str(written)[:40]}, found {found[:40]}), so some of its bytes changed after it was saved (a disk "
                "or copy error). Its weights cannot be trusted: restore the file from a copy, or move it away to "
                "start the run afresh")
    elif isinstance(state, dict) and state.get("format") == FORMAT:
        raise CheckpointCorrupt(f"checkpoint {path} is corrupt: it is marked {FORMAT} but lacks the digest of its "
                                f"contents ({DIGEST_KEY!r}), so they cannot be checked; move it away to start the run "
                                "afresh")
    return state


def payload_digest(state: dict) -> str:
    """A blake2b digest of a checkpoint's contents: every key and value, in order; each tensor by its dtype, shape
    and bytes (on any device); numbers by value (an int and a NumPy int alike), strings, lists, tuples and dicts
    by their items. Equal contents, equal digest; one changed byte of a weight, a different one."""
    h = hashlib.blake2b(digest_size=16)
    _feed(h, state)
    return "blake2b-128:" + h.hexdigest()


def _feed(h, value) -> None:
    """Add ``value`` to the hash ``h``, with a tag of its kind so that [1, 2] and (1, 2) or '1' and 1 differ."""
    if isinstance(value, Tensor):
        t = value.detach().to("cpu").contiguous().reshape(-1)
        h.update(f"T{t.dtype}{tuple(value.shape)}|".encode())
        if t.numel():
            h.update(t.view(torch.uint8).numpy())
    elif isinstance(value, dict):
        h.update(f"D{len(value)}|".encode())
        for key, item in value.items():
            _feed(h, key)
            _feed(h, item)
    elif isinstance(value, (list, tuple)):
        h.update(f"{'L' if isinstance(value, list) else 'U'}{len(value)}|".encode())
        for item in value:
            _feed(h, item)
    elif isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
        h.update(f"S{len(data)}|".encode() + data)
    elif isinstance(value, bytes):
        h.update(f"B{len(value)}|".encode() + value)
    elif value is None or isinstance(value, bool):
        h.update(f"N{value}|".encode())
    elif isinstance(value, numbers.Integral):
        h.update(f"I{int(value)}|".encode())
    elif isinstance(value, numbers.Real):
        number = float(value)
        h.update(f"F{number.hex() if math.isfinite(number) else number}|".encode())
    elif isinstance(value, numbers.Complex):
        h.update(f"C{complex(value)!r}|".encode())
    elif isinstance(value, (torch.dtype, torch.device)):
        h.update(f"O{value}|".encode())
    else:
        raise TypeError(f"a checkpoint holds tensors, numbers, strings, lists, tuples and dicts, not "
                        f"{type(value).__name__} {value!r:.60}")


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
    path = checks.path("checkpoint", path, writable=False)
    state = load_checkpoint(path)
    away = "move it away (or pass another checkpoint path) to start the run afresh"
    if not isinstance(state, dict) or ("format" not in state and not set(required) <= set(state)):
        raise CheckpointError(f"{path} is not a samlib {kind} checkpoint (it lacks {', '.join(required)}); {away}")
    if state.get("format") != FORMAT:
        if resume != "force":
            what = ("has a fingerprint but no digest of its contents, so nothing shows they are intact"
                    if state.get("format") == "samlib-checkpoint-2" else
                    "has no fingerprint, so nothing shows it was made with this run's settings")
            raise CheckpointError(f"{path} was written by an older samlib and {what}; {away}, or pass "
                                  "resume='force' if you are sure it was")
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
