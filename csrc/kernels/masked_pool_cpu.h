// The CPU kernels of masked_pool (masked_pool_cpu.cpp), over the params of
// masked_pool_params.h. Plain C++ (no torch).
#pragma once

#include <cstdint>

#include "kernels/masked_pool_params.h"

namespace dynbatch {

// CPU, for the types of DYNBATCH_CPU_TYPES (dtypes.h): sequences [begin, end) of the batch
// (independent ranges, which the op layer runs in parallel).
template <typename scalar_t>
void masked_pool_forward_cpu(const MaskedPoolForwardParams<scalar_t>& params, int64_t begin,
                             int64_t end);
template <typename scalar_t>
void masked_pool_backward_cpu(const MaskedPoolBackwardParams<scalar_t>& params, int64_t begin,
                              int64_t end);

}  // namespace dynbatch
