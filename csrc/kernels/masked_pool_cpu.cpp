// CPU masked mean + max pooling over a range of sequences (the op layer runs ranges in
// parallel); padded positions are never read.
#include <algorithm>
#include <vector>

#include "kernels/dtypes.h"
#include "kernels/masked_pool.h"
#include "kernels/vector_math_cpu.h"

namespace dynbatch {

template <typename scalar_t>
void masked_pool_forward_cpu(const MaskedPoolForwardParams<scalar_t>& p, int64_t begin,
                             int64_t end) {
  const int64_t d = p.dim;
  for (int64_t n = begin; n < end; ++n) {
    const int64_t len = p.len[n];
    scalar_t* mean = p.out + n * 2 * d;
    if (len == 0) {  // nothing to pool: zeros
      std::fill(mean, mean + 2 * d, scalar_t(0));
      continue;
    }
    sum_and_max_rows(p.x + n * p.max_len * d, len, d, mean, mean + d, nullptr);
    for (int64_t k = 0; k < d; ++k) mean[k] /= static_cast<scalar_t>(len);
  }
}

template <typename scalar_t>
void masked_pool_backward_cpu(const MaskedPoolBackwardParams<scalar_t>& p, int64_t begin,
                              int64_t end) {
  const int64_t d = p.dim;
  std::vector<scalar_t> sum(d), max(d);
  std::vector<int64_t> where(d);
  for (int64_t n = begin; n < end; ++n) {
    const int64_t len = p.len[n];
    const scalar_t* g_mean = p.grad_out + n * 2 * d;
    const scalar_t* g_max = g_mean + d;
    scalar_t* g_x = p.grad_x + n * p.max_len * d;
    std::fill(g_x + len * d, g_x + p.max_len * d, scalar_t(0));
    if (len == 0) continue;
    const scalar_t scale = scalar_t(1) / static_cast<scalar_t>(len);
    for (int64_t t = 0; t < len; ++t)
      for (int64_t k = 0; k < d; ++k) g_x[t * d + k] = g_mean[k] * scale;
    sum_and_max_rows(p.x + n * p.max_len * d, len, d, sum.data(), max.data(), where.data());
    for (int64_t k = 0; k < d; ++k) g_x[where[k] * d + k] += g_max[k];
  }
}

#define DYNBATCH_INSTANTIATE(T)                                                  \
  template void masked_pool_forward_cpu<T>(const MaskedPoolForwardParams<T>&, int64_t, int64_t);   \
  template void masked_pool_backward_cpu<T>(const MaskedPoolBackwardParams<T>&, int64_t, int64_t);
DYNBATCH_CPU_TYPES(DYNBATCH_INSTANTIATE)

}  // namespace dynbatch
