#include "kernels/vector_math_cpu.h"

#include <algorithm>

#include "kernels/multiversion.h"

namespace dynbatch {
namespace {

// Four dot products at a time share every load of x's row and keep four independent sums in
// flight, instead of one latency-bound chain.
template <typename T>
DYNBATCH_INLINE void pairwise_dots_impl(const T* x, int64_t m, const T* y, int64_t n, int64_t d,
                                        T* out) {
  for (int64_t i = 0; i < m; ++i) {
    const T* xi = x + i * d;
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
      const T *y0 = y + j * d, *y1 = y0 + d, *y2 = y1 + d, *y3 = y2 + d;
      T s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
      for (int64_t k = 0; k < d; ++k) {
        const T v = xi[k];
        s0 += v * y0[k];
        s1 += v * y1[k];
        s2 += v * y2[k];
        s3 += v * y3[k];
      }
      out[i * n + j] = s0;
      out[i * n + j + 1] = s1;
      out[i * n + j + 2] = s2;
      out[i * n + j + 3] = s3;
    }
    for (; j < n; ++j) {
      const T* yj = y + j * d;
      T s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t k = 0; k < d; ++k) s += xi[k] * yj[k];
      out[i * n + j] = s;
    }
  }
}

// A fixed-size chunk of the output row is accumulated in registers over every input row, so each
// multiply-add costs one load instead of a load and a store of the output as well.
template <typename T>
DYNBATCH_INLINE void mix_rows_impl(const T* w, int64_t w_out_stride, int64_t w_in_stride,
                                   int64_t out_rows, int64_t in_rows, const T* x, int64_t d,
                                   T* out, bool accumulate) {
  // 256 bytes: 8 AVX2 or 4 AVX-512 accumulators, which fit the registers without spilling.
  constexpr int64_t kChunk = 256 / sizeof(T);
  for (int64_t r = 0; r < out_rows; ++r) {
    T* target = out + r * d;
    const T* weights = w + r * w_out_stride;
    int64_t k0 = 0;
    for (; k0 + kChunk <= d; k0 += kChunk) {
      T acc[kChunk];
#pragma omp simd
      for (int64_t k = 0; k < kChunk; ++k) acc[k] = accumulate ? target[k0 + k] : T(0);
      for (int64_t c = 0; c < in_rows; ++c) {
        const T weight = weights[c * w_in_stride];
        const T* row = x + c * d + k0;
#pragma omp simd
        for (int64_t k = 0; k < kChunk; ++k) acc[k] += weight * row[k];
      }
#pragma omp simd
      for (int64_t k = 0; k < kChunk; ++k) target[k0 + k] = acc[k];
    }
    if (k0 == d) continue;
    if (!accumulate) std::fill(target + k0, target + d, T(0));
    for (int64_t c = 0; c < in_rows; ++c) {  // the tail, row by row
      const T weight = weights[c * w_in_stride];
      const T* row = x + c * d;
#pragma omp simd
      for (int64_t k = k0; k < d; ++k) target[k] += weight * row[k];
    }
  }
}

template <typename T>
DYNBATCH_INLINE void sum_and_max_rows_impl(const T* x, int64_t len, int64_t d, T* sum, T* max,
                                           int64_t* where) {
  std::copy(x, x + d, sum);
  std::copy(x, x + d, max);
  if (where) std::fill(where, where + d, int64_t{0});
  for (int64_t t = 1; t < len; ++t) {
    const T* row = x + t * d;
#pragma omp simd
    for (int64_t k = 0; k < d; ++k) {
      const T v = row[k], best = max[k];
      // Branch-free, so it vectorises: take v if larger, or if it is the first NaN.
      const bool take = v > best || (v != v && best == best);
      sum[k] += v;
      max[k] = take ? v : best;
      if (where) where[k] = take ? t : where[k];
    }
  }
}

}  // namespace

DYNBATCH_MULTIVERSION void pairwise_dots(const float* x, int64_t m, const float* y, int64_t n,
                                         int64_t d, float* out) {
  pairwise_dots_impl(x, m, y, n, d, out);
}
DYNBATCH_MULTIVERSION void pairwise_dots(const double* x, int64_t m, const double* y, int64_t n,
                                         int64_t d, double* out) {
  pairwise_dots_impl(x, m, y, n, d, out);
}
DYNBATCH_MULTIVERSION void mix_rows(const float* w, int64_t w_out_stride, int64_t w_in_stride,
                                    int64_t out_rows, int64_t in_rows, const float* x, int64_t d,
                                    float* out, bool accumulate) {
  mix_rows_impl(w, w_out_stride, w_in_stride, out_rows, in_rows, x, d, out, accumulate);
}
DYNBATCH_MULTIVERSION void mix_rows(const double* w, int64_t w_out_stride, int64_t w_in_stride,
                                    int64_t out_rows, int64_t in_rows, const double* x, int64_t d,
                                    double* out, bool accumulate) {
  mix_rows_impl(w, w_out_stride, w_in_stride, out_rows, in_rows, x, d, out, accumulate);
}
DYNBATCH_MULTIVERSION void sum_and_max_rows(const float* x, int64_t len, int64_t d, float* sum,
                                            float* max, int64_t* where) {
  sum_and_max_rows_impl(x, len, d, sum, max, where);
}
DYNBATCH_MULTIVERSION void sum_and_max_rows(const double* x, int64_t len, int64_t d, double* sum,
                                            double* max, int64_t* where) {
  sum_and_max_rows_impl(x, len, d, sum, max, where);
}

}  // namespace dynbatch
