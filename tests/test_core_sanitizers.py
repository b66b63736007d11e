"""The pure C++ core under AddressSanitizer and UBSan, on random and malformed inputs."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_core_survives_random_inputs_under_sanitizers(tmp_path):
    compiler = shutil.which("g++") or shutil.which("clang++")
    if compiler is None:
        pytest.skip("no g++ or clang++ to build the sanitizer stress test")
    binary = tmp_path / "stress_core"
    sources = sorted(str(p) for p in (ROOT / "csrc" / "core").glob("*.cpp"))
    build = subprocess.run(
        [compiler, "-std=c++17", "-O1", "-g", "-fsanitize=address,undefined",
         "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", f"-I{ROOT / 'csrc'}",
         *sources, str(ROOT / "tests" / "cpp" / "stress_core.cpp"), "-o", str(binary)],
        capture_output=True, text=True,
    )  # fmt: skip
    if build.returncode != 0 and "asan" in build.stderr.lower():
        pytest.skip(f"this compiler has no AddressSanitizer runtime: {build.stderr[-300:]}")
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(binary), "6000"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert " 0 failures" in run.stdout
