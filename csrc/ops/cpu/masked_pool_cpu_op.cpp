#include <ATen/Dispatch.h>

#include "kernels/masked_pool.h"
#include "ops/checks.h"
#include "ops/cpu/cpu_ops.h"
#include "ops/params.h"

namespace dynbatch {
namespace {

void check_cpu_inputs(const at::Tensor& x, const at::Tensor& len_x) {
  check_masked_pool_inputs(x, len_x);
  check_dtype_supported(x, "masked_pool", "CPU", {at::kFloat, at::kDouble});
}

}  // namespace

at::Tensor masked_pool_cpu(const at::Tensor& x_in, const at::Tensor& len_x_in) {
  check_cpu_inputs(x_in, len_x_in);
  const at::Tensor x = x_in.contiguous(), len_x = len_x_in.contiguous();
  at::Tensor out = at::empty({x.size(0), 2 * x.size(2)}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "masked_pool_cpu", [&] {
    masked_pool_forward_cpu(masked_pool_forward_params<scalar_t>(x, len_x, out));
  });
  return out;
}

at::Tensor masked_pool_backward_cpu(const at::Tensor& grad_out_in, const at::Tensor& x_in,
                                    const at::Tensor& len_x_in) {
  check_cpu_inputs(x_in, len_x_in);
  check_pool_gradient(grad_out_in, x_in);
  const at::Tensor x = x_in.contiguous(), len_x = len_x_in.contiguous();
  const at::Tensor grad_out = grad_out_in.contiguous();
  at::Tensor grad_x = at::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "masked_pool_backward_cpu", [&] {
    masked_pool_backward_cpu(masked_pool_backward_params<scalar_t>(grad_out, x, len_x, grad_x));
  });
  return grad_x;
}

}  // namespace dynbatch
