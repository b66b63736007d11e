// masked_pool on CUDA: one thread per (pair, feature), walking the valid positions in order, so
// that reads of consecutive features coalesce and the first arg-max is found without atomics.
// The backward recomputes the arg-max instead of saving (B, d) indices.
#include "kernels/cuda_common.cuh"
#include "kernels/dtypes.h"
#include "kernels/masked_pool_cuda.h"

namespace dynbatch {
namespace {

constexpr int kThreads = 128;

// Sum and first arg-max of x[n, :len, c]; a NaN counts as the largest value (as torch.max).
template <typename T>
__device__ __forceinline__ void sum_and_argmax(const MaskedPoolParams<T>& p, int64_t n,
                                               int64_t c, int64_t len, float& sum, float& best,
                                               int64_t& arg) {
  const T* x = p.x + n * p.max_len * p.dim + c;
  sum = 0.f;
  best = -INFINITY;
  arg = 0;
  for (int64_t i = 0; i < len; ++i) {
    const float v = cuda::to_float(x[i * p.dim]);
    sum += v;
    // Take v if it is the first, larger, or the first NaN (a NaN, once taken, stays).
    if (i == 0 || (!isnan(best) && (v > best || isnan(v)))) {
      best = v;
      arg = i;
    }
  }
}

// Calls body(n, c, len, sum, best, arg) for this thread's feature c of every pair n.
template <typename T, typename Body>
__device__ __forceinline__ void for_each_feature(const MaskedPoolParams<T>& p, Body body) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (c >= p.dim) return;
  for (int64_t n = blockIdx.y; n < p.batch; n += gridDim.y) {
    const int64_t len = p.len[n];
    cuda::require_length(len, p.max_len, "len_x", n);
    float sum, best;
    int64_t arg;
    sum_and_argmax(p, n, c, len, sum, best, arg);
    body(n, c, len, sum, best, arg);
  }
}

template <typename T>
__global__ void masked_pool_forward_kernel(MaskedPoolForwardParams<T> p) {
  for_each_feature(p, [&](int64_t n, int64_t c, int64_t len, float sum, float best, int64_t) {
    T* out = p.out + n * 2 * p.dim;
    out[c] = cuda::from_float<T>(len > 0 ? sum / static_cast<float>(len) : 0.f);
    out[p.dim + c] = cuda::from_float<T>(len > 0 ? best : 0.f);
  });
}

template <typename T>
__global__ void masked_pool_backward_kernel(MaskedPoolBackwardParams<T> p) {
  for_each_feature(p, [&](int64_t n, int64_t c, int64_t len, float, float, int64_t arg) {
    const T* grad_out = p.grad_out + n * 2 * p.dim;
    const float g_mean = len > 0 ? cuda::to_float(grad_out[c]) / len : 0.f;
    const float g_max = cuda::to_float(grad_out[p.dim + c]);
    T* g = p.grad_x + n * p.max_len * p.dim + c;
    for (int64_t i = 0; i < p.max_len; ++i)
      g[i * p.dim] = cuda::from_float<T>(i < len ? g_mean + (i == arg ? g_max : 0.f) : 0.f);
  });
}

dim3 grid_for(int64_t batch, int64_t dim) {
  return dim3(static_cast<unsigned>((dim + kThreads - 1) / kThreads),
              static_cast<unsigned>(batch < 65535 ? batch : 65535));
}

}  // namespace

template <typename T>
cudaError_t launch_masked_pool_forward(const MaskedPoolForwardParams<T>& p, cudaStream_t stream) {
  if (p.batch == 0 || p.dim == 0) return cudaSuccess;
  DYNBATCH_LAUNCH(masked_pool_forward_kernel<T>, grid_for(p.batch, p.dim), kThreads, 0, stream, p);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_masked_pool_backward(const MaskedPoolBackwardParams<T>& p,
                                        cudaStream_t stream) {
  if (p.batch == 0 || p.dim == 0 || p.max_len == 0) return cudaSuccess;
  DYNBATCH_LAUNCH(masked_pool_backward_kernel<T>, grid_for(p.batch, p.dim), kThreads, 0, stream, p);
  return cudaGetLastError();
}

#define DYNBATCH_INSTANTIATE(T)                                                             \
  template cudaError_t launch_masked_pool_forward<T>(const MaskedPoolForwardParams<T>&,     \
                                                     cudaStream_t);                         \
  template cudaError_t launch_masked_pool_backward<T>(const MaskedPoolBackwardParams<T>&,   \
                                                      cudaStream_t);
DYNBATCH_CUDA_TYPES(DYNBATCH_INSTANTIATE)

}  // namespace dynbatch
