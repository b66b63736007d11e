// Device helpers shared by the .cu kernels: float conversions of the storage types, warp
// reductions, and a small batched GEMM over each pair's valid block. No torch header.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

// Every kernel launch goes through this macro, so that tests/cuda_emulator can run the kernels
// on the CPU (it defines the macro first); with nvcc it is the usual triple-chevron launch.
#ifndef DYNBATCH_LAUNCH
#define DYNBATCH_LAUNCH(kernel, grid, block, stream, ...) \
  kernel<<<(grid), (block), 0, (stream)>>>(__VA_ARGS__)
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

__device__ __forceinline__ float warp_max(float v) {
  for (int offset = 16; offset > 0; offset >>= 1)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// A strided view of one operand: element (n, r, c) is at data[n * batch + r * row + c * col].
// Transposes are swapped strides, so one GEMM serves every product of the ops.
template <typename T>
struct Operand {
  const T* data = nullptr;
  int64_t batch = 0, row = 0, col = 0;

  __device__ __forceinline__ float at(int64_t n, int64_t r, int64_t c) const {
    return to_float(data[n * batch + r * row + c * col]);
  }
};

// A valid extent per pair: lengths[n] when given, else the fixed `size` (e.g. the width d).
struct Extent {
  const int64_t* lengths = nullptr;
  int64_t size = 0;  // the padded size when lengths is given

  __device__ __forceinline__ int64_t of(int64_t n) const { return lengths ? lengths[n] : size; }
};

// C(n, m, c) = sum_k A1(n, m, k) B1(n, k, c) [+ A2(n, m, k) B2(n, k, c)] over the valid block
// m < rows(n), c < cols(n), k < inner(n). With zero_rows, C(n, m, c) = 0 for m >= rows(n) (and
// every c < cols.size); other entries outside the valid block are left unwritten, so no one may
// read them. C is row-major with row stride c_row.
template <typename TA, typename TB, typename TC>
struct GemmParams {
  Operand<TA> a1, a2;  // a2.data == nullptr: a single product
  Operand<TB> b1, b2;
  TC* c = nullptr;
  int64_t c_batch = 0, c_row = 0;
  Extent rows, cols, inner;
  int64_t batch = 0;
  bool zero_rows = false;
};

constexpr int kTile = 16;

template <typename TA, typename TB, typename TC>
__global__ void batched_gemm_kernel(GemmParams<TA, TB, TC> p) {
  __shared__ float a_tile[kTile][kTile + 1];
  __shared__ float b_tile[kTile][kTile + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t m = static_cast<int64_t>(blockIdx.y) * kTile + ty;
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kTile + tx;
  for (int64_t n = blockIdx.z; n < p.batch; n += gridDim.z) {
    const int64_t rows = p.rows.of(n), cols = p.cols.of(n), inner = p.inner.of(n);
    const int64_t tile_m = static_cast<int64_t>(blockIdx.y) * kTile;
    const int64_t tile_c = static_cast<int64_t>(blockIdx.x) * kTile;
    if (tile_c >= cols) continue;  // uniform over the block
    if (tile_m >= rows) {          // a padded row tile: zeros or nothing, no product
      if (p.zero_rows && m < p.rows.size && c < cols)
        p.c[n * p.c_batch + m * p.c_row + c] = from_float<TC>(0.f);
      continue;
    }
    float sum = 0.f;
    for (int pass = 0; pass < 2; ++pass) {
      const Operand<TA>& a = pass == 0 ? p.a1 : p.a2;
      const Operand<TB>& b = pass == 0 ? p.b1 : p.b2;
      if (a.data == nullptr) break;
      for (int64_t k0 = 0; k0 < inner; k0 += kTile) {
        // Thread (ty, tx) loads A(m, k0 + tx) and B(k0 + ty, c); outside the block, 0.
        a_tile[ty][tx] = (m < rows && k0 + tx < inner) ? a.at(n, m, k0 + tx) : 0.f;
        b_tile[ty][tx] = (k0 + ty < inner && c < cols) ? b.at(n, k0 + ty, c) : 0.f;
        __syncthreads();
#pragma unroll
        for (int k = 0; k < kTile; ++k) sum += a_tile[ty][k] * b_tile[k][tx];
        __syncthreads();
      }
    }
    if (c < cols) {
      if (m < rows)
        p.c[n * p.c_batch + m * p.c_row + c] = from_float<TC>(sum);
      else if (p.zero_rows && m < p.rows.size)
        p.c[n * p.c_batch + m * p.c_row + c] = from_float<TC>(0.f);
    }
  }
}

// Grid over the padded extents; nothing to launch when one of them is empty.
template <typename TA, typename TB, typename TC>
cudaError_t launch_batched_gemm(const GemmParams<TA, TB, TC>& p, cudaStream_t stream) {
  const int64_t rows = p.rows.size, cols = p.cols.size;
  if (p.batch == 0 || rows == 0 || cols == 0) return cudaSuccess;
  const dim3 block(kTile, kTile);
  const dim3 grid(static_cast<unsigned>((cols + kTile - 1) / kTile),
                  static_cast<unsigned>((rows + kTile - 1) / kTile),
                  static_cast<unsigned>(p.batch < 65535 ? p.batch : 65535));
  const auto kernel = batched_gemm_kernel<TA, TB, TC>;
  DYNBATCH_LAUNCH(kernel, grid, block, stream, p);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace dynbatch
