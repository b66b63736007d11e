#include <ATen/Dispatch.h>

#include "kernels/soft_align.h"
#include "ops/checks.h"
#include "ops/cpu/cpu_ops.h"
#include "ops/params.h"

namespace dynbatch {
namespace {

void check_cpu_inputs(const at::Tensor& a, const at::Tensor& b, const at::Tensor& len_a,
                      const at::Tensor& len_b) {
  check_soft_align_inputs(a, b, len_a, len_b);
  check_dtype_supported(a, "soft_align", "CPU", {at::kFloat, at::kDouble});
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> soft_align_cpu(const at::Tensor& a_in, const at::Tensor& b_in,
                                                  const at::Tensor& len_a_in,
                                                  const at::Tensor& len_b_in) {
  check_cpu_inputs(a_in, b_in, len_a_in, len_b_in);
  const at::Tensor a = a_in.contiguous(), b = b_in.contiguous();
  const at::Tensor len_a = len_a_in.contiguous(), len_b = len_b_in.contiguous();
  at::Tensor a_tilde = at::empty_like(a), b_tilde = at::empty_like(b);
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "soft_align_cpu", [&] {
    soft_align_forward_cpu(
        soft_align_forward_params<scalar_t>(a, b, len_a, len_b, a_tilde, b_tilde));
  });
  return {a_tilde, b_tilde};
}

std::tuple<at::Tensor, at::Tensor> soft_align_backward_cpu(
    const at::Tensor& grad_a_tilde_in, const at::Tensor& grad_b_tilde_in, const at::Tensor& a_in,
    const at::Tensor& b_in, const at::Tensor& len_a_in, const at::Tensor& len_b_in) {
  check_cpu_inputs(a_in, b_in, len_a_in, len_b_in);
  check_gradient(grad_a_tilde_in, a_in, "grad_a_tilde", "a");
  check_gradient(grad_b_tilde_in, b_in, "grad_b_tilde", "b");
  const at::Tensor a = a_in.contiguous(), b = b_in.contiguous();
  const at::Tensor len_a = len_a_in.contiguous(), len_b = len_b_in.contiguous();
  const at::Tensor grad_a_tilde = grad_a_tilde_in.contiguous();
  const at::Tensor grad_b_tilde = grad_b_tilde_in.contiguous();
  at::Tensor grad_a = at::empty_like(a), grad_b = at::empty_like(b);
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "soft_align_backward_cpu", [&] {
    soft_align_backward_cpu(soft_align_backward_params<scalar_t>(
        grad_a_tilde, grad_b_tilde, a, b, len_a, len_b, grad_a, grad_b));
  });
  return {grad_a, grad_b};
}

}  // namespace dynbatch
