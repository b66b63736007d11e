"""The CUDA kernels (csrc/kernels/*.cu) run on the CPU, under AddressSanitizer and UBSan.

tests/cuda_emulator runs every block's threads as fibers with real barriers and warp shuffles,
and compares each output with a float64 reference in float, half and bfloat16 (ragged batches,
empty texts, lengths past a tile, d = 600, NaN in all padding, poisoned outputs). On a machine
without a GPU this is what runs the kernels' code: indexing, masking, barriers, out-of-bounds
reads. Races, the memory model and speed need a GPU (scripts/gpu_check.sh).
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EMULATOR = ROOT / "tests" / "cuda_emulator"


def test_cuda_kernels_match_the_float64_reference_on_the_cpu_emulator(tmp_path):
    compiler = shutil.which("g++")
    if compiler is None:
        pytest.skip("no g++ to build the CUDA kernels for the CPU emulator")
    binary = tmp_path / "run_kernels"
    kernels = [str(p) for p in sorted((ROOT / "csrc" / "kernels").glob("*.cu"))]
    build = subprocess.run(
        [compiler, "-std=c++20", "-O1", "-g", "-fsanitize=address,undefined",
         "-fno-sanitize-recover=all", "-fno-omit-frame-pointer",
         f"-I{EMULATOR / 'include'}", f"-I{ROOT / 'csrc'}", "-x", "c++", *kernels, "-x", "none",
         str(EMULATOR / "run_kernels.cpp"), "-o", str(binary)],
        capture_output=True, text=True,
    )  # fmt: skip
    if build.returncode != 0 and "asan" in build.stderr.lower():
        pytest.skip(f"this compiler has no AddressSanitizer runtime: {build.stderr[-300:]}")
    assert build.returncode == 0, build.stderr[-5000:]
    run = subprocess.run([str(binary)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, (run.stdout + run.stderr)[-5000:]
    assert run.stdout.strip().endswith(" checks, 0 failures"), run.stdout[-2000:]
    assert int(run.stdout.split()[-4]) >= 120  # every case ran


DIVERGENT = r"""
#include "cuda_runtime.h"
__global__ void divergent(float* out) {  // half a warp at the block barrier, half at a shuffle
  if (threadIdx.x < 16) __syncthreads();
  else out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.f, 1);
}
int main() { float out[32]; DYNBATCH_LAUNCH(divergent, dim3(1), dim3(32), 0, nullptr, out); }
"""


def test_the_emulator_stops_on_barriers_cuda_would_hang_on(tmp_path):
    compiler = shutil.which("g++")
    if compiler is None:
        pytest.skip("no g++ to build the emulator")
    (tmp_path / "divergent.cpp").write_text(DIVERGENT)
    subprocess.run([compiler, "-std=c++20", f"-I{EMULATOR / 'include'}", "divergent.cpp", "-o",
                    "divergent"], cwd=tmp_path, check=True)  # fmt: skip
    run = subprocess.run([str(tmp_path / "divergent")], capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "deadlock: threads wait at different barriers" in run.stderr


BAD_LENGTH = r"""
#include <vector>
#include "kernels/cuda_common.cuh"
#include "kernels/soft_align_cuda.h"
int main() {  // the backward ops skip the host check of lengths: the kernel must stop instead
  std::vector<float> x(2 * 3 * 4, 0.f), out(x.size());
  std::vector<int64_t> len_a = {3, 4}, len_b = {1, 2};  // len_a[1] = 4 > max_len_a = 3
  dynbatch::SoftAlignBackwardParams<float> p;
  p.a = p.b = p.grad_a_tilde = p.grad_b_tilde = x.data();
  p.grad_a = p.grad_b = out.data();
  p.len_a = len_a.data(), p.len_b = len_b.data();
  p.batch = 2, p.max_len_a = 3, p.max_len_b = 3, p.dim = 4;
  int64_t floats = 0;
  dynbatch::soft_align_backward_workspace(2, 3, 3, &floats);
  std::vector<float> workspace(floats);
  return dynbatch::launch_soft_align_backward(p, workspace.data(), nullptr);
}
"""


def test_a_kernel_given_a_length_past_its_padding_stops_with_a_message(tmp_path):
    compiler = shutil.which("g++")
    if compiler is None:
        pytest.skip("no g++ to build the CUDA kernels for the CPU emulator")
    (tmp_path / "bad_length.cpp").write_text(BAD_LENGTH)
    kernels = [str(p) for p in sorted((ROOT / "csrc" / "kernels").glob("*.cu"))]
    subprocess.run([compiler, "-std=c++20", f"-I{EMULATOR / 'include'}", f"-I{ROOT / 'csrc'}",
                    "-x", "c++", *kernels, "-x", "none", "bad_length.cpp", "-o", "bad_length"],
                   cwd=tmp_path, check=True)  # fmt: skip
    run = subprocess.run([str(tmp_path / "bad_length")], capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "dynbatch_ext: len_a[1] = 4 is outside [0, 3]" in run.stdout
    assert "__trap(): the kernel stopped" in run.stderr
