// The CPU kernels of soft_align (soft_align_cpu.cpp), over the params of soft_align_params.h,
// and what the op layer lends them. Plain C++ (no torch).
#pragma once

#include <cstdint>
#include <functional>

#include "kernels/cpu_types.h"
#include "kernels/soft_align_params.h"

namespace dynbatch {

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
