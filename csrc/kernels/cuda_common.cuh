// Device helpers shared by the .cu kernels: the launch and shared-memory macros, float
// conversions of the storage types and warp reductions. No torch header.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>

// Every kernel launch, and every kernel's dynamic shared memory, goes through these macros, so
// that tests/cuda_emulator can run the kernels on the CPU (it defines them first); with nvcc they
// are the usual triple-chevron launch and extern __shared__ array.
#ifndef DYNBATCH_LAUNCH
#define DYNBATCH_LAUNCH(kernel, grid, block, shared_bytes, stream, ...) \
  kernel<<<(grid), (block), (shared_bytes), (stream)>>>(__VA_ARGS__)
#endif
#ifndef DYNBATCH_DYNAMIC_SHARED
#define DYNBATCH_DYNAMIC_SHARED(type, name) extern __shared__ type name[]
#endif

namespace dynbatch {
namespace cuda {

// Storage types are float, __half and __nv_bfloat16; all arithmetic is in float.
__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// Stops the kernel (the launch then fails with an unspecified launch failure, reported at the
// next synchronisation) when a length is outside [0, max_len]. The forward ops check lengths on
// the host; the backward ops do not (that would cost a device sync, see ops/checks.h), so this
// keeps a direct call with bad lengths from reading or writing out of bounds.
__device__ __forceinline__ void require_length(int64_t len, int64_t max_len, const char* name,
                                               int64_t n) {
  if (len >= 0 && len <= max_len) return;
  if (threadIdx.x == 0 && threadIdx.y == 0)
    printf("dynbatch_ext: %s[%lld] = %lld is outside [0, %lld]: pass the lengths the forward "
           "was called with\n",
           name, static_cast<long long>(n), static_cast<long long>(len),
           static_cast<long long>(max_len));
  __trap();
}

__device__ __forceinline__ float warp_max(float v) {
  for (int offset = 16; offset > 0; offset >>= 1)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

}  // namespace cuda
}  // namespace dynbatch
