"""Reproducibility in one place: seeds, thread count and deterministic algorithms.

Notebooks call :func:`samlib.setup` (which calls :func:`configure`) instead of seeding
themselves, so every chapter runs under the same rules.
"""
from __future__ import annotations

import os
import random

import numpy as np
import torch

from . import checks

__all__ = ["seed_everything", "configure", "book_threads", "rng_state", "set_rng_state"]

BOOK_THREADS = 2  # the CPU thread count the committed outputs and CI use
THREADS_VARIABLE = "SAMLIB_THREADS"  # where set, it replaces BOOK_THREADS (.ci/check_kernels' other thread count)
BOOK_CPU_CAPABILITY = "avx2"  # torch's CPU kernel family the committed outputs and CI use (ATEN_CPU_CAPABILITY)
BOOK_KERNELS = {  # the kernel family of every CPU library torch calls, the same on every x86-64 CPU with AVX2
    "ATEN_CPU_CAPABILITY": BOOK_CPU_CAPABILITY,  # torch's own vectorised kernels (reductions, exp/log, BatchNorm)
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN's convolutions (AVX-512 and AVX2 kernels round differently)
    # MKL's conditional numerical reproducibility (its matrix products). Its AVX2 branch still rounds otherwise on
    # an Intel Xeon than on AMD, so no float32 training digit is checked exactly (samlib.experiments.agreement);
    # .ci/check_kernels re-runs every chapter under its COMPATIBLE path too.
    "MKL_CBWR": "AVX2",
}


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (all devices)."""
    seed = checks.seed("seed", seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def book_threads() -> int:
    """The thread count of a chapter: :data:`BOOK_THREADS`, or ``$SAMLIB_THREADS`` where it is set (a positive
    integer; ``.ci/check_kernels`` re-runs the chapters under another count to show that no checked output
    depends on it)."""
    value = os.environ.get(THREADS_VARIABLE, "").strip()
    if not value:
        return BOOK_THREADS
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"${THREADS_VARIABLE}={os.environ[THREADS_VARIABLE]!r}: expected a positive integer such as "
                         f"1 or 2 (the book's is {BOOK_THREADS}); unset it for the book's")
    return int(value)


def configure(seed: int = 0, threads: int | str | None = "book", deterministic: bool = True) -> None:
    """Seed everything, fix torch's CPU thread count (``"book"``: :func:`book_threads`; ``None`` keeps torch's
    default) and ask for deterministic algorithms (on GPU this also sets ``CUBLAS_WORKSPACE_CONFIG``).

    Floating-point sums depend on the thread count and on the CPU's kernels, so the book's printed numbers
    are reproducible for a fixed ``threads`` and kernel family: :data:`BOOK_KERNELS` (AVX2 kernels in torch,
    oneDNN and MKL), each set unless already set. The libraries read them once, before their first
    operation, so call this first; operations without a deterministic version warn
    instead of failing, so paper-scale runs in Colab never stop on them.
    """
    # A trained network carries a last-bit difference of one kernel into its final digits, and the toy's
    # large-rho runs are chaotic: fix the kernels. A value the user set is kept (the two-kernel check sets one).
    for name, value in BOOK_KERNELS.items():
        os.environ.setdefault(name, value)
    checks.strict_bool("deterministic", deterministic)
    if threads == "book":
        threads = book_threads()
    if threads is not None:
        torch.set_num_threads(checks.positive_int("threads", threads, "or None for torch's default"))
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    seed_everything(seed)


def rng_state() -> dict:
    """The global generators' states, in a form ``torch.load(weights_only=True)`` accepts."""
    version, internal, gauss_next = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss_next"]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
