"""Argument checks shared by every public function of samlib: one place for the rules and the messages.

Each check returns the value (normalised: a float for a number) or raises an error that names the argument,
shows the value it got and says what to pass instead:

* ``TypeError`` for a value of the wrong kind (a string for a count, a float for a step number, 1 for a flag);
* ``ValueError`` for a value of the right kind out of range (a negative rate, NaN, an unknown name).

``bool`` is never taken for a number: ``True`` is an ``int`` in Python, but ``epochs=True`` is a mistake.
Seeds are ints in [0, 2**32), what NumPy, torch and Python all take; paths are checked before any work starts
(:func:`path`), and the environment switches accept the usual spellings of a flag (:func:`env_flag`).
:class:`NonFiniteError` is what a training loop raises when its loss or gradient stops being finite.
This module imports nothing but the standard library, so every package of samlib can use it.
"""
from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = ["positive_int", "non_negative_int", "int_at_least", "real", "strict_bool", "seed", "SEED_LIMIT", "choice",
           "optional", "function", "items", "path", "env_flag", "FLAG_SPELLINGS", "NonFiniteError"]

SEED_LIMIT = 2 ** 32  # seeds are ints in [0, SEED_LIMIT): NumPy's legacy seeding takes no more
FLAG_SPELLINGS = {"1": True, "true": True, "on": True, "yes": True, "0": False, "false": False, "off": False,
                  "no": False}  # what an environment switch may hold (any case, surrounding spaces ignored)


class NonFiniteError(FloatingPointError, ValueError, RuntimeError):
    """A training loss or gradient is NaN or infinite: the message names the step, the epoch and the likely cause.

    It is a ``FloatingPointError``, and also a ``ValueError`` (the usual cause is bad data: a NaN input, a label
    out of range) and a ``RuntimeError`` (training cannot go on), so that any of those ``except`` clauses catch it.
    """


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _shown(value) -> str:
    return f"{type(value).__name__} {value!r}"


def positive_int(name: str, value, hint: str = "") -> int:
    """``value`` as an int >= 1 (a count: epochs, steps, a batch size, a thread count)."""
    return int_at_least(name, value, 1, hint)


def non_negative_int(name: str, value, hint: str = "") -> int:
    """``value`` as an int >= 0."""
    return int_at_least(name, value, 0, hint)


def int_at_least(name: str, value, low: int, hint: str = "") -> int:
    """``value`` as an int >= ``low``."""
    kind = "a positive integer" if low == 1 else "a non-negative integer" if low == 0 else f"an integer >= {low}"
    fix = f"; {hint}" if hint else ""
    if not _is_int(value):
        raise TypeError(f"{name} must be {kind}, got {_shown(value)}{fix or f'; pass e.g. {name}={max(low, 1)}'}")
    if value < low:
        raise ValueError(f"{name} must be {kind}, got {value}{fix}")
    return int(value)


def real(name: str, value, *, low: float | None = None, high: float | None = None, low_open: bool = False,
         high_open: bool = False, hint: str = "") -> float:
    """``value`` as a finite float in the interval [low, high] (open at an end with ``low_open``/``high_open``;
    ``None``: unbounded). NaN and infinities are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a finite number {_interval(low, high, low_open, high_open)}, got "
                        f"{_shown(value)}{'; ' + hint if hint else ''}")
    value = float(value)
    inside = math.isfinite(value) and not (
        low is not None and (value < low or (low_open and value == low))) and not (
        high is not None and (value > high or (high_open and value == high)))
    if not inside:
        raise ValueError(f"{name} must be a finite number {_interval(low, high, low_open, high_open)}, got "
                         f"{value}{'; ' + hint if hint else ''}")
    return value


def _interval(low, high, low_open, high_open) -> str:
    if low is None and high is None:
        return "(any finite value)"
    if high is None:
        return f"{'>' if low_open else '>='} {low:g}"
    if low is None:
        return f"{'<' if high_open else '<='} {high:g}"
    return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def strict_bool(name: str, value, hint: str = "") -> bool:
    """``value`` if it is ``True`` or ``False`` (also NumPy's bool); a string, 0/1 or None is refused."""
    if type(value).__name__ not in ("bool", "bool_"):
        fix = f"; {hint}" if hint else f"; pass {name}=True or {name}=False"
        raise TypeError(f"{name} must be True or False, got {_shown(value)}{fix}")
    return bool(value)


def seed(name: str, value) -> int:
    """``value`` as a random seed: an int in [0, 2**32) (what NumPy, torch and Python's ``random`` all take)."""
    value = int_at_least(name, value, 0, f"pass a non-negative int below 2**32, e.g. {name}=0")
    if value >= SEED_LIMIT:
        raise ValueError(f"{name} must be an integer in [0, 2**32), got {value}: NumPy's generators take no larger "
                         f"seed; pass e.g. {name}={value % SEED_LIMIT}")
    return value


def choice(name: str, value, options: Iterable, hint: str = "") -> object:
    """``value`` if it is one of ``options`` (names, usually), else a ``ValueError`` that lists them."""
    options = tuple(options)
    if not any(value == option and type(value) is type(option) for option in options):
        fix = f"; {hint}" if hint else ""
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {_shown(value)}{fix}")
    return value


def optional(check, name: str, value, *args, **kwargs):
    """``None``, or ``check(name, value, ...)``: for arguments where ``None`` means 'the default'."""
    return None if value is None else check(name, value, *args, **kwargs)


def function(name: str, value, hint: str = "") -> Callable:
    """``value`` if it is callable (a function, a lambda, a class), else a ``TypeError`` naming it."""
    if not callable(value):
        fix = f"; {hint}" if hint else ""
        raise TypeError(f"{name} must be callable (a function), got {_shown(value)}{fix}")
    return value


def items(name: str, value, hint: str = "") -> list:
    """``value`` as a list, if it is an iterable of items (a list, tuple, range, ...; not a string, a mapping or a
    single number), else a ``TypeError`` naming it."""
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        fix = f"; {hint}" if hint else ""
        raise TypeError(f"{name} must be a list or tuple of values, got {_shown(value)}{fix}")
    return list(value)


def path(name: str, value, kind: str = "file", writable: bool = True) -> Path:
    """``value`` as a ``Path`` to a ``kind`` (``"file"`` or ``"folder"``) that samlib may create: a ``str`` or
    ``os.PathLike``, not empty, not standing where the other kind is, under no file (a file cannot hold one) and,
    if ``writable``, in a folder this process may write to. Checked before any work, so that a long run does not
    fail at its first save."""
    choice("kind", kind, ("file", "folder"))
    example = "run.pt" if kind == "file" else "checkpoints/"
    if isinstance(value, bool) or not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (a str or pathlib.Path), got {_shown(value)}; pass e.g. "
                        f"{name}={example!r}")
    text = os.fsdecode(os.fspath(value))
    if not text.strip():
        raise ValueError(f"{name} must be a path, got the empty string {text!r}; pass e.g. {name}={example!r}"
                         + (", or None for no checkpoint" if name == "checkpoint" else ""))
    if "\x00" in text:
        raise ValueError(f"{name} holds a NUL character, which no path may hold: {text!r}")
    found = Path(text)
    if kind == "file" and found.is_dir():
        raise ValueError(f"{name}={text!r} is a folder, but a file is needed here: pass a file inside it, e.g. "
                         f"{str(found / 'run.pt')!r}")
    if kind == "folder" and found.exists() and not found.is_dir():
        raise ValueError(f"{name}={text!r} is a file, but a folder is needed here: pass a folder (it is created "
                         "if missing), or move the file away")
    for parent in found.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{name}={text!r} lies under {str(parent)!r}, which is a file, not a folder: "
                                 "pass a path in a folder")
            if writable and not os.access(parent, os.W_OK | os.X_OK):
                raise ValueError(f"{name}={text!r}: its folder {str(parent)!r} is not writable; pass a path in a "
                                 "folder you can write to")
            break
    return found


def env_flag(variable: str, default: bool) -> bool:
    """The environment switch ``$variable`` as True/False: unset gives ``default``; 1/true/on/yes and
    0/false/off/no (any case, surrounding spaces ignored) are read; anything else is a ``ValueError``."""
    raw = os.environ.get(variable)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word not in FLAG_SPELLINGS:
        raise ValueError(f"${variable} must be a flag, one of {', '.join(FLAG_SPELLINGS)} (any case), got "
                         f"{raw!r}; e.g. {variable}=0 to switch it off, or unset it for the default")
    return FLAG_SPELLINGS[word]
