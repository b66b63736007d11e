// CPU masked mean + max pooling over a range of sequences (the op layer runs ranges in
// parallel); padded positions are never read. bfloat16 and float16 are pooled in float.
#include <algorithm>
#include <type_traits>
#include <vector>

#include "kernels/cpu_types.h"
#include "kernels/dtypes.h"
#include "kernels/masked_pool_cpu.h"
#include "kernels/vector_math_cpu.h"

namespace dynbatch {
namespace {

// Sequence n's valid rows (len x dim) in the compute type C: the stored rows themselves when T
// is C, else a converted copy.
template <typename C, typename T>
const C* valid_rows(const MaskedPoolParams<T>& p, int64_t n, int64_t len, std::vector<C>& copy) {
  const T* x = p.x + n * p.max_len * p.dim;
  if constexpr (std::is_same_v<C, T>) {
    return x;
  } else {
    copy.resize(len * p.dim);
    for (int64_t k = 0; k < len * p.dim; ++k) copy[k] = to_compute(x[k]);
    return copy.data();
  }
}

}  // namespace

template <typename T>
void masked_pool_forward_cpu(const MaskedPoolForwardParams<T>& p, int64_t begin, int64_t end) {
  using C = compute_t<T>;
  const int64_t d = p.dim;
  std::vector<C> copy, pooled(2 * d);
  for (int64_t n = begin; n < end; ++n) {
    const int64_t len = p.len[n];
    T* out = p.out + n * 2 * d;
    if (len == 0) {  // nothing to pool: zeros
      std::fill(out, out + 2 * d, from_compute<T>(0));
      continue;
    }
    C* mean = pooled.data();
    sum_and_max_rows(valid_rows(p, n, len, copy), len, d, mean, mean + d, nullptr);
    for (int64_t k = 0; k < d; ++k) mean[k] /= static_cast<C>(len);
    for (int64_t k = 0; k < 2 * d; ++k) out[k] = from_compute<T>(pooled[k]);
  }
}

template <typename T>
void masked_pool_backward_cpu(const MaskedPoolBackwardParams<T>& p, int64_t begin, int64_t end) {
  using C = compute_t<T>;
  const int64_t d = p.dim;
  std::vector<C> copy, sum(d), max(d), row(d);
  std::vector<int64_t> where(d);
  for (int64_t n = begin; n < end; ++n) {
    const int64_t len = p.len[n];
    const T* g_mean = p.grad_out + n * 2 * d;
    const T* g_max = g_mean + d;
    T* g_x = p.grad_x + n * p.max_len * d;
    std::fill(g_x + len * d, g_x + p.max_len * d, from_compute<T>(0));
    if (len == 0) continue;
    sum_and_max_rows(valid_rows(p, n, len, copy), len, d, sum.data(), max.data(), where.data());
    // Every valid row gets the mean's share, then each column's first arg-max the max's
    // gradient too: whole rows written at once, not a comparison per element.
    const C scale = C(1) / static_cast<C>(len);
    for (int64_t k = 0; k < d; ++k) row[k] = to_compute(g_mean[k]) * scale;
    for (int64_t t = 0; t < len; ++t)
      std::transform(row.begin(), row.end(), g_x + t * d, [](C g) { return from_compute<T>(g); });
    for (int64_t k = 0; k < d; ++k)
      g_x[where[k] * d + k] = from_compute<T>(row[k] + to_compute(g_max[k]));
  }
}

#define DYNBATCH_INSTANTIATE(T)                                                          \
  template void masked_pool_forward_cpu<T>(const MaskedPoolForwardParams<T>&, int64_t,   \
                                           int64_t);                                     \
  template void masked_pool_backward_cpu<T>(const MaskedPoolBackwardParams<T>&, int64_t, \
                                            int64_t);
DYNBATCH_CPU_TYPES(DYNBATCH_INSTANTIATE)

}  // namespace dynbatch
