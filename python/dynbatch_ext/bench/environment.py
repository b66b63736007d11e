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
