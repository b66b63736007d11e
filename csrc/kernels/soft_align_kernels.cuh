// The soft_align CUDA kernels and their launch, shared by the ops' launchers (soft_align.cu) and
// the benchmark program that times saved against recomputed probabilities
// (bench/soft_align_probs.cu). No torch header.
//
// One launch per pass, one thread block per pair (striding over the batch), every step of the
// pair done by the same block over its valid la x lb block only (soft_align_split.cuh splits the
// pairs of a batch too small for this to fill the GPU):
//   S = A B^T once (both softmaxes read it), P_col = softmax_i(S), P_row = softmax_j(S),
//   a~ = P_row B, b~ = P_col^T A; rows past a length are written as 0, never computed.
// The pair's matrices stay on chip (dynamic shared memory) unless they are too large, and then
// go to a float workspace in global memory (see plan_scratch), so no B x La x Lb tensor makes a
// round trip through DRAM between steps for SNLI-length pairs.
// The ops' backward recomputes S and the probabilities from A and B, which it reads anyway: the
// recomputation is la * lb * d multiply-adds per pair on data already on chip. The kernels'
// kSavedProbs instantiation is the other choice (the forward also writes each pair's P_row and
// P_col, the backward reads them back), compiled only into the benchmark program.
// With G1 = g_a~ B^T and G2 = A g_b~^T,
//   dS = P_row (G1 - rowsum(P_row G1)) + P_col (G2 - colsum(P_col G2)),
//   grad_a = P_col g_b~ + dS B,   grad_b = P_row^T g_a~ + dS^T A.
#pragma once

#include "kernels/pair_block.cuh"
#include "kernels/soft_align_params.h"

namespace dynbatch {
namespace cuda {

constexpr int kForwardMatrices = 2;   // P_row, P_col
constexpr int kBackwardMatrices = 4;  // P_row, P_col, G1 (then P_row part of dS), G2 (then dS)
constexpr int kDefaultSharedBytes = 48 * 1024;  // past this a kernel must opt in

// Where the pair matrices live. shared_bytes > 0: in dynamic shared memory, one set per block;
// else in a workspace of workspace_floats, one set of `matrices * max_a * max_b` floats per pair.
struct Scratch {
  int shared_bytes = 0;
  int64_t workspace_floats = 0;
  int64_t floats_per_pair = 0;
};

// `attribute` of the current device.
inline cudaError_t current_device_attribute(cudaDeviceAttr attribute, int& value) {
  int device = 0;
  const cudaError_t status = cudaGetDevice(&device);
  return status == cudaSuccess ? cudaDeviceGetAttribute(&value, attribute, device) : status;
}

// Shared memory when the matrices fit in half of what a block may opt in to, so that at least
// two blocks share an SM and one's memory traffic overlaps the other's barriers.
inline cudaError_t plan_scratch(int64_t batch, int64_t max_a, int64_t max_b, int matrices,
                                Scratch& out) {
  int optin = 0;
  const cudaError_t status =
      current_device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin, optin);
  if (status != cudaSuccess) return status;
  out = Scratch{};
  out.floats_per_pair = matrices * max_a * max_b;
  const int64_t bytes = out.floats_per_pair * static_cast<int64_t>(sizeof(float));
  if (bytes + kDotSharedBytes <= optin / 2)
    out.shared_bytes = static_cast<int>(bytes);
  else
    out.workspace_floats = batch * out.floats_per_pair;
  return cudaSuccess;
}

// Pair n of the batch: its lengths (the kernel stops on one out of range), where its rows start
// in the (B, La, d) and (B, Lb, d) arrays and its rows of a and b, and its first two matrices,
// P_row and P_col, la x lb each (in the block's dynamic shared memory, or in the pair's part of
// the workspace; further matrices follow P_col).
template <typename T>
struct Pair {
  int64_t la, lb, offset_a, offset_b;
  const T* a;
  const T* b;
  float* p_row;
  float* p_col;
};

template <typename T>
__device__ __forceinline__ Pair<T> pair_at(const SoftAlignParams<T>& p, int64_t n, float* shared,
                                           float* workspace, int64_t floats_per_pair) {
  const int64_t la = p.len_a[n], lb = p.len_b[n];
  require_length(la, p.max_len_a, "len_a", n);
  require_length(lb, p.max_len_b, "len_b", n);
  const int64_t offset_a = n * p.max_len_a * p.dim, offset_b = n * p.max_len_b * p.dim;
  float* matrices = workspace ? workspace + n * floats_per_pair : shared;
  return Pair<T>{la, lb, offset_a, offset_b, p.a + offset_a, p.b + offset_b, matrices,
                 matrices + la * lb};
}

// S into p_row, then P_col from it, then P_row in place. Ends with a barrier.
template <typename T>
__device__ void pair_probabilities(const T* a, int64_t la, const T* b, int64_t lb, int64_t dim,
                                   float* p_row, float* p_col) {
  if (la == 0 || lb == 0) return;  // nothing to compute; the mixes write zeros
  pair_dots(a, la, b, lb, dim, p_row);
  softmax_lines(columns_of(la, lb), p_row, p_col);
  softmax_lines(rows_of(la, lb), p_row, p_row);
}

// Pair n's saved probabilities: P_row then P_col, la * lb floats each (as in the pair's matrices).
__device__ __forceinline__ int64_t saved_probs_offset(int64_t n, int64_t max_a, int64_t max_b) {
  return n * 2 * max_a * max_b;
}

// kSavedProbs: also write each pair's probabilities to saved_probs (else it is unused).
template <typename T, bool kSavedProbs>
__global__ void __launch_bounds__(kPairThreads, kPairBlocksPerSM)
    soft_align_forward_kernel(SoftAlignForwardParams<T> p, float* workspace,
                              int64_t floats_per_pair, float* saved_probs) {
  DYNBATCH_DYNAMIC_SHARED(float, shared);
  const int64_t d = p.dim;
  for (int64_t n = blockIdx.x; n < p.batch; n += gridDim.x) {
    const Pair<T> pair = pair_at(p, n, shared, workspace, floats_per_pair);
    const int64_t la = pair.la, lb = pair.lb;
    const T *a = pair.a, *b = pair.b;
    float *p_row = pair.p_row, *p_col = pair.p_col;
    pair_probabilities(a, la, b, lb, d, p_row, p_col);
    if constexpr (kSavedProbs)  // P_col follows P_row in both places
      copy_floats(p_row, saved_probs + saved_probs_offset(n, p.max_len_a, p.max_len_b),
                  2 * la * lb);
    // a~ = P_row B (inner over j < lb); b~ = P_col^T A (inner over i < la).
    pair_mix(MixTerm<T>{p_row, lb, 1, b}, MixTerm<T>{}, la, p.max_len_a, lb, d,
             p.a_tilde + pair.offset_a);
    pair_mix(MixTerm<T>{p_col, 1, lb, a}, MixTerm<T>{}, lb, p.max_len_b, la, d,
             p.b_tilde + pair.offset_b);
    __syncthreads();  // the next pair reuses the shared matrices
  }
}

// kSavedProbs: read the probabilities the forward saved instead of recomputing them.
template <typename T, bool kSavedProbs>
__global__ void __launch_bounds__(kPairThreads, kPairBlocksPerSM)
    soft_align_backward_kernel(SoftAlignBackwardParams<T> p, float* workspace,
                               int64_t floats_per_pair, const float* saved_probs) {
  DYNBATCH_DYNAMIC_SHARED(float, shared);
  const int64_t d = p.dim;
  for (int64_t n = blockIdx.x; n < p.batch; n += gridDim.x) {
    const Pair<T> pair = pair_at(p, n, shared, workspace, floats_per_pair);
    const int64_t la = pair.la, lb = pair.lb;
    const T *a = pair.a, *b = pair.b;
    const T* g_a = p.grad_a_tilde + pair.offset_a;
    const T* g_b = p.grad_b_tilde + pair.offset_b;
    float *p_row = pair.p_row, *p_col = pair.p_col;
    float* g1 = p_col + la * lb;
    float* ds = g1 + la * lb;
    if constexpr (kSavedProbs)
      copy_floats(saved_probs + saved_probs_offset(n, p.max_len_a, p.max_len_b), p_row,
                  2 * la * lb);
    else
      pair_probabilities(a, la, b, lb, d, p_row, p_col);
    if (la > 0 && lb > 0) {
      pair_dots(g_a, la, b, lb, d, g1);  // G1 = g_a~ B^T
      pair_dots(a, la, g_b, lb, d, ds);  // G2 = A g_b~^T
      softmax_grad_lines(rows_of(la, lb), p_row, g1, nullptr);
      softmax_grad_lines(columns_of(la, lb), p_col, ds, g1);  // ds now holds dS
    }
    // grad_a = P_col g_b~ + dS B (inner over j < lb); grad_b = P_row^T g_a~ + dS^T A.
    pair_mix(MixTerm<T>{p_col, lb, 1, g_b}, MixTerm<T>{ds, lb, 1, b}, la, p.max_len_a, lb, d,
             p.grad_a + pair.offset_a);
    pair_mix(MixTerm<T>{p_row, 1, lb, g_a}, MixTerm<T>{ds, 1, lb, a}, lb, p.max_len_b, la, d,
             p.grad_b + pair.offset_b);
    __syncthreads();
  }
}

// A batch with no element to write (no pair, no feature, or no row on either side).
template <typename T>
inline bool nothing_to_launch(const SoftAlignParams<T>& p) {
  return p.batch == 0 || p.dim == 0 || (p.max_len_a == 0 && p.max_len_b == 0);
}

// One block per pair, up to the grid limit (the blocks then stride over the batch).
template <typename Params, typename Probs>
cudaError_t launch_pairs(void (*kernel)(Params, float*, int64_t, Probs*), const Params& p,
                         int matrices, float* workspace, Probs* saved_probs,
                         cudaStream_t stream) {
  if (nothing_to_launch(p)) return cudaSuccess;
  Scratch scratch;
  cudaError_t status = plan_scratch(p.batch, p.max_len_a, p.max_len_b, matrices, scratch);
  if (status != cudaSuccess) return status;
  if (scratch.workspace_floats > 0 && workspace == nullptr) return cudaErrorInvalidValue;
  if (scratch.shared_bytes + kDotSharedBytes > kDefaultSharedBytes) {
    status = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  scratch.shared_bytes);
    if (status != cudaSuccess) return status;
  }
  const unsigned blocks = static_cast<unsigned>(p.batch < 65535 ? p.batch : 65535);
  DYNBATCH_LAUNCH(kernel, blocks, kPairThreads, scratch.shared_bytes, stream, p,
                  scratch.shared_bytes > 0 ? nullptr : workspace, scratch.floats_per_pair,
                  saved_probs);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace dynbatch
