// Block-level pieces of the soft_align kernels: a thread block works on one pair at a time (or, in
// the split kernels, on one piece of a pair: a tile, some lines, some rows), over the pair's valid
// rows only. The pair's (la x lb) float matrices (scores, probabilities, their
// gradients) are row-major with row stride lb and live in shared memory or, for long pairs, in a
// global workspace; these functions take a plain pointer and work with either. No torch header.
//
// Every function is called by all threads of the block with the same arguments (the lengths are
// per pair, so uniform), because some contain __syncthreads.
#pragma once

#include "kernels/cuda_common.cuh"

namespace dynbatch {
namespace cuda {

constexpr int kPairThreads = 256;
constexpr int kPairWarps = kPairThreads / 32;
// Blocks per SM the kernels are compiled for (__launch_bounds__): 4 x 256 threads caps them at
// 64 registers, which they fit without spilling (nvcc -Xptxas -v).
constexpr int kPairBlocksPerSM = 4;
constexpr int kDotTile = 32;                              // pair_dots: 32 x 32 outputs at a time
constexpr int kDotRowsPerThread = kDotTile / kPairWarps;  // 4
constexpr int kMixRows = 8;                               // pair_mix: output rows per thread
// Static shared memory of pair_dots, which the launchers add to the pair matrices' bytes.
constexpr int kDotSharedBytes = 2 * kDotTile * (kDotTile + 1) * static_cast<int>(sizeof(float));

// out[i * y_rows + j] = x_i . y_j for the 32 x 32 tile of (i, j) at (i0, j0), clipped to
// i < x_rows, j < y_rows, where x_i is row i of the (rows, dim) array x. Over d in chunks of 32
// through shared memory: each row is read from global memory once per tile, in coalesced 32-float
// runs, and d may be any width (ESIM's 600 is past the head-dim limit of flash kernels).
template <typename T>
__device__ void tile_dots(const T* x, int64_t x_rows, const T* y, int64_t y_rows, int64_t dim,
                          int64_t i0, int64_t j0, float* out) {
  __shared__ float x_tile[kDotTile][kDotTile + 1];  // +1: column reads hit distinct banks
  __shared__ float y_tile[kDotTile][kDotTile + 1];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  float acc[kDotRowsPerThread] = {};  // out(i0 + warp + kPairWarps * r, j0 + lane)
  for (int64_t c0 = 0; c0 < dim; c0 += kDotTile) {
    const bool column_ok = c0 + lane < dim;
#pragma unroll
    for (int r = 0; r < kDotRowsPerThread; ++r) {
      const int row = warp + kPairWarps * r;
      x_tile[row][lane] =
          i0 + row < x_rows && column_ok ? to_float(x[(i0 + row) * dim + c0 + lane]) : 0.f;
      y_tile[row][lane] =
          j0 + row < y_rows && column_ok ? to_float(y[(j0 + row) * dim + c0 + lane]) : 0.f;
    }
    __syncthreads();
#pragma unroll 8
    for (int k = 0; k < kDotTile; ++k) {
      const float y_value = y_tile[lane][k];
#pragma unroll
      for (int r = 0; r < kDotRowsPerThread; ++r)
        acc[r] += x_tile[warp + kPairWarps * r][k] * y_value;
    }
    __syncthreads();
  }
#pragma unroll
  for (int r = 0; r < kDotRowsPerThread; ++r) {
    const int64_t i = i0 + warp + kPairWarps * r, j = j0 + lane;
    if (i < x_rows && j < y_rows) out[i * y_rows + j] = acc[r];
  }
}

// Every tile of tile_dots, one after another. Ends with a barrier.
template <typename T>
__device__ void pair_dots(const T* x, int64_t x_rows, const T* y, int64_t y_rows, int64_t dim,
                          float* out) {
  for (int64_t i0 = 0; i0 < x_rows; i0 += kDotTile)
    for (int64_t j0 = 0; j0 < y_rows; j0 += kDotTile)
      tile_dots(x, x_rows, y, y_rows, dim, i0, j0, out);
  __syncthreads();
}

// The lines of a (la x lb) row-major matrix: its rows (over j < lb) or its columns (over i < la).
// Element k of line l is at l * line_step + k * step.
struct Lines {
  int64_t count, length, line_step, step;
};
__device__ __forceinline__ Lines rows_of(int64_t la, int64_t lb) { return Lines{la, lb, lb, 1}; }
__device__ __forceinline__ Lines columns_of(int64_t la, int64_t lb) {
  return Lines{lb, la, 1, lb};
}

// probs = softmax of each line of scores, one warp per line (in place allowed: every lane reads
// its scores before the warp sum, and writes only its own). Ends with a barrier.
__device__ inline void softmax_lines(Lines lines, const float* scores, float* probs) {
  const int lane = threadIdx.x % 32;
  for (int64_t l = threadIdx.x / 32; l < lines.count; l += kPairWarps) {
    const float* s = scores + l * lines.line_step;
    float* q = probs + l * lines.line_step;
    float largest = -INFINITY;
    for (int64_t k = lane; k < lines.length; k += 32) largest = fmaxf(largest, s[k * lines.step]);
    largest = warp_max(largest);
    float total = 0.f;
    for (int64_t k = lane; k < lines.length; k += 32) total += expf(s[k * lines.step] - largest);
    total = warp_sum(total);
    for (int64_t k = lane; k < lines.length; k += 32)
      q[k * lines.step] = expf(s[k * lines.step] - largest) / total;
  }
  __syncthreads();
}

// The softmax backward along each line: grad <- probs * (grad - sum_k probs * grad) [+ base],
// one warp per line; `base` (may be nullptr) is added after, entry by entry. Ends with a barrier.
__device__ inline void softmax_grad_lines(Lines lines, const float* probs, float* grad,
                                          const float* base) {
  const int lane = threadIdx.x % 32;
  for (int64_t l = threadIdx.x / 32; l < lines.count; l += kPairWarps) {
    const int64_t first = l * lines.line_step;
    float dot = 0.f;
    for (int64_t k = lane; k < lines.length; k += 32)
      dot += probs[first + k * lines.step] * grad[first + k * lines.step];
    dot = warp_sum(dot);
    for (int64_t k = lane; k < lines.length; k += 32) {
      const int64_t at = first + k * lines.step;
      grad[at] = probs[at] * (grad[at] - dot) + (base ? base[at] : 0.f);
    }
  }
  __syncthreads();
}

// to[k] = from[k] for k < count, the block's threads striding over k. Ends with a barrier.
__device__ inline void copy_floats(const float* from, float* to, int64_t count) {
  for (int64_t k = threadIdx.x; k < count; k += kPairThreads) to[k] = from[k];
  __syncthreads();
}

// One product of pair_mix: M(r, k) = m[r * row_step + k * step] (a pair matrix or its
// transpose) times the (inner, dim) rows x. m == nullptr: no such term.
template <typename T>
struct MixTerm {
  const float* m = nullptr;
  int64_t row_step = 0, step = 0;
  const T* x = nullptr;
};

// acc[r] += sum_{k < inner} M(r0 + r, k) x(k, c) for the rows r0 + r < rows.
template <typename T>
__device__ __forceinline__ void add_products(const MixTerm<T>& t, int64_t r0, int64_t rows,
                                             int64_t inner, int64_t dim, int64_t c,
                                             float (&acc)[kMixRows]) {
  if (t.m == nullptr) return;
  for (int64_t k = 0; k < inner; ++k) {
    const float x = to_float(t.x[k * dim + c]);
    const float* m = t.m + r0 * t.row_step + k * t.step;
#pragma unroll
    for (int r = 0; r < kMixRows; ++r)
      if (r0 + r < rows) acc[r] += m[r * t.row_step] * x;
  }
}

// out(r, c) = sum_{k < inner} M1(r, k) x1(k, c) [+ M2(r, k) x2(k, c)] for r < rows, and 0 for
// rows <= r < padded_rows (also every row when inner is 0). Each thread keeps kMixRows rows of
// one column in registers, so each x(k, c) read serves kMixRows outputs; (row group, column) work
// items are spread over the block so that d = 600 keeps every thread busy. No barrier.
template <typename T>
__device__ void pair_mix(const MixTerm<T>& t1, const MixTerm<T>& t2, int64_t rows,
                         int64_t padded_rows, int64_t inner, int64_t dim, T* out) {
  if (dim == 0) return;
  // Item = group * dim + c, stepped by kPairThreads; a GPU has no integer divide instruction, so
  // only a step that wraps past dim divides.
  int64_t r0 = threadIdx.x / dim * kMixRows, c = threadIdx.x % dim;
  for (; r0 < padded_rows; c += kPairThreads) {
    if (c >= dim) {
      r0 += c / dim * kMixRows;
      c %= dim;
      if (r0 >= padded_rows) break;
    }
    float acc[kMixRows] = {};
    if (r0 < rows) {
      add_products(t1, r0, rows, inner, dim, c, acc);
      add_products(t2, r0, rows, inner, dim, c, acc);
    }
#pragma unroll
    for (int r = 0; r < kMixRows; ++r)
      if (r0 + r < padded_rows)
        out[(r0 + r) * dim + c] = from_float<T>(r0 + r < rows ? acc[r] : 0.f);
  }
}

}  // namespace cuda
}  // namespace dynbatch
