// soft_align's CUDA launchers for the ops: the kernels of soft_align_kernels.cuh, with the
// backward recomputing the probabilities, for the types of DYNBATCH_CUDA_TYPES.
#include "kernels/dtypes.h"
#include "kernels/soft_align_cuda.h"
#include "kernels/soft_align_kernels.cuh"

namespace dynbatch {

cudaError_t soft_align_forward_workspace(int64_t batch, int64_t max_len_a, int64_t max_len_b,
                                         int64_t* floats) {
  return cuda::workspace_floats(batch, max_len_a, max_len_b, cuda::kForwardMatrices, floats);
}

cudaError_t soft_align_backward_workspace(int64_t batch, int64_t max_len_a, int64_t max_len_b,
                                          int64_t* floats) {
  return cuda::workspace_floats(batch, max_len_a, max_len_b, cuda::kBackwardMatrices, floats);
}

template <typename T>
cudaError_t launch_soft_align_forward(const SoftAlignForwardParams<T>& p, float* workspace,
                                      cudaStream_t stream) {
  return cuda::launch_pairs(cuda::soft_align_forward_kernel<T, false>, p, cuda::kForwardMatrices,
                            workspace, static_cast<float*>(nullptr), stream);
}

template <typename T>
cudaError_t launch_soft_align_backward(const SoftAlignBackwardParams<T>& p, float* workspace,
                                       cudaStream_t stream) {
  return cuda::launch_pairs(cuda::soft_align_backward_kernel<T, false>, p,
                            cuda::kBackwardMatrices, workspace,
                            static_cast<const float*>(nullptr), stream);
}

#define DYNBATCH_INSTANTIATE(T)                                                              \
  template cudaError_t launch_soft_align_forward<T>(const SoftAlignForwardParams<T>&, float*, \
                                                    cudaStream_t);                           \
  template cudaError_t launch_soft_align_backward<T>(const SoftAlignBackwardParams<T>&,       \
                                                     float*, cudaStream_t);
DYNBATCH_CUDA_TYPES(DYNBATCH_INSTANTIATE)

}  // namespace dynbatch
