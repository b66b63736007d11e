// The op schemas, declared once for every backend. Implementations: ops/cpu, ops/cuda.
// Autograd and fake (meta) kernels are registered from Python (python/dynbatch_ext/ops/registration.py).
#include <torch/library.h>

TORCH_LIBRARY(dynbatch_ext, m) {
  m.def("soft_align(Tensor a, Tensor b, Tensor len_a, Tensor len_b) -> (Tensor, Tensor)");
  m.def(
      "soft_align_backward(Tensor grad_a_tilde, Tensor grad_b_tilde, Tensor a, Tensor b, "
      "Tensor len_a, Tensor len_b) -> (Tensor, Tensor)");
  m.def("masked_pool(Tensor x, Tensor len_x) -> Tensor");
  m.def("masked_pool_backward(Tensor grad_out, Tensor x, Tensor len_x) -> Tensor");
}
