// The CUDA storage type of each torch dtype the CUDA kernels take, and one dispatch over them.
#pragma once

#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace dynbatch {

template <typename scalar_t>
struct CudaStorage {
  using type = scalar_t;  // float
};
template <>
struct CudaStorage<at::Half> {
  using type = __half;
};
template <>
struct CudaStorage<at::BFloat16> {
  using type = __nv_bfloat16;
};

}  // namespace dynbatch

// Runs the body with `kernel_t` bound to the CUDA storage type of `dtype` (float32/16, bf16).
#define DYNBATCH_DISPATCH_CUDA(dtype, name, ...)                                       \
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, name, [&] {         \
    using kernel_t = typename ::dynbatch::CudaStorage<scalar_t>::type;                 \
    __VA_ARGS__();                                                                     \
  })
