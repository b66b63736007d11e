"""Builds C++ programs against tests/cuda_emulator, which runs CUDA code on the CPU: the kernels of
csrc/kernels and host programs such as csrc/bench/*.cu (see cuda_emulator.hpp)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EMULATOR = ROOT / "tests" / "cuda_emulator"
KERNELS = sorted((ROOT / "csrc" / "kernels").glob("*.cu"))
SANITIZE = ["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer"]  # fmt: skip


def build(binary: Path, cuda=(), cpp=(), sanitize: bool = False) -> Path:
    """g++ builds `cuda` (.cu files, compiled as C++) and `cpp` sources into `binary`, with the
    emulator's CUDA headers; under ASan and UBSan if `sanitize`. Skips the calling test where there
    is no g++ (or no sanitizer runtime); fails it with the compiler's message otherwise."""
    compiler = shutil.which("g++")
    if compiler is None:
        pytest.skip("no g++ to build CUDA code for the CPU emulator")
    command = [compiler, "-std=c++20", *(SANITIZE if sanitize else []), f"-I{EMULATOR / 'include'}",
               f"-I{ROOT / 'csrc'}", "-x", "c++", *map(str, cuda), "-x", "none", *map(str, cpp),
               "-o", str(binary)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0 and sanitize and "asan" in done.stderr.lower():
        pytest.skip(f"this compiler has no AddressSanitizer runtime: {done.stderr[-300:]}")
    assert done.returncode == 0, done.stderr[-5000:]
    return binary
