// CPU soft alignment over a range of pairs (the op layer runs ranges in parallel); each pair works
// on its valid la x lb block only (dot products and axpys over rows of d), with exact softmaxes.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/dtypes.h"
#include "kernels/soft_align.h"
#include "kernels/vector_math_cpu.h"

namespace dynbatch {
namespace {

// scores = A B^T (la x lb), then row-softmax into `rows` and column-softmax into `cols`.
template <typename scalar_t>
void alignment_probabilities(const scalar_t* a, const scalar_t* b, int64_t la, int64_t lb,
                             int64_t dim, scalar_t* rows, scalar_t* cols) {
  pairwise_dots(a, la, b, lb, dim, rows);
  std::copy(rows, rows + la * lb, cols);
  for (int64_t i = 0; i < la; ++i) {  // softmax over j
    scalar_t* row = rows + i * lb;
    const scalar_t top = *std::max_element(row, row + lb);
    scalar_t sum = 0;
    for (int64_t j = 0; j < lb; ++j) sum += (row[j] = std::exp(row[j] - top));
    for (int64_t j = 0; j < lb; ++j) row[j] /= sum;
  }
  std::vector<scalar_t> top(lb, -std::numeric_limits<scalar_t>::infinity()), sum(lb, 0);
  for (int64_t i = 0; i < la; ++i)  // softmax over i, walking rows for contiguous access
    for (int64_t j = 0; j < lb; ++j) top[j] = std::max(top[j], cols[i * lb + j]);
  for (int64_t i = 0; i < la; ++i)
    for (int64_t j = 0; j < lb; ++j) sum[j] += (cols[i * lb + j] = std::exp(cols[i * lb + j] - top[j]));
  for (int64_t i = 0; i < la; ++i)
    for (int64_t j = 0; j < lb; ++j) cols[i * lb + j] /= sum[j];
}

template <typename scalar_t>
void zero_rows(scalar_t* rows, int64_t from, int64_t to, int64_t dim) {
  std::fill(rows + from * dim, rows + to * dim, scalar_t(0));
}

}  // namespace

template <typename scalar_t>
void soft_align_forward_cpu(const SoftAlignForwardParams<scalar_t>& p, int64_t begin,
                            int64_t end) {
  const int64_t d = p.dim;
  if (d == 0) return;  // the outputs hold no elements
  std::vector<scalar_t> rows, cols;
  for (int64_t n = begin; n < end; ++n) {
    const int64_t la = p.len_a[n], lb = p.len_b[n];
    const scalar_t* a = p.a + n * p.max_len_a * d;
    const scalar_t* b = p.b + n * p.max_len_b * d;
    scalar_t* a_tilde = p.a_tilde + n * p.max_len_a * d;
    scalar_t* b_tilde = p.b_tilde + n * p.max_len_b * d;
    if (la == 0 || lb == 0) {  // nothing to attend to: every row is zero
      zero_rows(a_tilde, 0, p.max_len_a, d);
      zero_rows(b_tilde, 0, p.max_len_b, d);
      continue;
    }
    rows.resize(la * lb);
    cols.resize(la * lb);
    alignment_probabilities(a, b, la, lb, d, rows.data(), cols.data());
    mix_rows(rows.data(), lb, 1, la, lb, b, d, a_tilde, false);  // P B
    mix_rows(cols.data(), 1, lb, lb, la, a, d, b_tilde, false);  // Q^T A
    zero_rows(a_tilde, la, p.max_len_a, d);
    zero_rows(b_tilde, lb, p.max_len_b, d);
  }
}

// With P = row softmax and Q = column softmax of E = A B^T, a_tilde = P B, b_tilde = Q^T A:
//   dP = gA~ B^T, dE  = P o (dP - rowsum(dP o P))
//   dQ = A gB~^T, dE += Q o (dQ - colsum(dQ o Q))
//   dA = dE B + Q gB~,  dB = dE^T A + P^T gA~
template <typename scalar_t>
void soft_align_backward_cpu(const SoftAlignBackwardParams<scalar_t>& p, int64_t begin,
                             int64_t end) {
  const int64_t d = p.dim;
  if (d == 0) return;
  std::vector<scalar_t> rows, cols, d_rows, d_cols, d_scores, col_dot;
  for (int64_t n = begin; n < end; ++n) {
    const int64_t la = p.len_a[n], lb = p.len_b[n];
    const int64_t off_a = n * p.max_len_a * d, off_b = n * p.max_len_b * d;
    const scalar_t *a = p.a + off_a, *b = p.b + off_b;
    const scalar_t *g_at = p.grad_a_tilde + off_a, *g_bt = p.grad_b_tilde + off_b;
    scalar_t *g_a = p.grad_a + off_a, *g_b = p.grad_b + off_b;
    if (la == 0 || lb == 0) {
      zero_rows(g_a, 0, p.max_len_a, d);
      zero_rows(g_b, 0, p.max_len_b, d);
      continue;
    }
    const int64_t area = la * lb;
    rows.resize(area);
    cols.resize(area);
    d_rows.resize(area);
    d_cols.resize(area);
    d_scores.resize(area);
    alignment_probabilities(a, b, la, lb, d, rows.data(), cols.data());
    pairwise_dots(g_at, la, b, lb, d, d_rows.data());  // dP = gA~ B^T
    pairwise_dots(a, la, g_bt, lb, d, d_cols.data());  // dQ = A gB~^T
    for (int64_t i = 0; i < la; ++i) {
      scalar_t dot = 0;
      for (int64_t j = 0; j < lb; ++j) dot += d_rows[i * lb + j] * rows[i * lb + j];
      for (int64_t j = 0; j < lb; ++j)
        d_scores[i * lb + j] = rows[i * lb + j] * (d_rows[i * lb + j] - dot);
    }
    col_dot.assign(lb, 0);
    for (int64_t i = 0; i < la; ++i)
      for (int64_t j = 0; j < lb; ++j) col_dot[j] += d_cols[i * lb + j] * cols[i * lb + j];
    for (int64_t i = 0; i < la; ++i)
      for (int64_t j = 0; j < lb; ++j)
        d_scores[i * lb + j] += cols[i * lb + j] * (d_cols[i * lb + j] - col_dot[j]);
    const scalar_t* ds = d_scores.data();
    mix_rows(ds, lb, 1, la, lb, b, d, g_a, false);             // dE B
    mix_rows(cols.data(), lb, 1, la, lb, g_bt, d, g_a, true);  // + Q gB~
    mix_rows(ds, 1, lb, lb, la, a, d, g_b, false);             // dE^T A
    mix_rows(rows.data(), 1, lb, lb, la, g_at, d, g_b, true);  // + P^T gA~
    zero_rows(g_a, la, p.max_len_a, d);
    zero_rows(g_b, lb, p.max_len_b, d);
  }
}

#define DYNBATCH_INSTANTIATE(T)                                                  \
  template void soft_align_forward_cpu<T>(const SoftAlignForwardParams<T>&, int64_t, int64_t);     \
  template void soft_align_backward_cpu<T>(const SoftAlignBackwardParams<T>&, int64_t, int64_t);
DYNBATCH_CPU_TYPES(DYNBATCH_INSTANTIATE)

}  // namespace dynbatch
