// ESIM local inference: masked soft alignment in both directions. Plain C++ (no torch): the
// params structs every backend takes, and the CPU kernels (soft_align_cpu.cpp; the CUDA
// launchers are in soft_align_cuda.h).
//
// For pair n with valid lengths la = len_a[n], lb = len_b[n]:
//   e[i, j]    = a[i] . b[j]                        i < la, j < lb  (no scaling)
//   a_tilde[i] = sum_j softmax_j(e[i, :]) b[j]      rows i >= la, and all rows when lb = 0: 0
//   b_tilde[j] = sum_i softmax_i(e[:, j]) a[i]      rows j >= lb, and all rows when la = 0: 0
// Padded scores take no part in the max or the sum: they are never computed.
#pragma once

#include <cstdint>
#include <functional>

#include "kernels/cpu_types.h"

namespace dynbatch {

// All tensors contiguous, row-major. a: (batch, max_len_a, dim), b: (batch, max_len_b, dim),
// len_a, len_b: (batch,) with 0 <= len_a[n] <= max_len_a (checked by the op before any kernel).
template <typename scalar_t>
struct SoftAlignParams {
  const scalar_t* a = nullptr;
  const scalar_t* b = nullptr;
  const int64_t* len_a = nullptr;
  const int64_t* len_b = nullptr;
  int64_t batch = 0;
  int64_t max_len_a = 0;
  int64_t max_len_b = 0;
  int64_t dim = 0;
};

template <typename scalar_t>
struct SoftAlignForwardParams : SoftAlignParams<scalar_t> {
  scalar_t* a_tilde = nullptr;  // (batch, max_len_a, dim)
  scalar_t* b_tilde = nullptr;  // (batch, max_len_b, dim)
};

template <typename scalar_t>
struct SoftAlignBackwardParams : SoftAlignParams<scalar_t> {
  const scalar_t* grad_a_tilde = nullptr;  // (batch, max_len_a, dim)
  const scalar_t* grad_b_tilde = nullptr;  // (batch, max_len_b, dim)
  scalar_t* grad_a = nullptr;              // (batch, max_len_a, dim)
  scalar_t* grad_b = nullptr;              // (batch, max_len_b, dim)
};

// A matrix product the CPU kernels hand long blocks to: c (m x n) = op(a) op(b), or c += it
// where `accumulate`; row-major with row strides lda, ldb, ldc, where op(x) is x transposed if
// the flag says so and x itself otherwise. The op layer passes torch's (a BLAS, blocked for
// cache and registers).
template <typename C>
using CpuMatMul = void (*)(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
                           const C* a, int64_t lda, const C* b, int64_t ldb, C* c, int64_t ldc,
                           bool accumulate);

// Runs body(begin, end) over sub-ranges that together cover [0, count), at once on several
// threads where it can, each at least `grain` long but the last. The op layer passes torch's
// thread pool, which runs the body inline when called from inside it.
using CpuParallelFor = void (*)(int64_t count, int64_t grain,
                                const std::function<void(int64_t, int64_t)>& body);

// What the op layer lends the CPU kernels, so that they stay torch-free: a matrix product for
// long blocks, and a thread pool for the lines of one pair's block (for a batch of fewer pairs
// than threads, whose pairs the op layer then runs one after another). Null: every block on the
// primitives of vector_math_cpu.h; one thread per range of pairs.
template <typename C>
struct CpuRuntime {
  CpuMatMul<C> matmul = nullptr;
  CpuParallelFor parallel_for = nullptr;
};

// CPU, for the types of DYNBATCH_CPU_TYPES (dtypes.h): pairs [begin, end) of the batch, each on
// its valid la x lb block: with the primitives of vector_math_cpu.h, or, for blocks of at least
// kCpuMatMulMinWork multiply-adds (la * lb * dim), through `runtime.matmul`. Ranges are
// independent, so the op layer may run them in parallel.
constexpr int64_t kCpuMatMulMinWork = int64_t{1} << 15;
template <typename scalar_t>
void soft_align_forward_cpu(const SoftAlignForwardParams<scalar_t>& params, int64_t begin,
                            int64_t end, const CpuRuntime<compute_t<scalar_t>>& runtime);
template <typename scalar_t>
void soft_align_backward_cpu(const SoftAlignBackwardParams<scalar_t>& params, int64_t begin,
                             int64_t end, const CpuRuntime<compute_t<scalar_t>>& runtime);

}  // namespace dynbatch
