// soft_align's CUDA launchers for the ops: the kernels of soft_align_kernels.cuh (one block per
// pair) or, for batches too small to fill the GPU that way, of soft_align_split.cuh; the backward
// recomputes the probabilities. For the types of DYNBATCH_CUDA_TYPES.
#include "kernels/dtypes.h"
#include "kernels/soft_align_cuda.h"
#include "kernels/soft_align_split.cuh"

namespace dynbatch {
namespace {

cudaError_t workspace_floats(int64_t batch, int64_t max_a, int64_t max_b, int matrices,
                             int64_t* floats) {
  cuda::LaunchPlan plan;
  const cudaError_t status = cuda::plan_launch(batch, max_a, max_b, matrices, plan);
  *floats = status == cudaSuccess ? plan.workspace_floats : 0;
  return status;
}

// One block per pair or split, as plan_launch chooses.
template <typename Params, typename Probs>
cudaError_t launch_either(const Params& p, int matrices,
                          void (*pair_kernel)(Params, float*, int64_t, Probs*),
                          cudaError_t (*launch_split)(const Params&, float*, cudaStream_t),
                          float* workspace, cudaStream_t stream) {
  if (cuda::nothing_to_launch(p)) return cudaSuccess;
  cuda::LaunchPlan plan;
  const cudaError_t status = cuda::plan_launch(p.batch, p.max_len_a, p.max_len_b, matrices, plan);
  if (status != cudaSuccess) return status;
  if (plan.split) return launch_split(p, workspace, stream);
  return cuda::launch_pairs(pair_kernel, p, matrices, workspace, static_cast<Probs*>(nullptr),
                            stream);
}

}  // namespace

cudaError_t soft_align_forward_workspace(int64_t batch, int64_t max_len_a, int64_t max_len_b,
                                         int64_t* floats) {
  return workspace_floats(batch, max_len_a, max_len_b, cuda::kForwardMatrices, floats);
}

cudaError_t soft_align_backward_workspace(int64_t batch, int64_t max_len_a, int64_t max_len_b,
                                          int64_t* floats) {
  return workspace_floats(batch, max_len_a, max_len_b, cuda::kBackwardMatrices, floats);
}

template <typename T>
cudaError_t launch_soft_align_forward(const SoftAlignForwardParams<T>& p, float* workspace,
                                      cudaStream_t stream) {
  return launch_either(p, cuda::kForwardMatrices, cuda::soft_align_forward_kernel<T, false>,
                       cuda::launch_split_forward<T>, workspace, stream);
}

template <typename T>
cudaError_t launch_soft_align_backward(const SoftAlignBackwardParams<T>& p, float* workspace,
                                       cudaStream_t stream) {
  return launch_either(p, cuda::kBackwardMatrices, cuda::soft_align_backward_kernel<T, false>,
                       cuda::launch_split_backward<T>, workspace, stream);
}

#define DYNBATCH_INSTANTIATE(T)                                                              \
  template cudaError_t launch_soft_align_forward<T>(const SoftAlignForwardParams<T>&, float*, \
                                                    cudaStream_t);                           \
  template cudaError_t launch_soft_align_backward<T>(const SoftAlignBackwardParams<T>&,       \
                                                     float*, cudaStream_t);
DYNBATCH_CUDA_TYPES(DYNBATCH_INSTANTIATE)

}  // namespace dynbatch
