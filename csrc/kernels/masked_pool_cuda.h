// Launchers of the CUDA masked_pool kernels (masked_pool.cu). Torch-free, like soft_align_cuda.h.
#pragma once

#include <cuda_runtime_api.h>

#include "kernels/masked_pool_params.h"

namespace dynbatch {

template <typename T>
cudaError_t launch_masked_pool_forward(const MaskedPoolForwardParams<T>& params,
                                       cudaStream_t stream);
template <typename T>
cudaError_t launch_masked_pool_backward(const MaskedPoolBackwardParams<T>& params,
                                        cudaStream_t stream);

}  // namespace dynbatch
