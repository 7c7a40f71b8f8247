"""Argument checks shared by every public function of samlib: one place for the rules and the messages.

Each check returns the value (normalised: a float for a number) or raises an error that names the argument,
shows the value it got and says what to pass instead:

* ``TypeError`` for a value of the wrong kind (a string for a count, a float for a step number, 1 for a flag);
* ``ValueError`` for a value of the right kind out of range (a negative rate, NaN, an unknown name).

``bool`` is never taken for a number: ``True`` is an ``int`` in Python, but ``epochs=True`` is a mistake.
This module imports nothing but the standard library, so every package of samlib can use it.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

__all__ = ["positive_int", "non_negative_int", "int_at_least", "real", "strict_bool", "seed", "choice", "optional"]


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
    fix = f"; {hint}" if hint else ""
    interval = _interval(low, high, low_open, high_open)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a finite number {interval}, got {_shown(value)}{fix}")
    value = float(value)
    inside = math.isfinite(value) and not (
        low is not None and (value < low or (low_open and value == low))) and not (
        high is not None and (value > high or (high_open and value == high)))
    if not inside:
        raise ValueError(f"{name} must be a finite number {interval}, got {value}{fix}")
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
    """``value`` as a random seed: an int >= 0 (what ``torch.Generator.manual_seed`` takes without surprises)."""
    return int_at_least(name, value, 0, f"pass a non-negative int, e.g. {name}=0")


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
