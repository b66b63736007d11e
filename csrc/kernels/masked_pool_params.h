// ESIM pooling: [mean over valid positions; max over valid positions], zeros for length 0.
// The max's gradient goes to the first arg-max; a NaN counts as the largest value (as torch.max).
// Plain C++ (no torch): the params structs every backend takes (the CPU kernels:
// masked_pool_cpu.h; the CUDA launchers: masked_pool_cuda.h).
#pragma once

#include <cstdint>

namespace dynbatch {

// x: (batch, max_len, dim) contiguous; len: (batch,) with 0 <= len[n] <= max_len.
template <typename scalar_t>
struct MaskedPoolParams {
  const scalar_t* x = nullptr;
  const int64_t* len = nullptr;
  int64_t batch = 0;
  int64_t max_len = 0;
  int64_t dim = 0;
};

template <typename scalar_t>
struct MaskedPoolForwardParams : MaskedPoolParams<scalar_t> {
  scalar_t* out = nullptr;  // (batch, 2 * dim): mean, then max
};

template <typename scalar_t>
struct MaskedPoolBackwardParams : MaskedPoolParams<scalar_t> {
  const scalar_t* grad_out = nullptr;  // (batch, 2 * dim)
  scalar_t* grad_x = nullptr;          // (batch, max_len, dim)
};

}  // namespace dynbatch
