// The other choice for soft_align's attention probabilities, which the ops do not take (they
// recompute them in the backward): the forward also writes each pair's P_row and P_col to
// saved_probs, and the backward reads them there instead of recomputing. saved_probs holds
// batch * 2 * max_len_a * max_len_b floats; workspaces as for the ops' launchers
// (kernels/soft_align_cuda.h). Only for the benchmark program that times the two choices
// (soft_align_probs.cu) and the emulator's check that both give the same bits: never in _C.
#pragma once

#include "kernels/soft_align_kernels.cuh"

namespace dynbatch {

template <typename T>
cudaError_t launch_soft_align_forward_saving_probs(const SoftAlignForwardParams<T>& p,
                                                   float* workspace, float* saved_probs,
                                                   cudaStream_t stream) {
  if (saved_probs == nullptr) return cudaErrorInvalidValue;
  return cuda::launch_pairs(cuda::soft_align_forward_kernel<T, true>, p, cuda::kForwardMatrices,
                            workspace, saved_probs, stream);
}

template <typename T>
cudaError_t launch_soft_align_backward_from_probs(const SoftAlignBackwardParams<T>& p,
                                                  float* workspace, const float* saved_probs,
                                                  cudaStream_t stream) {
  if (saved_probs == nullptr) return cudaErrorInvalidValue;
  return cuda::launch_pairs(cuda::soft_align_backward_kernel<T, true>, p,
                            cuda::kBackwardMatrices, workspace, saved_probs, stream);
}

}  // namespace dynbatch
