"""The CUDA kernels (csrc/kernels/*.cu) run on the CPU, under AddressSanitizer and UBSan.

tests/cuda_emulator runs every block's threads as fibers with real barriers and warp shuffles,
and compares each output with a float64 reference in float, half and bfloat16 (ragged batches,
empty texts, lengths past a tile, d = 600, NaN in all padding, poisoned outputs). On a machine
without a GPU this is what runs the kernels' code: indexing, masking, barriers, out-of-bounds
reads. Races, the memory model and speed need a GPU (scripts/gpu_check.sh).
"""
from __future__ import annotations

import re
import subprocess

import pytest
from emulator_build import EMULATOR, KERNELS, ROOT, build
from op_cases import OP_CASES


@pytest.fixture(scope="module")
def emulator_run(tmp_path_factory):
    """One run of every kernel check (several minutes under the sanitizers), shared by the tests."""
    binary = build(tmp_path_factory.mktemp("emulator") / "run_kernels", cuda=KERNELS,
                   cpp=[EMULATOR / "run_kernels.cpp"], sanitize=True)  # fmt: skip
    return subprocess.run([str(binary)], capture_output=True, text=True, timeout=900)


def test_cuda_kernels_match_the_float64_reference_on_the_cpu_emulator(emulator_run):
    run = emulator_run
    assert run.returncode == 0, (run.stdout + run.stderr)[-5000:]
    assert run.stdout.strip().endswith(" checks, 0 failures"), run.stdout[-2000:]
    assert int(run.stdout.split()[-4]) >= 474  # every case ran, each also with saved probabilities
    # the split path ran on the cases meant for it (3 per type), compared bit for bit there with
    # the per-pair kernels (the saved-probabilities variant is always one block per pair)
    assert int(run.stdout.split("soft_align runs split")[0].split()[-1]) >= 9, run.stdout[-2000:]


@pytest.mark.parametrize("case", OP_CASES)
def test_every_op_with_a_cuda_kernel_is_checked_on_the_emulator_in_each_type(case, emulator_run):
    if not (ROOT / "csrc" / "kernels" / f"{case.name}.cu").exists():
        pytest.skip(f"{case.name} has no CUDA kernel (csrc/kernels/{case.name}.cu)")
    counts = dict(re.findall(r"^(\S+ \S+): (\d+) checks$", emulator_run.stdout, re.MULTILINE))
    for dtype in ("float", "half", "bfloat16"):
        assert int(counts.get(f"{case.name} {dtype}", 0)) > 0, (
            f"tests/cuda_emulator/run_kernels.cpp checks no {case.name} kernel in {dtype}: add its"
            f" cases there (each check named '{case.name} ...')")


DIVERGENT = r"""
#include "cuda_runtime.h"
__global__ void divergent(float* out) {  // half a warp at the block barrier, half at a shuffle
  if (threadIdx.x < 16) __syncthreads();
  else out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.f, 1);
}
int main() { float out[32]; DYNBATCH_LAUNCH(divergent, dim3(1), dim3(32), 0, nullptr, out); }
"""


def test_the_emulator_stops_on_barriers_cuda_would_hang_on(tmp_path):
    (tmp_path / "divergent.cpp").write_text(DIVERGENT)
    build(tmp_path / "divergent", cpp=[tmp_path / "divergent.cpp"])
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
    (tmp_path / "bad_length.cpp").write_text(BAD_LENGTH)
    build(tmp_path / "bad_length", cuda=KERNELS, cpp=[tmp_path / "bad_length.cpp"])
    run = subprocess.run([str(tmp_path / "bad_length")], capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "dynbatch_ext: len_a[1] = 4 is outside [0, 3]" in run.stdout
    assert "__trap(): the kernel stopped" in run.stderr
