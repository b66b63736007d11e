// soft_align's schemas (declared once for every backend), input checks and autocast kernels.
// Its backends: cpu/soft_align.cpp, cuda/soft_align.cpp; its fake kernels and autograd:
// python/dynbatch_ext/ops/soft_align.py.
#include "ops/soft_align.h"

#include <torch/library.h>

#include <tuple>

#include "ops/autocast.h"

TORCH_LIBRARY_FRAGMENT(dynbatch_ext, m) {
  m.def("soft_align(Tensor a, Tensor b, Tensor len_a, Tensor len_b) -> (Tensor, Tensor)");
  m.def(
      "soft_align_backward(Tensor grad_a_tilde, Tensor grad_b_tilde, Tensor a, Tensor b, "
      "Tensor len_a, Tensor len_b) -> (Tensor, Tensor)");
}

namespace dynbatch {

void check_soft_align_inputs(const at::Tensor& a, const at::Tensor& b, const at::Tensor& len_a,
                             const at::Tensor& len_b, LengthValues values) {
  check_3d(a, "a", "(B, La, d)");
  check_3d(b, "b", "(B, Lb, d)");
  TORCH_CHECK_VALUE(a.device() == b.device(), "a is on ", a.device(), " but b is on ", b.device());
  TORCH_CHECK_TYPE(a.scalar_type() == b.scalar_type(), "a and b must have the same dtype, got ",
                   a.scalar_type(), " and ", b.scalar_type());
  TORCH_CHECK_VALUE(a.size(0) == b.size(0), "a and b have different batch sizes (", a.size(0),
                    " and ", b.size(0), ")");
  TORCH_CHECK_VALUE(a.size(2) == b.size(2), "a and b have different feature sizes (", a.size(2),
                    " and ", b.size(2), ")");
  check_length_tensor(len_a, "len_a", a.size(0), a);
  check_length_tensor(len_b, "len_b", b.size(0), b);
  if (values == LengthValues::check)
    check_length_values({{len_a, "len_a", a.size(1), "a"}, {len_b, "len_b", b.size(1), "b"}});
}

namespace {

template <c10::DeviceType device>
std::tuple<at::Tensor, at::Tensor> soft_align_autocast(const at::Tensor& a, const at::Tensor& b,
                                                       const at::Tensor& len_a,
                                                       const at::Tensor& len_b) {
  const BelowAutocast<device> below;
  static const auto op =
      find_op<decltype(soft_align_autocast<device>)>("dynbatch_ext::soft_align");
  return op.call(autocast_input<device>(a), autocast_input<device>(b), len_a, len_b);
}

}  // namespace
}  // namespace dynbatch

TORCH_LIBRARY_IMPL(dynbatch_ext, AutocastCPU, m) {
  m.impl("soft_align", &dynbatch::soft_align_autocast<c10::DeviceType::CPU>);
}

TORCH_LIBRARY_IMPL(dynbatch_ext, AutocastCUDA, m) {
  m.impl("soft_align", &dynbatch::soft_align_autocast<c10::DeviceType::CUDA>);
}
