"""What a padded batch costs: `CostModel` and its presets.

A batch pads every field to its longest member; its cost is

    B * (constant + linear * L + quadratic * L**2)                    single texts
    B * (constant + linear * (Lp + Lh) + quadratic * Lp * Lh)         pairs (premise, hypothesis)

with lengths rounded up to `pad_multiple`.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Union


@dataclasses.dataclass(frozen=True)
class CostModel:
    """Cost of one padded sample: `constant + linear * L + quadratic * L**2` (pairs: see module doc).

    Presets: `"count"` = CostModel(constant=1) (a fixed batch size), `"tokens"` = CostModel(linear=1)
    (padded tokens), `"quadratic"` = CostModel(quadratic=1) (attention memory, `B * L**2`).
    """

    constant: float = 0.0
    linear: float = 0.0
    quadratic: float = 0.0

    def __post_init__(self):
        for name in ("constant", "linear", "quadratic"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, numbers.Real)
                or not math.isfinite(value)
                or value < 0
            ):
                raise ValueError(f"CostModel.{name} must be a finite number >= 0, got {value!r}")
        if self.constant == self.linear == self.quadratic == 0:
            raise ValueError("CostModel is all zeros: every batch would be free")

    @property
    def coefficients(self) -> tuple[float, float, float]:
        return (float(self.constant), float(self.linear), float(self.quadratic))


COST_PRESETS: dict[str, CostModel] = {
    "count": CostModel(constant=1),
    "tokens": CostModel(linear=1),
    "quadratic": CostModel(quadratic=1),
}

Cost = Union[str, CostModel]


def resolve_cost(cost: Cost) -> CostModel:
    """A CostModel from a preset name or a CostModel."""
    if isinstance(cost, CostModel):
        return cost
    if isinstance(cost, str) and cost in COST_PRESETS:
        return COST_PRESETS[cost]
    raise ValueError(f"cost must be one of {sorted(COST_PRESETS)} or a CostModel, got {cost!r}")
