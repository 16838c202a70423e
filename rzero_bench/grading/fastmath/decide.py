"""math-verify's verdict on two fingerprints, decided only where it is certain (else None).

Polynomial identity testing decides:

- **different** when the values clearly differ (relative 1e-6; a float rounded to 6 decimals, as
  math-verify does, cannot bridge that) at some point; for sets/tuples/intervals when the sets of
  element values differ (math-verify's every set/tuple/interval equality implies equal element
  value sets); matrices of different shape, or with a clearly different entry; a matrix and a
  non-matrix;
- **equal** only where math-verify provably agrees: exact rationals (without decimals) equal
  exactly; constant expressions neither of which is a plain rational (math-verify compares
  ``(a-b).evalf(15)`` with 0) equal to 1e-30 with moderate magnitudes and no nested radicals;
  rational functions of the symbols (radicals of constants only, no decimals), neither side
  identically one bare symbol (math-verify compares a Symbol by its printed form), equal at all
  points (``simplify(a-b)`` is 0); sets, tuples, intervals (same brackets) and matrices element by
  element under the same rules. Equal exact values that differ by less than 1e-9 are left
  undecided: an expression is compared through ``(a - b).evalf(15, chop=True) == 0``, which calls
  a difference under ~2e-15 zero.

Relations follow math-verify's ``sympy_expr_eq``: an assignment ``x = f`` against a non-equation
is compared through f (whichever is the reference); two equations are equal when their
differences lhs - rhs are equal or opposite, and different when both differences are linear
without decimals and not proportional (different solution sets, so ``solve`` differs too); an
equation whose left side is not one letter against a number is only ever decided "different";
``x \\in I`` is compared through I, and with ``y \\in J`` structurally.

Everything else is left undecided (None) and goes to math-verify.
"""

from __future__ import annotations

from fractions import Fraction

from rzero_bench.grading.fastmath.values import CTX, Fingerprint, Scalar, neg, point

__all__ = ["decide_fast"]

_EQ_MAG = CTX.mpf(10) ** 15
_EQ_TOL = CTX.mpf(10) ** -30
_DIFF_REL = CTX.mpf(10) ** -6
_DIFF_ABS = CTX.mpf("1.5e-6")
_TINY = Fraction(1, 10**9)


def _differ(a: Scalar, b: Scalar) -> bool:
    for x, y in zip(a.vals, b.vals, strict=True):
        d = abs(x - y)
        if d > _DIFF_ABS and d > _DIFF_REL * max(abs(x), abs(y)):
            return True
    return False


def _bare_symbol(a: Scalar) -> bool:
    if len(a.symbols) != 1:
        return False
    name = next(iter(a.symbols))
    return all(abs(v - point(name, k)) < _EQ_TOL for k, v in enumerate(a.vals))


def _scalar_equal(a: Scalar, b: Scalar) -> bool | None:
    """math-verify's verdict on two scalars, or None when it cannot be predicted."""
    if a.exact is not None and b.exact is not None:
        if a.exact == b.exact:
            return True
        # an expression (not a bare number) is compared through (a - b).evalf(15, chop=True) == 0,
        # which calls a difference under ~2e-15 zero: "10^{-20}" equals "2 \cdot 10^{-20}"
        return False if abs(a.exact - b.exact) > _TINY else None
    if _differ(a, b):
        return False
    if a.floats or b.floats or a.nested or b.nested:
        return None
    if a.mag > _EQ_MAG or b.mag > _EQ_MAG:  # type: ignore[operator]
        return None
    scale = max(a.mag, b.mag, 1)  # type: ignore[call-overload]
    if any(abs(x - y) > _EQ_TOL * scale for x, y in zip(a.vals, b.vals, strict=True)):
        return None
    if not a.symbols and not b.symbols:
        if a.exact is None and b.exact is None:
            return True  # (a-b).evalf(15) == 0
        return None  # a plain rational against an expression: structural / simplify
    if a.rad_sym or b.rad_sym or _bare_symbol(a) or _bare_symbol(b):
        return None
    if _constant(a) or _constant(b):
        return None
    return True  # rational functions equal everywhere: simplify(a - b) == 0


def _constant(a: Scalar) -> bool:
    return all(abs(v - a.vals[0]) < _EQ_TOL * max(1, a.mag) for v in a.vals)  # type: ignore[call-overload]


def _value_sets_differ(xs: tuple[Scalar | None, ...], ys: tuple[Scalar | None, ...]) -> bool:
    def missing(us: tuple[Scalar | None, ...], vs: tuple[Scalar | None, ...]) -> bool:
        return any(u is not None and all(v is not None and _differ(u, v) for v in vs) for u in us)

    return missing(xs, ys) or missing(ys, xs)


def _all_equal(xs: tuple[Scalar | None, ...], ys: tuple[Scalar | None, ...]) -> bool | None:
    verdict: bool | None = True
    for x, y in zip(xs, ys, strict=True):
        if x is None or y is None:
            if x is not y:
                return False
            continue
        v = _scalar_equal(x, y)
        if v is False:
            return False
        if v is None:
            verdict = None
    return verdict


def decide_fast(a: Fingerprint | None, b: Fingerprint | None) -> bool | None:
    """math-verify's verdict (either direction) on two fingerprinted answers, or None."""
    if a is None or b is None:
        return None
    if a.kind == "in" or b.kind == "in":
        return _membership(a, b)
    if a.kind == "union" or b.kind == "union":
        return _unions(a, b)
    equations = ("assign", "equation")
    if a.kind in equations and b.kind in equations:
        return _equations(a.items[1], b.items[1])  # type: ignore[arg-type]
    if a.kind == "assign" or b.kind == "assign":
        # an assignment against a non-equation: math-verify compares the right-hand side with it,
        # whichever of the two is the reference
        return decide_fast(_rhs(a), _rhs(b))
    if a.kind == "equation" or b.kind == "equation":
        # ``2x = 5`` against a number: as the reference it equals no number; as the prediction it is
        # replaced by its right-hand side. Only "different both ways" is certain.
        eq, other = (a, b) if a.kind == "equation" else (b, a)
        if other.kind == "scalar" and decide_fast(_rhs(eq), other) is False:
            return False
        return None
    if a.kind == "matrix" or b.kind == "matrix":
        if a.kind != b.kind or a.shape != b.shape:
            return False
        if any(
            x is not None and y is not None and _differ(x, y) for x, y in zip(a.items, b.items, strict=True)
        ):
            return False
        if any(x is not None and x.symbols for x in a.items + b.items):
            return None
        return _all_equal(a.items, b.items)
    if a.kind == "scalar" and b.kind == "scalar":
        return _scalar_equal(a.items[0], b.items[0])  # type: ignore[arg-type]
    if a.kind == "interval" or b.kind == "interval":
        # infinite ends: only their sign matters for the value sets
        if a.kind == b.kind == "interval":
            if a.shape[2:] != b.shape[2:]:
                return False
            if _value_sets_differ(a.items, b.items):
                return False
            if a.shape[:2] != b.shape[:2]:
                # same ends, different brackets; only for real intervals (start < end):
                # latex2sympy makes "(5,3)" and "[5,3]" the same Tuple
                return False if _genuine(a) and _genuine(b) else None
            if not (_genuine(a) and _genuine(b)):
                # the same brackets: both Intervals, or both Tuples ("(5,3)"), equal when their
                # ends are
                return True if _all_equal(a.items, b.items) is True else None
            return _all_equal(a.items, b.items)
        other = b if a.kind == "interval" else a
        iv = a if a.kind == "interval" else b
        if any(s != 0 for s in iv.shape[2:]):
            return False  # an infinite interval is not a finite set, tuple or number
        if _value_sets_differ(iv.items, other.items):
            return False
        return None
    if _value_sets_differ(a.items, b.items):
        return False
    if a.kind == b.kind and len(a.items) == len(b.items):
        if a.kind == "tuple":
            return _all_equal(a.items, b.items)
        if a.kind == "set" and all(x is not None and not x.symbols for x in a.items + b.items):
            return _set_equal(a.items, b.items)  # type: ignore[arg-type]
    return None


def _membership(a: Fingerprint, b: Fingerprint) -> bool | None:
    """``x \\in I`` (Eq(x, I) for math-verify): against a non-equation, I is compared with it; against
    ``y \\in J``, the two Eq are equal exactly when x is y and I is J with the same exact ends."""
    if a.kind != "in":
        a, b = b, a
    ia = a.shape[1]
    if b.kind in ("assign", "equation"):
        return None
    if b.kind != "in":
        return decide_fast(ia, b)  # type: ignore[arg-type]
    ib = b.shape[1]
    same = decide_fast(ia, ib)  # type: ignore[arg-type]
    if a.shape[0] != b.shape[0] or same is False:
        return False
    exact = all(x is None or x.exact is not None for x in ia.items + ib.items)  # type: ignore[attr-defined]
    return True if same is True and exact else None


def _unions(a: Fingerprint, b: Fingerprint) -> bool | None:
    """Unions of intervals (and real intervals with rational ends): math-verify compares the sets
    sympy builds (equal, or an empty symmetric difference), so equal covered sets are equal and
    different ones different. Against anything else: undecided (an open interval may equal a
    two-element set)."""
    spans = []
    for f in (a, b):
        if f.kind == "union":
            spans.append(f.shape)
        elif f.kind == "interval" and _genuine(f) and all(x is None or x.exact is not None for x in f.items):
            lo, hi = f.items
            spans.append(
                (
                    (
                        float("-inf") if lo is None else lo.exact,
                        f.shape[0] == "[",
                        float("inf") if hi is None else hi.exact,
                        f.shape[1] == "]",
                    ),
                )
            )
        else:
            return None
    return spans[0] == spans[1]


def _rhs(a: Fingerprint) -> Fingerprint:
    return Fingerprint("scalar", (a.items[0],)) if a.kind in ("assign", "equation") else a


def _equations(da: Scalar, db: Scalar) -> bool | None:
    """Two assignments ``x = f``, ``y = g`` through their differences da = x - f, db = y - g:
    math-verify calls them equal when da equals db or -db (its relational comparison), or when
    ``solve`` gives the same solutions. Two linear equations without decimals whose differences
    are not proportional have different solution sets: different."""
    if _scalar_equal(da, db) is True or _scalar_equal(da, neg(db)) is True:
        return True
    linear = all(d.deg is not None and d.deg <= 1 and not d.floats and not _constant(d) for d in (da, db))
    if linear and _not_proportional(da, db):
        return False
    return None


def _not_proportional(a: Scalar, b: Scalar) -> bool:
    """a / b clearly takes two different values at the sample points."""
    if any(abs(y) < _DIFF_ABS for y in b.vals):
        return False
    ratios = [x / y for x, y in zip(a.vals, b.vals, strict=True)]
    scale = max(abs(r) for r in ratios)
    return any(abs(r - ratios[0]) > _DIFF_REL * max(scale, 1) for r in ratios[1:])


def _genuine(iv: Fingerprint) -> bool:
    """An interval latex2sympy keeps as an Interval: constant real ends, start < end."""
    lo, hi = iv.items
    if any(x is not None and (x.symbols or any(abs(v.imag) > _EQ_TOL for v in x.vals)) for x in (lo, hi)):
        return False
    if lo is None or hi is None:
        return (lo is None and iv.shape[2] == -1 or lo is not None) and (
            hi is None and iv.shape[3] == 1 or hi is not None
        )
    return bool(hi.vals[0].real - lo.vals[0].real > _DIFF_ABS)


def _set_equal(xs: tuple[Scalar, ...], ys: tuple[Scalar, ...]) -> bool | None:
    """Sets of constants: each element equal to exactly one of the other's (math-verify sorts both
    by value and compares in order)."""
    if len({_key(x) for x in xs}) != len(xs) or len({_key(y) for y in ys}) != len(ys):
        return None  # duplicates: FiniteSet collapses them
    for x in xs:
        matches = [y for y in ys if not _differ(x, y)]
        if len(matches) != 1 or _scalar_equal(x, matches[0]) is not True:
            return None
    return True


def _key(x: Scalar) -> str:
    v = x.vals[0]
    return CTX.nstr(v, 12)  # type: ignore[no-any-return]
