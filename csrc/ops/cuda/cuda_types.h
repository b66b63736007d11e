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

// Runs the body with `kernel_t` bound to the CUDA storage type of `dtype`: float32, float16 and
// bfloat16 only, the types the .cu files instantiate (any other case here would reference a
// launcher that does not exist, and the module would fail to load).
#define DYNBATCH_CUDA_CASE(enum_type, ...)                                           \
  AT_DISPATCH_CASE(enum_type, [&] {                                                  \
    using kernel_t = typename ::dynbatch::CudaStorage<scalar_t>::type;               \
    __VA_ARGS__();                                                                   \
  })
#define DYNBATCH_DISPATCH_CUDA(dtype, name, ...)                                     \
  AT_DISPATCH_SWITCH(dtype, name, DYNBATCH_CUDA_CASE(at::kFloat, __VA_ARGS__)        \
                     DYNBATCH_CUDA_CASE(at::kHalf, __VA_ARGS__)                      \
                     DYNBATCH_CUDA_CASE(at::kBFloat16, __VA_ARGS__))
