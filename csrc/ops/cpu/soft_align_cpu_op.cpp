#include <ATen/Dispatch.h>

#include "kernels/soft_align.h"
#include "ops/checks.h"
#include "ops/cpu/cpu_ops.h"

namespace dynbatch {
namespace {

// Fills the shared part of the params from contiguous inputs.
template <typename scalar_t>
void fill_params(SoftAlignParams<scalar_t>& p, const at::Tensor& a, const at::Tensor& b,
                 const at::Tensor& len_a, const at::Tensor& len_b) {
  p.a = a.data_ptr<scalar_t>();
  p.b = b.data_ptr<scalar_t>();
  p.len_a = len_a.data_ptr<int64_t>();
  p.len_b = len_b.data_ptr<int64_t>();
  p.batch = a.size(0);
  p.max_len_a = a.size(1);
  p.max_len_b = b.size(1);
  p.dim = a.size(2);
}

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
    SoftAlignForwardParams<scalar_t> p;
    fill_params(p, a, b, len_a, len_b);
    p.a_tilde = a_tilde.data_ptr<scalar_t>();
    p.b_tilde = b_tilde.data_ptr<scalar_t>();
    soft_align_forward_cpu(p);
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
    SoftAlignBackwardParams<scalar_t> p;
    fill_params(p, a, b, len_a, len_b);
    p.grad_a_tilde = grad_a_tilde.data_ptr<scalar_t>();
    p.grad_b_tilde = grad_b_tilde.data_ptr<scalar_t>();
    p.grad_a = grad_a.data_ptr<scalar_t>();
    p.grad_b = grad_b.data_ptr<scalar_t>();
    soft_align_backward_cpu(p);
  });
  return {grad_a, grad_b};
}

}  // namespace dynbatch
