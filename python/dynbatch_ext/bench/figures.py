"""matplotlib.pyplot for the bench's plots: an optional extra, checked before measuring starts."""
from __future__ import annotations

from .. import plotting


def pyplot():
    return plotting.pyplot("bench (its plots)")
