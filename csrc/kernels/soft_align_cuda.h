// Launchers of the CUDA soft_align kernels (soft_align.cu). Torch-free: the op layer passes raw
// pointers in the params structs of soft_align.h plus a float32 workspace, and checks the
// returned cudaError_t. T is float, __half or __nv_bfloat16; arithmetic is in float.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/soft_align.h"

namespace dynbatch {

// Floats of float32 workspace the launcher needs on the current device (0 when each pair's
// matrices fit in shared memory; else matrices * max_len_a * max_len_b per pair). The launchers
// take `workspace` of at least that many floats (nullptr when 0).
cudaError_t soft_align_forward_workspace(int64_t batch, int64_t max_len_a, int64_t max_len_b,
                                         int64_t* floats);
cudaError_t soft_align_backward_workspace(int64_t batch, int64_t max_len_a, int64_t max_len_b,
                                          int64_t* floats);

template <typename T>
cudaError_t launch_soft_align_forward(const SoftAlignForwardParams<T>& params, float* workspace,
                                      cudaStream_t stream);
template <typename T>
cudaError_t launch_soft_align_backward(const SoftAlignBackwardParams<T>& params, float* workspace,
                                       cudaStream_t stream);

// The other choice for the probabilities, which the ops do not take (they recompute them in the
// backward): the forward also writes each pair's P_row and P_col to saved_probs, and the backward
// reads them there instead of recomputing. saved_probs holds batch * 2 * max_len_a * max_len_b
// floats. Only for benchmarks/kernels/soft_align_probs.cu, which times the two choices.
template <typename T>
cudaError_t launch_soft_align_forward_saving_probs(const SoftAlignForwardParams<T>& params,
                                                   float* workspace, float* saved_probs,
                                                   cudaStream_t stream);
template <typename T>
cudaError_t launch_soft_align_backward_from_probs(const SoftAlignBackwardParams<T>& params,
                                                  float* workspace, const float* saved_probs,
                                                  cudaStream_t stream);

}  // namespace dynbatch
