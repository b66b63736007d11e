#include "kernels/softmax_cpu.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/multiversion.h"

namespace dynbatch {
namespace {

// Probabilities below kTiny (min / epsilon: 1e-31 in float) are taken as 0, and a score's
// gradient below the smallest normal number too. Neither changes a sum by a unit in the last
// place (every one is below epsilon times the smallest normal number), and left alone they and
// the products made from them underflow into subnormal floats, which x86 CPUs compute many times
// slower (16x measured on an Intel Xeon: scores spread by hundreds, d = 1024).
template <typename C>
constexpr C kTiny = std::numeric_limits<C>::min() / std::numeric_limits<C>::epsilon();

template <typename C>
DYNBATCH_INLINE C probability_or_zero(C p) {
  return p < kTiny<C> ? C(0) : p;
}

template <typename C>
DYNBATCH_INLINE C normal_or_zero(C g) {
  return std::abs(g) < std::numeric_limits<C>::min() ? C(0) : g;
}

// 16 floats as one value (GCC's vector extensions): each clone lowers it to its own vector width,
// and a select on it is a blend, never a branch, which a loop of scalar selects can become (and
// then not vectorise).
using Floats16 = float __attribute__((vector_size(64)));
using Ints16 = int32_t __attribute__((vector_size(64)));

// e^x for shifted scores x = score - max <= 0 (or NaN), in Cephes' expf: x = n ln2 + r with
// |r| <= ln2 / 2, e^r from a polynomial, 2^n from the exponent bits. Within 1 unit in the last
// place of std::exp over [-87.5, 0] (checked at every float); NaN stays NaN. x is raised to -80
// first: e^-80 (1.8e-35) is still a normal float, so no subnormal is made here, and it lies far
// below what probability_or_zero keeps. libm's expf, a call per element, took most of a
// softmax's time. (In place: GCC warns that a 64-byte vector passed by value is passed
// differently with and without AVX-512.)
DYNBATCH_INLINE void exp_shifted(Floats16& x) {
  const Floats16 raised = x > -80.0f ? x : Floats16{} - 80.0f;  // NaN too: returned below
  const Floats16 half_up = raised * 1.44269504088896341f + 0.5f;  // log2(e) x + 1/2, to floor
  Ints16 n = __builtin_convertvector(half_up, Ints16);
  n += half_up < __builtin_convertvector(n, Floats16);  // true is -1: truncation rounded up
  const Floats16 fn = __builtin_convertvector(n, Floats16);
  Floats16 r = raised - fn * 0.693359375f;  // ln 2 in two parts, the first exact in float
  r = r - fn * -2.12194440e-4f;
  Floats16 p = Floats16{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const Floats16 e = p * reinterpret_cast<Floats16>((n + 127) << 23);
  x = x == x ? e : x;
}

// values[k] = probability_or_zero(e^values[k]), for shifted scores.
DYNBATCH_INLINE void exp_probabilities(float* values, int64_t count) {
  auto flushed_exp = [](Floats16& chunk) {
    exp_shifted(chunk);
    chunk = chunk < kTiny<float> ? Floats16{} : chunk;
  };
  int64_t k = 0;
  for (; k + 16 <= count; k += 16) {
    Floats16 chunk;
    std::memcpy(&chunk, values + k, sizeof chunk);
    flushed_exp(chunk);
    std::memcpy(values + k, &chunk, sizeof chunk);
  }
  if (k == count) return;
  Floats16 tail{};  // its elements past the end are 0s, and never stored
  std::memcpy(&tail, values + k, (count - k) * sizeof(float));
  flushed_exp(tail);
  std::memcpy(values + k, &tail, (count - k) * sizeof(float));
}

// In double, the library's exp: float64 is what results are checked against.
DYNBATCH_INLINE void exp_probabilities(double* values, int64_t count) {
  for (int64_t k = 0; k < count; ++k) values[k] = probability_or_zero(std::exp(values[k]));
}

template <typename C>
DYNBATCH_INLINE void softmax_rows_impl(C* block, int64_t len, int64_t i0, int64_t i1) {
  for (int64_t i = i0; i < i1; ++i) {
    C* row = block + i * len;
    C top = -std::numeric_limits<C>::infinity();
#pragma omp simd reduction(max : top)
    for (int64_t j = 0; j < len; ++j) top = row[j] > top ? row[j] : top;
#pragma omp simd
    for (int64_t j = 0; j < len; ++j) row[j] -= top;
    exp_probabilities(row, len);
    C sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < len; ++j) sum += row[j];
#pragma omp simd
    for (int64_t j = 0; j < len; ++j) row[j] = probability_or_zero(row[j] / sum);
  }
}

// Columns are walked row by row over the range, for contiguous access.
template <typename C>
DYNBATCH_INLINE void softmax_columns_impl(const C* scores, int64_t rows, int64_t len, int64_t j0,
                                          int64_t j1, C* out) {
  const int64_t width = j1 - j0;
  std::vector<C> top_of(width, -std::numeric_limits<C>::infinity()), sum_of(width, 0);
  C *top = top_of.data(), *sum = sum_of.data();
  for (int64_t i = 0; i < rows; ++i) {
    const C* line = scores + i * len + j0;
#pragma omp simd
    for (int64_t k = 0; k < width; ++k) top[k] = line[k] > top[k] ? line[k] : top[k];
  }
  for (int64_t i = 0; i < rows; ++i) {
    const C* line = scores + i * len + j0;
    C* target = out + i * len + j0;
#pragma omp simd
    for (int64_t k = 0; k < width; ++k) target[k] = line[k] - top[k];
    exp_probabilities(target, width);
#pragma omp simd
    for (int64_t k = 0; k < width; ++k) sum[k] += target[k];
  }
  for (int64_t i = 0; i < rows; ++i) {
    C* target = out + i * len + j0;
#pragma omp simd
    for (int64_t k = 0; k < width; ++k) target[k] = probability_or_zero(target[k] / sum[k]);
  }
}

template <typename C>
DYNBATCH_INLINE void softmax_rows_backward_impl(const C* p, const C* d_p, int64_t len, int64_t i0,
                                                int64_t i1, C* d_scores) {
  for (int64_t i = i0; i < i1; ++i) {
    const C *p_row = p + i * len, *d_p_row = d_p + i * len;
    C* target = d_scores + i * len;
    C dot = 0;
#pragma omp simd reduction(+ : dot)
    for (int64_t j = 0; j < len; ++j) dot += d_p_row[j] * p_row[j];
#pragma omp simd
    for (int64_t j = 0; j < len; ++j) target[j] = normal_or_zero(p_row[j] * (d_p_row[j] - dot));
  }
}

template <typename C>
DYNBATCH_INLINE void softmax_columns_backward_add_impl(const C* q, const C* d_q, int64_t rows,
                                                       int64_t len, int64_t j0, int64_t j1,
                                                       C* d_scores) {
  const int64_t width = j1 - j0;
  std::vector<C> dot_of(width, 0);
  C* dot = dot_of.data();
  for (int64_t i = 0; i < rows; ++i) {
    const C *q_line = q + i * len + j0, *d_q_line = d_q + i * len + j0;
#pragma omp simd
    for (int64_t k = 0; k < width; ++k) dot[k] += d_q_line[k] * q_line[k];
  }
  for (int64_t i = 0; i < rows; ++i) {
    const C *q_line = q + i * len + j0, *d_q_line = d_q + i * len + j0;
    C* target = d_scores + i * len + j0;
#pragma omp simd
    for (int64_t k = 0; k < width; ++k)
      target[k] = normal_or_zero(target[k] + q_line[k] * (d_q_line[k] - dot[k]));
  }
}

}  // namespace

#define DYNBATCH_SOFTMAX_FUNCTIONS(C)                                                             \
  DYNBATCH_MULTIVERSION void softmax_rows(C* block, int64_t len, int64_t i0, int64_t i1) {        \
    softmax_rows_impl(block, len, i0, i1);                                                        \
  }                                                                                               \
  DYNBATCH_MULTIVERSION void softmax_columns(const C* scores, int64_t rows, int64_t len,          \
                                             int64_t j0, int64_t j1, C* out) {                    \
    softmax_columns_impl(scores, rows, len, j0, j1, out);                                         \
  }                                                                                               \
  DYNBATCH_MULTIVERSION void softmax_rows_backward(const C* p, const C* d_p, int64_t len,         \
                                                   int64_t i0, int64_t i1, C* d_scores) {         \
    softmax_rows_backward_impl(p, d_p, len, i0, i1, d_scores);                                    \
  }                                                                                               \
  DYNBATCH_MULTIVERSION void softmax_columns_backward_add(                                        \
      const C* q, const C* d_q, int64_t rows, int64_t len, int64_t j0, int64_t j1,               \
      C* d_scores) {                                                                              \
    softmax_columns_backward_add_impl(q, d_q, rows, len, j0, j1, d_scores);                       \
  }
DYNBATCH_SOFTMAX_FUNCTIONS(float)
DYNBATCH_SOFTMAX_FUNCTIONS(double)
#undef DYNBATCH_SOFTMAX_FUNCTIONS

}  // namespace dynbatch
