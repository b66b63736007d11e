// The torch dtypes of the CUDA storage types, for DYNBATCH_DISPATCH over DYNBATCH_CUDA_TYPES,
// and the CUDA runtime pieces every CUDA op file uses.
#pragma once

#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "ops/dispatch.h"

namespace dynbatch {

template <>
struct ScalarTypeOf<__half> : std::integral_constant<at::ScalarType, at::kHalf> {};
template <>
struct ScalarTypeOf<__nv_bfloat16> : std::integral_constant<at::ScalarType, at::kBFloat16> {};

}  // namespace dynbatch
