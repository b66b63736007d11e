// masked_pool's schemas (declared once for every backend), input checks and autocast kernel.
// Its backends: cpu/masked_pool.cpp, cuda/masked_pool.cpp; its fake kernels and autograd:
// python/dynbatch_ext/ops/masked_pool.py.
#include "ops/masked_pool.h"

#include <torch/library.h>

#include "ops/autocast.h"

TORCH_LIBRARY_FRAGMENT(dynbatch_ext, m) {
  m.def("masked_pool(Tensor x, Tensor len_x) -> Tensor");
  m.def("masked_pool_backward(Tensor grad_out, Tensor x, Tensor len_x) -> Tensor");
}

namespace dynbatch {

void check_masked_pool_inputs(const at::Tensor& x, const at::Tensor& len_x, LengthValues values) {
  check_3d(x, "x", "(B, L, d)");
  check_length_tensor(len_x, "len_x", x.size(0), x);
  if (values == LengthValues::check) check_length_values({{len_x, "len_x", x.size(1), "x"}});
}

void check_pool_gradient(const at::Tensor& grad_out, const at::Tensor& x) {
  TORCH_CHECK_VALUE(grad_out.dim() == 2 && grad_out.size(0) == x.size(0) &&
                        grad_out.size(1) == 2 * x.size(2),
                    "grad_out must have shape (B, 2d) = (", x.size(0), ", ", 2 * x.size(2),
                    "), got ", grad_out.sizes());
  TORCH_CHECK_TYPE(grad_out.scalar_type() == x.scalar_type(), "grad_out must be ",
                   x.scalar_type(), ", got ", grad_out.scalar_type());
  TORCH_CHECK_VALUE(grad_out.device() == x.device(), "grad_out is on ", grad_out.device(),
                    " but x is on ", x.device());
}


namespace {

template <c10::DeviceType device>
at::Tensor masked_pool_autocast(const at::Tensor& x, const at::Tensor& len_x) {
  const BelowAutocast<device> below;
  static const auto op =
      find_op<decltype(masked_pool_autocast<device>)>("dynbatch_ext::masked_pool");
  return op.call(autocast_input<device>(x), len_x);
}

}  // namespace
}  // namespace dynbatch

TORCH_LIBRARY_IMPL(dynbatch_ext, AutocastCPU, m) {
  m.impl("masked_pool", &dynbatch::masked_pool_autocast<c10::DeviceType::CPU>);
}

TORCH_LIBRARY_IMPL(dynbatch_ext, AutocastCUDA, m) {
  m.impl("masked_pool", &dynbatch::masked_pool_autocast<c10::DeviceType::CUDA>);
}
