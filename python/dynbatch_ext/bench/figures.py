"""matplotlib.pyplot for the bench's plots: an optional extra, checked before measuring starts."""
from __future__ import annotations

from pathlib import Path

from .. import plotting


def pyplot():
    return plotting.pyplot("bench (its plots)")


def save(fig, path: Path) -> Path:
    """Lays out, writes (PNG, 110 dpi) and closes a figure."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    return path
