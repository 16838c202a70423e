"""Fingerprint values: an answer's scalars evaluated at fixed sample points, and their arithmetic.

A fingerprint is the value of every scalar at three fixed points (each symbol gets a fixed
pseudo-random value per point, ``point``), computed with 50-digit complex arithmetic (mpmath), plus
the exact rational value where there is one. Each ``Scalar`` also records what ``decide`` needs to
know about its form: whether a decimal literal occurs, its symbols, radicals of symbol-dependent or
irrational expressions, the largest magnitude met while evaluating, and an upper bound on its
polynomial degree (``deg``; None for non-polynomials), which the equation rules use.

The operations (``const``, ``symbol``, ``pi``, ``add``, ``mul``, ``div``, ``neg``, ``power``) raise
``Decline`` where sympy would give zoo/nan, a magnitude over 1e60, a non-finite value, an exponent
that is not a small rational or an exact value over 400 bits: the answer then gets no fingerprint.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import mpmath

__all__ = [
    "CTX",
    "N_POINTS",
    "Decline",
    "Fingerprint",
    "Scalar",
    "add",
    "const",
    "div",
    "mul",
    "neg",
    "pi",
    "point",
    "power",
    "symbol",
]

CTX = mpmath.MPContext()
CTX.dps = 50
N_POINTS = 3
_MAX_MAG = CTX.mpf(10) ** 60
_MAX_POW = 64


class Decline(Exception):
    """The answer is outside the fast grammar (no fingerprint; math-verify decides)."""


@dataclass(frozen=True)
class Scalar:
    """Values of one scalar at the sample points, and what is known about its form."""

    vals: tuple[Any, ...]  # mpmath mpc values
    exact: Fraction | None  # exact value when it is a rational without decimals
    floats: bool  # a decimal literal occurs
    symbols: frozenset[str]
    rad_sym: bool  # a radical / fractional power of a symbol-dependent expression
    nested: bool  # a radical of an irrational expression
    mag: Any  # largest magnitude met while evaluating (mpf)
    deg: int | None = 0  # an upper bound on the polynomial degree in the symbols; None: not a polynomial


@dataclass(frozen=True)
class Fingerprint:
    """``kind``: "scalar" | "set" | "tuple" | "interval" | "matrix"; ``items`` its scalars
    (interval: start, end; matrix: row-major). ``shape``: interval openness or matrix shape."""

    kind: str
    items: tuple[Scalar | None, ...]  # None = an infinite interval end (sign in ``shape``)
    shape: tuple[object, ...] = ()


def point(name: str, k: int) -> Any:
    """The value of symbol ``name`` at sample point ``k`` (in [0.55, 1.55), fixed by a CRC of the name)."""
    h = zlib.crc32(f"rzero/{name}/{k}".encode())
    return CTX.mpf(0.55) + CTX.mpf(h % 1_000_003) / 1_000_003


# ----------------------------------------------------------------------------- arithmetic


def const(value: Fraction, floats: bool = False) -> Scalar:
    v = CTX.mpc(CTX.mpf(value.numerator) / value.denominator)
    return Scalar((v,) * N_POINTS, None if floats else value, floats, frozenset(), False, False, abs(v))


def symbol(name: str) -> Scalar:
    vals = tuple(CTX.mpc(point(name, k)) for k in range(N_POINTS))
    return Scalar(vals, None, False, frozenset({name}), False, False, max(abs(v) for v in vals), 1)


def pi() -> Scalar:
    v = CTX.mpc(CTX.pi)
    return Scalar((v,) * N_POINTS, None, False, frozenset(), False, False, abs(v))


def _finish(
    vals: list[Any], exact: Fraction | None, a: Scalar, b: Scalar | None, deg: int | None, **kw: bool
) -> Scalar:
    # a constant has one value at every point: measure it once
    distinct = vals[:1] if all(v is vals[0] for v in vals) else vals
    mag = max([a.mag] + ([b.mag] if b is not None else []) + [abs(v) for v in distinct])  # type: ignore[type-var]
    if mag > _MAX_MAG or any(not CTX.isfinite(v) for v in distinct):  # type: ignore[operator]
        raise Decline
    return Scalar(
        tuple(vals),  # type: ignore[arg-type]
        exact,
        a.floats or (b.floats if b is not None else False),
        a.symbols | (b.symbols if b is not None else frozenset()),
        kw.get("rad_sym", False) or a.rad_sym or (b.rad_sym if b is not None else False),
        kw.get("nested", False) or a.nested or (b.nested if b is not None else False),
        mag,
        deg,
    )


def _deg_sum(a: Scalar, b: Scalar) -> int | None:
    return a.deg + b.deg if a.deg is not None and b.deg is not None else None


def _pointwise(op: Any, a: Scalar, b: Scalar) -> list[Any]:
    """``op`` at every sample point, computed once when neither operand depends on a symbol."""
    if not a.symbols and not b.symbols:
        return [op(a.vals[0], b.vals[0])] * N_POINTS
    return [op(x, y) for x, y in zip(a.vals, b.vals, strict=True)]


def add(a: Scalar, b: Scalar, sign: int = 1) -> Scalar:
    vals = _pointwise((lambda x, y: x + y) if sign > 0 else (lambda x, y: x - y), a, b)
    exact = a.exact + sign * b.exact if a.exact is not None and b.exact is not None else None
    deg = max(a.deg, b.deg) if a.deg is not None and b.deg is not None else None
    return _finish(vals, exact, a, b, deg)


def mul(a: Scalar, b: Scalar) -> Scalar:
    vals = _pointwise(lambda x, y: x * y, a, b)
    exact = a.exact * b.exact if a.exact is not None and b.exact is not None else None
    return _finish(vals, exact, a, b, _deg_sum(a, b))


def div(a: Scalar, b: Scalar) -> Scalar:
    if b.exact == 0 or any(abs(y) < CTX.mpf(10) ** -20 for y in b.vals):
        raise Decline  # zoo / nan in sympy
    vals = _pointwise(lambda x, y: x / y, a, b)
    exact = a.exact / b.exact if a.exact is not None and b.exact is not None else None
    return _finish(vals, exact, a, b, None if b.symbols else a.deg)


def neg(a: Scalar) -> Scalar:
    vals = [-a.vals[0]] * N_POINTS if not a.symbols else [-x for x in a.vals]
    return _finish(vals, -a.exact if a.exact is not None else None, a, None, a.deg)


def _iroot(n: int, k: int) -> int | None:
    """The exact k-th root of n >= 0, or None."""
    if n < 2:
        return n
    lo, hi = 0, 1 << (n.bit_length() // k + 1)
    while lo < hi:
        mid = (lo + hi) // 2
        if mid**k < n:
            lo = mid + 1
        else:
            hi = mid
    return lo if lo**k == n else None


def power(a: Scalar, b: Scalar) -> Scalar:
    e = b.exact
    if e is None or abs(e.numerator) > _MAX_POW or e.denominator > 12:
        raise Decline
    if a.exact == 0 and e <= 0:
        raise Decline
    exponent = CTX.mpf(e.numerator) / e.denominator
    vals = [a.vals[0] ** exponent] * N_POINTS if not a.symbols else [x**exponent for x in a.vals]
    if not a.symbols:
        deg: int | None = 0
    elif e.denominator == 1 and e >= 0 and a.deg is not None:
        deg = a.deg * e.numerator
    else:
        deg = None
    if e.denominator == 1:
        exact = a.exact**e.numerator if a.exact is not None else None
        if exact is not None and max(exact.numerator.bit_length(), exact.denominator.bit_length()) > 400:
            raise Decline
        return _finish(vals, exact, a, b, deg)
    exact = None
    if a.exact is not None and a.exact > 0:
        p, q = _iroot(a.exact.numerator, e.denominator), _iroot(a.exact.denominator, e.denominator)
        if p is not None and q is not None:
            exact = Fraction(p, q) ** e.numerator
    if exact is not None:
        vals = [CTX.mpc(CTX.mpf(exact.numerator) / exact.denominator)] * N_POINTS
        return _finish(vals, exact, a, b, deg)
    irrational = a.exact is None
    return _finish(vals, None, a, b, deg, rad_sym=bool(a.symbols), nested=irrational)
