"""What a figure was measured on: machine, device and versions, recorded with every result."""
from __future__ import annotations

import datetime
import os
import platform
import subprocess

import numpy as np
import torch

from .. import __version__


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe(device: str = "cpu") -> dict:
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "dynbatch_ext": __version__,
        "device": device,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        properties = torch.cuda.get_device_properties(device)
        info["gpu"] = properties.name
        info["gpu_memory_bytes"] = properties.total_memory
        info["compute_capability"] = f"{properties.major}.{properties.minor}"
        info["cuda"] = torch.version.cuda
        index = torch.device(device).index
        info["driver"] = nvidia_driver(torch.cuda.current_device() if index is None else index)
    return info


def nvidia_driver(index: int) -> str | None:
    """The NVIDIA driver's version, as nvidia-smi reports it (None where it cannot be asked)."""
    try:
        done = subprocess.run(["nvidia-smi", f"--id={index}", "--query-gpu=driver_version",
                               "--format=csv,noheader"], capture_output=True, text=True,
                              timeout=60, check=True)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def _cpu_jiffies() -> tuple[int, int] | None:
    """(busy jiffies of the whole machine, of this process and its finished children)."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = [int(v) for v in handle.readline().split()[1:]]
        with open("/proc/self/stat", encoding="ascii") as handle:
            mine = handle.read().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle, sum(int(v) for v in mine[11:15])  # utime stime cutime cstime


# Where other processes took more than this share of the machine's CPU time during a
# measurement, its timings are marked as measured under load.
FOREIGN_LOAD_LIMIT = 0.15


class LoadMeter:
    """How much of the machine's CPU time other processes took while something was measured
    (Linux: /proc/stat against this process's own time), so that a ratio measured under load
    is marked as such instead of read as the package's."""

    def __init__(self):
        self._start, self._wall = _cpu_jiffies(), None

    def stop(self, seconds: float) -> dict | None:
        end = _cpu_jiffies()
        if self._start is None or end is None or seconds <= 0:
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        machine = (end[0] - self._start[0]) / ticks
        ours = (end[1] - self._start[1]) / ticks
        share = max(0.0, machine - ours) / (seconds * (os.cpu_count() or 1))
        return {"foreign_cpu_share": share, "under_load": share > FOREIGN_LOAD_LIMIT}
