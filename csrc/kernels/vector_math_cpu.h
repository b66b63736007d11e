// The primitives the CPU kernels are made of, on contiguous rows of length d. Each is compiled
// for x86-64-v4 (AVX-512), v3 (AVX2+FMA) and baseline, and picked at load time by the features
// the CPU has (GCC/Clang function multi-versioning), so one portable build still runs at the
// machine's vector width.
#pragma once

#include <cstdint>

namespace dynbatch {

// out (m x n, row-major) = x (m x d) y^T (n x d): every pairwise dot product of rows.
void pairwise_dots(const float* x, int64_t m, const float* y, int64_t n, int64_t d, float* out);
void pairwise_dots(const double* x, int64_t m, const double* y, int64_t n, int64_t d, double* out);

// out[r] (+)= sum_c w[r * w_out_stride + c * w_in_stride] * x[c] for r < out_rows, c < in_rows:
// rows of x (in_rows x d) mixed by weights w into out (out_rows x d). Zeroes out first unless
// `accumulate`. Strides let one routine serve w (out_rows x in_rows) and its transpose.
void mix_rows(const float* w, int64_t w_out_stride, int64_t w_in_stride, int64_t out_rows,
              int64_t in_rows, const float* x, int64_t d, float* out, bool accumulate);
void mix_rows(const double* w, int64_t w_out_stride, int64_t w_in_stride, int64_t out_rows,
              int64_t in_rows, const double* x, int64_t d, double* out, bool accumulate);

// Column-wise sum, and first arg-max over rows 0..len-1 of x (len x d), len >= 1. A NaN counts
// as the largest value and the first NaN stays (as torch.max). `where` may be null.
void sum_and_max_rows(const float* x, int64_t len, int64_t d, float* sum, float* max,
                      int64_t* where);
void sum_and_max_rows(const double* x, int64_t len, int64_t d, double* sum, double* max,
                      int64_t* where);

}  // namespace dynbatch
