// The CPU kernels of every dynbatch_ext op.
#include <torch/library.h>

#include "ops/cpu/cpu_ops.h"

TORCH_LIBRARY_IMPL(dynbatch_ext, CPU, m) {
  m.impl("soft_align", &dynbatch::soft_align_cpu);
  m.impl("soft_align_backward", &dynbatch::soft_align_backward_cpu);
  m.impl("masked_pool", &dynbatch::masked_pool_cpu);
  m.impl("masked_pool_backward", &dynbatch::masked_pool_backward_cpu);
}
