// soft_align on CUDA. Per pair, over the valid la x lb block only:
//   S = A B^T once (both softmaxes read it), P_row = softmax_j(S), P_col = softmax_i(S),
//   a~ = P_row B, b~ = P_col^T A; rows past a length are written as 0.
// The backward recomputes S and the probabilities (no B x La x Lb tensor is saved between the
// passes) and then, with G1 = g_a~ B^T and G2 = A g_b~^T,
//   dS = P_row (G1 - rowsum(P_row G1)) + P_col (G2 - colsum(P_col G2)),
//   grad_a = P_col g_b~ + dS B,   grad_b = P_row^T g_a~ + dS^T A.
// The products run on cuda_common.cuh's batched GEMM, which tiles over d (ESIM's d = 600 is past
// the head-dim limit of flash kernels) and skips padded tiles.
#include "kernels/cuda_common.cuh"
#include "kernels/soft_align_cuda.h"

namespace dynbatch {
namespace {

using cuda::Extent;
using cuda::GemmParams;
using cuda::Operand;

constexpr int kWarpsPerBlock = 8;

// The valid rows (i < la, over j < lb) or columns (j < lb, over i < la) of every pair's
// (max_a, max_b) float matrix, one warp per line. Element k of a line is at base + k * step.
struct MatrixLines {
  const int64_t* len_a;
  const int64_t* len_b;
  int64_t batch, max_a, max_b;
  bool rows;
};

struct Line {
  int64_t base, step, count;
};

// This warp's line of pair n; false when the line is padding.
__device__ __forceinline__ bool line_of(const MatrixLines& m, int64_t n, Line& out) {
  const int64_t line = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.y;
  const int64_t la = m.len_a[n], lb = m.len_b[n];
  if (line >= (m.rows ? la : lb)) return false;  // la <= max_a, lb <= max_b
  out.base = n * m.max_a * m.max_b + (m.rows ? line * m.max_b : line);
  out.step = m.rows ? 1 : m.max_b;
  out.count = m.rows ? lb : la;
  return true;
}

// Softmax of each line of `scores` into `probs` (in place allowed).
__global__ void softmax_kernel(MatrixLines m, const float* scores, float* probs) {
  const int lane = threadIdx.x;
  Line l;
  for (int64_t n = blockIdx.y; n < m.batch; n += gridDim.y) {
    if (!line_of(m, n, l)) continue;
    float largest = -INFINITY;
    for (int64_t k = lane; k < l.count; k += 32)
      largest = fmaxf(largest, scores[l.base + k * l.step]);
    largest = cuda::warp_max(largest);
    float total = 0.f;
    for (int64_t k = lane; k < l.count; k += 32)
      total += expf(scores[l.base + k * l.step] - largest);
    total = cuda::warp_sum(total);
    // Every lane has read its scores before the warp sum, so writing in place is safe.
    for (int64_t k = lane; k < l.count; k += 32)
      probs[l.base + k * l.step] = expf(scores[l.base + k * l.step] - largest) / total;
  }
}

// dS, given G1 (in: g_a~ B^T) and G2 (in: A g_b~^T): the row pass turns G1 into
// P_row (G1 - rowsum(P_row G1)); the column pass turns G2 into dS = G1' + P_col (G2 - colsum).
__global__ void score_grad_kernel(MatrixLines m, const float* p_row, const float* p_col,
                                  float* g1, float* g2) {
  const int lane = threadIdx.x;
  const float* p = m.rows ? p_row : p_col;
  float* g = m.rows ? g1 : g2;
  Line l;
  for (int64_t n = blockIdx.y; n < m.batch; n += gridDim.y) {
    if (!line_of(m, n, l)) continue;
    float dot = 0.f;
    for (int64_t k = lane; k < l.count; k += 32)
      dot += p[l.base + k * l.step] * g[l.base + k * l.step];
    dot = cuda::warp_sum(dot);
    for (int64_t k = lane; k < l.count; k += 32) {
      const int64_t at = l.base + k * l.step;
      const float term = p[at] * (g[at] - dot);
      g[at] = m.rows ? term : g1[at] + term;
    }
  }
}

// One warp per line of the padded extent; nothing to launch when the matrices are empty.
template <typename... Args>
cudaError_t launch_lines(void (*kernel)(MatrixLines, Args...), const MatrixLines& m,
                         cudaStream_t stream, Args... args) {
  const int64_t lines = m.rows ? m.max_a : m.max_b;
  if (m.batch == 0 || m.max_a == 0 || m.max_b == 0) return cudaSuccess;
  const dim3 block(32, kWarpsPerBlock);
  const dim3 grid(static_cast<unsigned>((lines + kWarpsPerBlock - 1) / kWarpsPerBlock),
                  static_cast<unsigned>(m.batch < 65535 ? m.batch : 65535));
  DYNBATCH_LAUNCH(kernel, grid, block, stream, m, args...);
  return cudaGetLastError();
}

template <typename T>
MatrixLines lines_of(const SoftAlignParams<T>& p, bool rows) {
  return MatrixLines{p.len_a, p.len_b, p.batch, p.max_len_a, p.max_len_b, rows};
}

// Views of the inputs and of the (batch, max_a, max_b) float matrices.
template <typename T>
Operand<T> rows_of(const T* x, int64_t max_len, int64_t dim) {  // X(n, i, c) = x[n, i, c]
  return Operand<T>{x, max_len * dim, dim, 1};
}
template <typename T>
Operand<T> columns_of(const T* x, int64_t max_len, int64_t dim) {  // X^T(n, c, i) = x[n, i, c]
  return Operand<T>{x, max_len * dim, 1, dim};
}
Operand<float> matrix(const float* s, int64_t max_a, int64_t max_b) {  // S(n, i, j)
  return Operand<float>{s, max_a * max_b, max_b, 1};
}
Operand<float> matrix_t(const float* s, int64_t max_a, int64_t max_b) {  // S^T(n, j, i)
  return Operand<float>{s, max_a * max_b, 1, max_b};
}

// S(n, i, j) = x(n, i) . y(n, j) for i < len_x, j < len_y, into a float matrix.
template <typename T>
cudaError_t launch_scores(const T* x, const T* y, float* out, const SoftAlignParams<T>& p,
                          cudaStream_t stream) {
  GemmParams<T, T, float> g;
  g.a1 = rows_of(x, p.max_len_a, p.dim);
  g.b1 = columns_of(y, p.max_len_b, p.dim);
  g.c = out;
  g.c_batch = p.max_len_a * p.max_len_b;
  g.c_row = p.max_len_b;
  g.rows = Extent{p.len_a, p.max_len_a};
  g.cols = Extent{p.len_b, p.max_len_b};
  g.inner = Extent{nullptr, p.dim};
  g.batch = p.batch;
  return cuda::launch_batched_gemm(g, stream);
}

// out (n, rows, d) = M1 X1 [+ M2 X2], M float, X of T, rows past `rows` written as 0.
template <typename T>
cudaError_t launch_mix(Operand<float> m1, Operand<T> x1, Operand<float> m2, Operand<T> x2, T* out,
                       Extent rows, Extent inner, const SoftAlignParams<T>& p,
                       cudaStream_t stream) {
  GemmParams<float, T, T> g;
  g.a1 = m1;
  g.b1 = x1;
  g.a2 = m2;
  g.b2 = x2;
  g.c = out;
  g.c_batch = rows.size * p.dim;
  g.c_row = p.dim;
  g.rows = rows;
  g.cols = Extent{nullptr, p.dim};
  g.inner = inner;
  g.batch = p.batch;
  g.zero_rows = true;
  return cuda::launch_batched_gemm(g, stream);
}

#define DYNBATCH_TRY(call)                \
  do {                                    \
    const cudaError_t status_ = (call);   \
    if (status_ != cudaSuccess) return status_; \
  } while (0)

// S, then P_col (into p_col) and P_row (in place over S).
template <typename T>
cudaError_t launch_probabilities(const SoftAlignParams<T>& p, float* p_row, float* p_col,
                                 cudaStream_t stream) {
  DYNBATCH_TRY(launch_scores(p.a, p.b, p_row, p, stream));
  const float* scores = p_row;
  DYNBATCH_TRY(launch_lines(softmax_kernel, lines_of(p, false), stream, scores, p_col));
  return launch_lines(softmax_kernel, lines_of(p, true), stream, scores, p_row);
}

}  // namespace

template <typename T>
cudaError_t launch_soft_align_forward(const SoftAlignForwardParams<T>& p, float* workspace,
                                      cudaStream_t stream) {
  const int64_t block = p.batch * p.max_len_a * p.max_len_b;
  float* p_row = workspace;
  float* p_col = workspace + block;
  DYNBATCH_TRY(launch_probabilities(p, p_row, p_col, stream));
  const Extent la{p.len_a, p.max_len_a}, lb{p.len_b, p.max_len_b};
  // a~ = P_row B (inner over j < lb); b~ = P_col^T A (inner over i < la).
  DYNBATCH_TRY(launch_mix<T>(matrix(p_row, p.max_len_a, p.max_len_b),
                             rows_of(p.b, p.max_len_b, p.dim), {}, {}, p.a_tilde, la, lb, p,
                             stream));
  return launch_mix<T>(matrix_t(p_col, p.max_len_a, p.max_len_b),
                       rows_of(p.a, p.max_len_a, p.dim), {}, {}, p.b_tilde, lb, la, p, stream);
}

template <typename T>
cudaError_t launch_soft_align_backward(const SoftAlignBackwardParams<T>& p, float* workspace,
                                       cudaStream_t stream) {
  const int64_t block = p.batch * p.max_len_a * p.max_len_b;
  float* p_row = workspace;
  float* p_col = workspace + block;
  float* g1 = workspace + 2 * block;
  float* g2 = workspace + 3 * block;
  DYNBATCH_TRY(launch_probabilities(p, p_row, p_col, stream));
  DYNBATCH_TRY(launch_scores(p.grad_a_tilde, p.b, g1, p, stream));  // G1 = g_a~ B^T
  DYNBATCH_TRY(launch_scores(p.a, p.grad_b_tilde, g2, p, stream));  // G2 = A g_b~^T
  const float *probs_row = p_row, *probs_col = p_col;
  DYNBATCH_TRY(launch_lines(score_grad_kernel, lines_of(p, true), stream, probs_row, probs_col,
                            g1, g2));
  DYNBATCH_TRY(launch_lines(score_grad_kernel, lines_of(p, false), stream, probs_row, probs_col,
                            g1, g2));  // g2 now holds dS
  const Extent la{p.len_a, p.max_len_a}, lb{p.len_b, p.max_len_b};
  // grad_a = P_col g_b~ + dS B (inner over j < lb).
  DYNBATCH_TRY(launch_mix<T>(matrix(p_col, p.max_len_a, p.max_len_b),
                             rows_of(p.grad_b_tilde, p.max_len_b, p.dim),
                             matrix(g2, p.max_len_a, p.max_len_b),
                             rows_of(p.b, p.max_len_b, p.dim), p.grad_a, la, lb, p, stream));
  // grad_b = P_row^T g_a~ + dS^T A (inner over i < la).
  return launch_mix<T>(matrix_t(p_row, p.max_len_a, p.max_len_b),
                       rows_of(p.grad_a_tilde, p.max_len_a, p.dim),
                       matrix_t(g2, p.max_len_a, p.max_len_b), rows_of(p.a, p.max_len_a, p.dim),
                       p.grad_b, lb, la, p, stream);
}

#define DYNBATCH_INSTANTIATE(T)                                                              \
  template cudaError_t launch_soft_align_forward<T>(const SoftAlignForwardParams<T>&, float*, \
                                                    cudaStream_t);                           \
  template cudaError_t launch_soft_align_backward<T>(const SoftAlignBackwardParams<T>&,       \
                                                     float*, cudaStream_t);
DYNBATCH_INSTANTIATE(float)
DYNBATCH_INSTANTIATE(__half)
DYNBATCH_INSTANTIATE(__nv_bfloat16)

}  // namespace dynbatch
