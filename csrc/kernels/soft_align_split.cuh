// soft_align with each pair split over many thread blocks, for batches too small to fill the GPU
// with one block per pair: a quadratic budget gives 4 pairs of length 512, and 4 blocks leave
// nearly every SM of an H100 idle. Each step of the per-pair kernels (soft_align_kernels.cuh)
// becomes a launch over (piece of a pair, pair): 32 x 32 tiles of the score products, groups of
// lines for the softmaxes and their gradients, groups of output rows for the mixes. The pair's
// matrices live in the global workspace between launches. The softmaxes stay exact: a launch
// starts when the one before has written every score, so each line's max and sum are over the
// whole line, as in the per-pair kernels. Each output is the same float arithmetic in the same
// order as there, so both paths give the same bits (the emulator checks it). No torch header.
#pragma once

#include "kernels/soft_align_kernels.cuh"

namespace dynbatch {
namespace cuda {

constexpr int kSplitLines = 2 * kPairWarps;  // softmax lines per block (two per warp)
constexpr int kSplitMixRows = 4 * kMixRows;  // output rows per block of a mix

// Split when one block per pair would leave more than half of the SMs without a block, and a
// pair has more than one tile of scores to share out. (Not yet tuned on a GPU.)
inline bool split_pairs(int64_t batch, int64_t max_a, int64_t max_b, int sm_count) {
  return 2 * batch < sm_count && max_a > 0 && max_b > 0 && (max_a > kDotTile || max_b > kDotTile);
}

// How a launcher runs a batch: split, with its matrices in the workspace, or one block per pair
// (launch_pairs, matrices in shared memory or the workspace); and the workspace it needs.
struct LaunchPlan {
  bool split = false;
  int64_t workspace_floats = 0;
};

inline cudaError_t plan_launch(int64_t batch, int64_t max_a, int64_t max_b, int matrices,
                               LaunchPlan& out) {
  int sm_count = 0;
  cudaError_t status = current_device_attribute(cudaDevAttrMultiProcessorCount, sm_count);
  if (status != cudaSuccess) return status;
  out = LaunchPlan{};
  out.split = split_pairs(batch, max_a, max_b, sm_count);
  if (out.split) {
    out.workspace_floats = batch * matrices * max_a * max_b;
    return cudaSuccess;
  }
  Scratch scratch;
  status = plan_scratch(batch, max_a, max_b, matrices, scratch);
  out.workspace_floats = scratch.workspace_floats;
  return status;
}

// Score products of the split path: matrix slot[k] of each pair (0: P_row's place, 2: G1, 3: G2)
// = x[k] y[k]^T over the pair's valid rows, x[k] of a's shape and y[k] of b's, for k < count.
template <typename T>
struct SplitDots {
  const T* x[3] = {};
  const T* y[3] = {};
  int slot[3] = {};
  int count = 0;
};

// Block (tile, pair n, product k).
template <typename T>
__global__ void __launch_bounds__(kPairThreads, kPairBlocksPerSM)
    soft_align_split_dots_kernel(SoftAlignParams<T> p, SplitDots<T> dots, float* workspace,
                      int64_t floats_per_pair) {
  const Pair<T> pair = pair_at(p, blockIdx.y, nullptr, workspace, floats_per_pair);
  const int64_t tiles_b = (p.max_len_b + kDotTile - 1) / kDotTile;
  const int64_t i0 = blockIdx.x / tiles_b * kDotTile, j0 = blockIdx.x % tiles_b * kDotTile;
  if (i0 >= pair.la || j0 >= pair.lb) return;  // the whole block: past the pair's valid block
  // Selects instead of indexing by blockIdx.z, which would copy the arrays to local memory.
  const unsigned k = blockIdx.z;
  const T* x = k == 0 ? dots.x[0] : (k == 1 ? dots.x[1] : dots.x[2]);
  const T* y = k == 0 ? dots.y[0] : (k == 1 ? dots.y[1] : dots.y[2]);
  const int slot = k == 0 ? dots.slot[0] : (k == 1 ? dots.slot[1] : dots.slot[2]);
  tile_dots(x + pair.offset_a, pair.la, y + pair.offset_b, pair.lb, p.dim, i0, j0,
            pair.p_row + slot * pair.la * pair.lb);
}

// What a launch of soft_align_split_lines_kernel does to its lines (in the per-pair kernels'
// order).
enum class LineStep {
  kColumnSoftmax,      // P_col = softmax_i(S), S in P_row's place
  kRowSoftmax,         // P_row = softmax_j(S), in place
  kRowSoftmaxAndGrad,  // that, then G1 <- P_row (G1 - rowsum(P_row G1))
  kColumnGrad,         // dS = P_col (G2 - colsum(P_col G2)) + G1, in G2's place
};

// Block (group of kSplitLines lines, pair n).
template <typename T>
__global__ void __launch_bounds__(kPairThreads, kPairBlocksPerSM)
    soft_align_split_lines_kernel(SoftAlignParams<T> p, LineStep step, float* workspace,
                       int64_t floats_per_pair) {
  const Pair<T> pair = pair_at(p, blockIdx.y, nullptr, workspace, floats_per_pair);
  if (pair.la == 0 || pair.lb == 0) return;  // nothing computed; the mixes write zeros
  const bool rows = step == LineStep::kRowSoftmax || step == LineStep::kRowSoftmaxAndGrad;
  Lines lines = rows ? rows_of(pair.la, pair.lb) : columns_of(pair.la, pair.lb);
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kSplitLines;
  if (first >= lines.count) return;
  lines.count = lines.count - first < kSplitLines ? lines.count - first : kSplitLines;
  const int64_t cells = pair.la * pair.lb, offset = first * lines.line_step;
  float* p_row = pair.p_row + offset;
  float* p_col = pair.p_col + offset;
  float* g1 = pair.p_row + 2 * cells + offset;
  float* ds = pair.p_row + 3 * cells + offset;
  switch (step) {
    case LineStep::kColumnSoftmax: softmax_lines(lines, p_row, p_col); break;
    case LineStep::kRowSoftmax: softmax_lines(lines, p_row, p_row); break;
    case LineStep::kRowSoftmaxAndGrad:
      softmax_lines(lines, p_row, p_row);
      softmax_grad_lines(lines, p_row, g1, nullptr);
      break;
    case LineStep::kColumnGrad: softmax_grad_lines(lines, p_col, ds, g1); break;
  }
}

// pair_mix over output rows [r0, r0 + kSplitMixRows) alone.
template <typename T>
__device__ void mix_rows(MixTerm<T> t1, MixTerm<T> t2, int64_t rows, int64_t padded_rows,
                         int64_t inner, int64_t dim, T* out, int64_t r0) {
  if (t1.m) t1.m += r0 * t1.row_step;
  if (t2.m) t2.m += r0 * t2.row_step;
  const int64_t valid = rows - r0 < 0 ? 0 : (rows - r0 < kSplitMixRows ? rows - r0 : kSplitMixRows);
  const int64_t padded = padded_rows - r0 < kSplitMixRows ? padded_rows - r0 : kSplitMixRows;
  pair_mix(t1, t2, valid, padded, inner, dim, out + r0 * dim);
}

// Block (group of kSplitMixRows output rows, pair n, side: 0 for a~, 1 for b~).
template <typename T>
__global__ void __launch_bounds__(kPairThreads, kPairBlocksPerSM)
    soft_align_split_forward_mix_kernel(SoftAlignForwardParams<T> p, float* workspace,
                             int64_t floats_per_pair) {
  const Pair<T> pair = pair_at(p, blockIdx.y, nullptr, workspace, floats_per_pair);
  const int64_t r0 = static_cast<int64_t>(blockIdx.x) * kSplitMixRows, d = p.dim;
  const int64_t la = pair.la, lb = pair.lb;
  if (blockIdx.z == 0 && r0 < p.max_len_a)  // a~ = P_row B
    mix_rows(MixTerm<T>{pair.p_row, lb, 1, pair.b}, MixTerm<T>{}, la, p.max_len_a, lb, d,
             p.a_tilde + pair.offset_a, r0);
  if (blockIdx.z == 1 && r0 < p.max_len_b)  // b~ = P_col^T A
    mix_rows(MixTerm<T>{pair.p_col, 1, lb, pair.a}, MixTerm<T>{}, lb, p.max_len_b, la, d,
             p.b_tilde + pair.offset_b, r0);
}

template <typename T>
__global__ void __launch_bounds__(kPairThreads, kPairBlocksPerSM)
    soft_align_split_backward_mix_kernel(SoftAlignBackwardParams<T> p, float* workspace,
                              int64_t floats_per_pair) {
  const Pair<T> pair = pair_at(p, blockIdx.y, nullptr, workspace, floats_per_pair);
  const int64_t r0 = static_cast<int64_t>(blockIdx.x) * kSplitMixRows, d = p.dim;
  const int64_t la = pair.la, lb = pair.lb;
  const float* ds = pair.p_row + 3 * la * lb;
  const T* g_a = p.grad_a_tilde + pair.offset_a;
  const T* g_b = p.grad_b_tilde + pair.offset_b;
  if (blockIdx.z == 0 && r0 < p.max_len_a)  // grad_a = P_col g_b~ + dS B
    mix_rows(MixTerm<T>{pair.p_col, lb, 1, g_b}, MixTerm<T>{ds, lb, 1, pair.b}, la, p.max_len_a,
             lb, d, p.grad_a + pair.offset_a, r0);
  if (blockIdx.z == 1 && r0 < p.max_len_b)  // grad_b = P_row^T g_a~ + dS^T A
    mix_rows(MixTerm<T>{pair.p_row, 1, lb, g_a}, MixTerm<T>{ds, 1, lb, pair.a}, lb, p.max_len_b,
             la, d, p.grad_b + pair.offset_b, r0);
}

inline unsigned blocks_for(int64_t count, int64_t per_block) {
  return static_cast<unsigned>((count + per_block - 1) / per_block);
}

// The grids of a pass's launches: (tile, pair, product), (line group, pair) over the columns or
// the rows, and (row group, pair, side).
struct SplitGrids {
  unsigned batch, tiles;
  dim3 columns, rows, mixes;

  SplitGrids(int64_t pairs, int64_t max_a, int64_t max_b)
      : batch(static_cast<unsigned>(pairs)),
        tiles(blocks_for(max_a, kDotTile) * blocks_for(max_b, kDotTile)),
        columns(blocks_for(max_b, kSplitLines), batch),
        rows(blocks_for(max_a, kSplitLines), batch),
        mixes(blocks_for(max_a > max_b ? max_a : max_b, kSplitMixRows), batch, 2) {}
  dim3 dots(int count) const { return dim3(tiles, batch, count); }
};

// The launches of one pass, in order on `stream`; `workspace` of plan_launch's size.
template <typename T>
cudaError_t launch_split_forward(const SoftAlignForwardParams<T>& p, float* workspace,
                                 cudaStream_t stream) {
  if (workspace == nullptr) return cudaErrorInvalidValue;
  const SoftAlignParams<T>& base = p;
  const int64_t per_pair = kForwardMatrices * p.max_len_a * p.max_len_b;
  const SplitGrids grids(p.batch, p.max_len_a, p.max_len_b);
  SplitDots<T> dots;  // S = A B^T
  dots.x[0] = p.a, dots.y[0] = p.b, dots.slot[0] = 0, dots.count = 1;
  DYNBATCH_LAUNCH(soft_align_split_dots_kernel<T>, grids.dots(dots.count), kPairThreads, 0,
                  stream, base, dots, workspace, per_pair);
  DYNBATCH_LAUNCH(soft_align_split_lines_kernel<T>, grids.columns, kPairThreads, 0, stream, base,
                  LineStep::kColumnSoftmax, workspace, per_pair);
  DYNBATCH_LAUNCH(soft_align_split_lines_kernel<T>, grids.rows, kPairThreads, 0, stream, base,
                  LineStep::kRowSoftmax, workspace, per_pair);
  DYNBATCH_LAUNCH(soft_align_split_forward_mix_kernel<T>, grids.mixes, kPairThreads, 0, stream, p,
                  workspace, per_pair);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_split_backward(const SoftAlignBackwardParams<T>& p, float* workspace,
                                  cudaStream_t stream) {
  if (workspace == nullptr) return cudaErrorInvalidValue;
  const SoftAlignParams<T>& base = p;
  const int64_t per_pair = kBackwardMatrices * p.max_len_a * p.max_len_b;
  const SplitGrids grids(p.batch, p.max_len_a, p.max_len_b);
  SplitDots<T> dots;  // S = A B^T, G1 = g_a~ B^T, G2 = A g_b~^T
  dots.x[0] = p.a, dots.y[0] = p.b, dots.slot[0] = 0;
  dots.x[1] = p.grad_a_tilde, dots.y[1] = p.b, dots.slot[1] = 2;
  dots.x[2] = p.a, dots.y[2] = p.grad_b_tilde, dots.slot[2] = 3;
  dots.count = 3;
  DYNBATCH_LAUNCH(soft_align_split_dots_kernel<T>, grids.dots(dots.count), kPairThreads, 0,
                  stream, base, dots, workspace, per_pair);
  DYNBATCH_LAUNCH(soft_align_split_lines_kernel<T>, grids.columns, kPairThreads, 0, stream, base,
                  LineStep::kColumnSoftmax, workspace, per_pair);
  DYNBATCH_LAUNCH(soft_align_split_lines_kernel<T>, grids.rows, kPairThreads, 0, stream, base,
                  LineStep::kRowSoftmaxAndGrad, workspace, per_pair);
  DYNBATCH_LAUNCH(soft_align_split_lines_kernel<T>, grids.columns, kPairThreads, 0, stream, base,
                  LineStep::kColumnGrad, workspace, per_pair);
  DYNBATCH_LAUNCH(soft_align_split_backward_mix_kernel<T>, grids.mixes, kPairThreads, 0, stream,
                  p, workspace, per_pair);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace dynbatch
