"""A target a measured figure is held to, recorded with the figure in results.json."""
from __future__ import annotations

_MEETS = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, "==": lambda a, b: a == b}


def target(measured, op: str, value) -> dict:
    """{"op", "value", "measured", "met"} for `measured op value`, e.g. target(0.97, ">=", 0.96)."""
    return {"op": op, "value": value, "measured": measured, "met": _MEETS[op](measured, value)}
