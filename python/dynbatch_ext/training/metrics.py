"""The run's metrics log (JSON lines) and its plot of loss and accuracy per step."""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..plotting import pyplot


class MetricsLog:
    """Appends one JSON object a line. On resume, drops what came after the checkpoint, so the
    log reads as if the run had never stopped; the file is rewritten atomically, so a run killed
    meanwhile leaves the old one whole."""

    def __init__(self, path: Path, *, enabled: bool = True, resume_step: int | None = None,
                 resume_epoch: int = 0):  # fmt: skip
        self.path, self.enabled = path, enabled
        if not enabled:
            return
        kept = []
        if resume_step is not None and path.is_file():
            for record in read_log(path):
                if record["kind"] == "step" and record["step"] > resume_step:
                    continue
                if record["kind"] == "epoch" and record["epoch"] >= resume_epoch:
                    continue
                kept.append(json.dumps(record))
        partial = path.with_suffix(".partial")
        partial.write_text("".join(line + "\n" for line in kept))
        os.replace(partial, path)

    def write(self, kind: str, **fields) -> None:
        if self.enabled:
            with self.path.open("a") as handle:
                handle.write(json.dumps({"kind": kind, **fields}) + "\n")


def read_log(path: Path) -> list[dict]:
    """The records of a metrics log. A last line cut short (the run was killed while appending
    it) is left out; any other line that is not a record is a ValueError naming the file."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or "kind" not in record:
                raise ValueError("not a record")
        except ValueError as error:
            if number == len(lines):
                break  # torn by a kill mid-write: the checkpoint predates it anyway
            raise ValueError(f"{path}:{number}: not a metrics record ({error}); the log is "
                             "damaged: move it away to resume without it") from None  # fmt: skip
        records.append(record)
    return records


def smooth(values: list[float], span: int) -> list[float]:
    """Exponential moving average with the given span (in points)."""
    out, level, alpha = [], None, 2.0 / (span + 1)
    for v in values:
        level = v if level is None else level + alpha * (v - level)
        out.append(level)
    return out


def run_pyplot():
    """matplotlib.pyplot for training.png, or MissingExtra saying how to install it or skip it."""
    return pyplot("train-esim's training.png", instead="pass --no-plot (TrainConfig(plot=False))")


def plot_run(records: list[dict], path: Path, title: str = "train-esim") -> Path:
    """Loss and accuracy per step (raw and smoothed), validation accuracy at each epoch's end."""
    plt = run_pyplot()

    steps = [r for r in records if r["kind"] == "step"]
    epochs = [r for r in records if r["kind"] == "epoch"]
    x = [r["step"] for r in steps]
    span = max(5, len(steps) // 50)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, label in ((ax_loss, "loss", "training loss"), (ax_acc, "accuracy", "training accuracy")):
        values = [r[key] for r in steps]
        ax.plot(x, values, color="tab:blue", alpha=0.25, linewidth=0.8)
        ax.plot(x, smooth(values, span), color="tab:blue", label=f"{label} (EMA {span})")
        ax.set_xlabel("optimizer step")
    ax_acc.plot([r["step"] for r in epochs], [r["valid_accuracy"] for r in epochs], "o-",
                color="tab:orange", label="validation accuracy")  # fmt: skip
    ax_loss.set_ylabel("cross-entropy")
    ax_acc.set_ylabel("accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
