"""The run's metrics log (JSON lines) and its plot of loss and accuracy per step."""
from __future__ import annotations

import json
from pathlib import Path

from ..plotting import pyplot


class MetricsLog:
    """Appends one JSON object a line. On resume, drops what came after the checkpoint, so the
    log reads as if the run had never stopped."""

    def __init__(self, path: Path, *, enabled: bool = True, resume_step: int | None = None,
                 resume_epoch: int = 0):  # fmt: skip
        self.path, self.enabled = path, enabled
        if not enabled:
            return
        kept = []
        if resume_step is not None and path.is_file():
            for line in path.read_text().splitlines():
                record = json.loads(line)
                if record["kind"] == "step" and record["step"] > resume_step:
                    continue
                if record["kind"] == "epoch" and record["epoch"] >= resume_epoch:
                    continue
                kept.append(line)
        path.write_text("".join(line + "\n" for line in kept))

    def write(self, kind: str, **fields) -> None:
        if self.enabled:
            with self.path.open("a") as handle:
                handle.write(json.dumps({"kind": kind, **fields}) + "\n")


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


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
