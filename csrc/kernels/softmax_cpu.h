// The softmaxes of soft_align's CPU kernels over a block of scores (rows x len, row-major), and
// their gradients, over a range of lines so that the caller can share a block's lines between
// threads. In double, with the library's exp; in float, with a polynomial exp that vectorises
// (within 1 unit in the last place of std::exp). Probabilities below min / epsilon and score
// gradients below the smallest normal number come out as 0 (see softmax_cpu.cpp). Compiled per
// feature level (multiversion.h).
#pragma once

#include <cstdint>

namespace dynbatch {

// Softmax along rows [i0, i1) of `block`, in place.
void softmax_rows(float* block, int64_t len, int64_t i0, int64_t i1);
void softmax_rows(double* block, int64_t len, int64_t i0, int64_t i1);

// Softmax down columns [j0, j1) of `scores` (rows x len) into the same places of `out`.
void softmax_columns(const float* scores, int64_t rows, int64_t len, int64_t j0, int64_t j1,
                     float* out);
void softmax_columns(const double* scores, int64_t rows, int64_t len, int64_t j0, int64_t j1,
                     double* out);

// Through the row softmax p of rows [i0, i1): d_scores = p o (d_p - rowsum(d_p o p)).
void softmax_rows_backward(const float* p, const float* d_p, int64_t len, int64_t i0, int64_t i1,
                           float* d_scores);
void softmax_rows_backward(const double* p, const double* d_p, int64_t len, int64_t i0,
                           int64_t i1, double* d_scores);

// Through the column softmax q of columns [j0, j1): d_scores += q o (d_q - colsum(d_q o q)).
void softmax_columns_backward_add(const float* q, const float* d_q, int64_t rows, int64_t len,
                                  int64_t j0, int64_t j1, float* d_scores);
void softmax_columns_backward_add(const double* q, const double* d_q, int64_t rows, int64_t len,
                                  int64_t j0, int64_t j1, double* d_scores);

}  // namespace dynbatch
