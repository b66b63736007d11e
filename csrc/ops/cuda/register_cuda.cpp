// The CUDA kernels of every dynbatch_ext op (built only when torch has CUDA).
#include <torch/library.h>

#include "ops/cuda/cuda_ops.h"

TORCH_LIBRARY_IMPL(dynbatch_ext, CUDA, m) {
  m.impl("soft_align", &dynbatch::soft_align_cuda);
  m.impl("soft_align_backward", &dynbatch::soft_align_backward_cuda);
  m.impl("masked_pool", &dynbatch::masked_pool_cuda);
  m.impl("masked_pool_backward", &dynbatch::masked_pool_backward_cuda);
}
