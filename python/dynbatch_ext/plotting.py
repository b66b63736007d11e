"""matplotlib for the applications' plots (train-esim, bench): an optional dependency, installed
with `pip install 'dynbatch_ext[plot]'`; the library itself never plots."""
from __future__ import annotations

INSTALL = "pip install 'dynbatch_ext[plot]' (or pip install matplotlib)"


class MissingExtra(ImportError):
    """An optional dependency that what was asked for needs is not installed."""


def pyplot(what: str, instead: str = ""):
    """matplotlib.pyplot on the Agg backend (files, no screen). Without matplotlib, MissingExtra
    (an ImportError) saying that `what` needs it, how to install it, and `instead` (another way,
    if there is one)."""
    try:
        import matplotlib
    except ImportError:
        alternative = f", or {instead}" if instead else ""
        raise MissingExtra(f"{what} needs matplotlib, an optional dependency of dynbatch_ext: "
                          f"{INSTALL}{alternative}") from None  # fmt: skip
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
