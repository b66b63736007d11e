// Launchers of the CUDA soft_align kernels (soft_align.cu). Torch-free: the op layer passes raw
// pointers in the params structs of soft_align_params.h plus a float32 workspace, and checks the
// returned cudaError_t. T: a type of DYNBATCH_CUDA_TYPES (dtypes.h); arithmetic is in float.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/soft_align_params.h"

namespace dynbatch {

// Floats of float32 workspace the launcher needs on the current device: 0 when it runs one block
// per pair and each pair's matrices fit in shared memory; else matrices * max_len_a * max_len_b
// per pair (also when it splits each pair over many blocks, for a batch too small to fill the
// device: soft_align_split.cuh). The launchers
// take `workspace` of at least that many floats (nullptr when 0). The backward recomputes the
// probabilities (soft_align_kernels.cuh says why).
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

}  // namespace dynbatch
