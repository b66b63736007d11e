// soft_align and its backward on the CPU (kernels/soft_align_cpu.cpp), pairs in parallel on
// torch's thread pool; registered below.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "kernels/soft_align.h"
#include "ops/checks.h"
#include "ops/dispatch.h"
#include "ops/params.h"

namespace dynbatch {
namespace {

std::tuple<at::Tensor, at::Tensor> soft_align(const at::Tensor& a_in, const at::Tensor& b_in,
                                              const at::Tensor& len_a_in,
                                              const at::Tensor& len_b_in) {
  check_soft_align_inputs(a_in, b_in, len_a_in, len_b_in);
  const at::Tensor a = a_in.contiguous(), b = b_in.contiguous();
  const at::Tensor len_a = len_a_in.contiguous(), len_b = len_b_in.contiguous();
  at::Tensor a_tilde = at::empty_like(a), b_tilde = at::empty_like(b);
  DYNBATCH_DISPATCH(DYNBATCH_CPU_TYPES, a, "soft_align", "CPU", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const auto params = soft_align_forward_params<T>(a, b, len_a, len_b, a_tilde, b_tilde);
    at::parallel_for(0, params.batch, 1, [&](int64_t begin, int64_t end) {
      soft_align_forward_cpu(params, begin, end);
    });
  });
  return {a_tilde, b_tilde};
}

std::tuple<at::Tensor, at::Tensor> soft_align_backward(
    const at::Tensor& grad_a_tilde_in, const at::Tensor& grad_b_tilde_in, const at::Tensor& a_in,
    const at::Tensor& b_in, const at::Tensor& len_a_in, const at::Tensor& len_b_in) {
  check_soft_align_inputs(a_in, b_in, len_a_in, len_b_in);
  check_gradient(grad_a_tilde_in, a_in, "grad_a_tilde", "a");
  check_gradient(grad_b_tilde_in, b_in, "grad_b_tilde", "b");
  const at::Tensor a = a_in.contiguous(), b = b_in.contiguous();
  const at::Tensor len_a = len_a_in.contiguous(), len_b = len_b_in.contiguous();
  const at::Tensor grad_a_tilde = grad_a_tilde_in.contiguous();
  const at::Tensor grad_b_tilde = grad_b_tilde_in.contiguous();
  at::Tensor grad_a = at::empty_like(a), grad_b = at::empty_like(b);
  DYNBATCH_DISPATCH(DYNBATCH_CPU_TYPES, a, "soft_align", "CPU", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const auto params = soft_align_backward_params<T>(grad_a_tilde, grad_b_tilde, a, b, len_a,
                                                      len_b, grad_a, grad_b);
    at::parallel_for(0, params.batch, 1, [&](int64_t begin, int64_t end) {
      soft_align_backward_cpu(params, begin, end);
    });
  });
  return {grad_a, grad_b};
}

}  // namespace
}  // namespace dynbatch

TORCH_LIBRARY_IMPL(dynbatch_ext, CPU, m) {
  m.impl("soft_align", &dynbatch::soft_align);
  m.impl("soft_align_backward", &dynbatch::soft_align_backward);
}
