// ESIM local inference: masked soft alignment in both directions. Plain C++ (no torch): the
// params structs every backend takes (the CPU kernels: soft_align_cpu.h; the CUDA launchers:
// soft_align_cuda.h).
//
// For pair n with valid lengths la = len_a[n], lb = len_b[n]:
//   e[i, j]    = a[i] . b[j]                        i < la, j < lb  (no scaling)
//   a_tilde[i] = sum_j softmax_j(e[i, :]) b[j]      rows i >= la, and all rows when lb = 0: 0
//   b_tilde[j] = sum_i softmax_i(e[:, j]) a[i]      rows j >= lb, and all rows when la = 0: 0
// Padded scores take no part in the max or the sum: they are never computed.
#pragma once

#include <cstdint>

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

}  // namespace dynbatch
