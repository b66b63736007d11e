"""A target a measured figure is held to, recorded with the figure in results.json, and how a
verdict on it reads."""
from __future__ import annotations

_MEETS = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, "==": lambda a, b: a == b}


def target(measured, op: str, value) -> dict:
    """{"op", "value", "measured", "met"} for `measured op value`, e.g. target(0.97, ">=", 0.96)."""
    return {"op": op, "value": value, "measured": measured, "met": _MEETS[op](measured, value)}


def verdict(t: dict) -> str:
    return "met" if t["met"] else "MISSED"


def target_line(name: str, t: dict, digits: int = 3, unit: str = "") -> str:
    """A text table's line: "  target NAME >= 0.9: 0.913 (met)"."""
    return f"  target {name} {t['op']} {t['value']}{unit}: {t['measured']:.{digits}f}{unit} ({verdict(t)})"
