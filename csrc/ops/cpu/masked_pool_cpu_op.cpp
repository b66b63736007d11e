#include <ATen/Dispatch.h>

#include "kernels/masked_pool.h"
#include "ops/checks.h"
#include "ops/cpu/cpu_ops.h"

namespace dynbatch {
namespace {

template <typename scalar_t>
void fill_params(MaskedPoolParams<scalar_t>& p, const at::Tensor& x, const at::Tensor& len_x) {
  p.x = x.data_ptr<scalar_t>();
  p.len = len_x.data_ptr<int64_t>();
  p.batch = x.size(0);
  p.max_len = x.size(1);
  p.dim = x.size(2);
}

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
    MaskedPoolForwardParams<scalar_t> p;
    fill_params(p, x, len_x);
    p.out = out.data_ptr<scalar_t>();
    masked_pool_forward_cpu(p);
  });
  return out;
}

at::Tensor masked_pool_backward_cpu(const at::Tensor& grad_out_in, const at::Tensor& x_in,
                                    const at::Tensor& len_x_in) {
  check_cpu_inputs(x_in, len_x_in);
  TORCH_CHECK_VALUE(grad_out_in.dim() == 2 && grad_out_in.size(0) == x_in.size(0) &&
                        grad_out_in.size(1) == 2 * x_in.size(2),
                    "grad_out must have shape (B, 2d) = (", x_in.size(0), ", ", 2 * x_in.size(2),
                    "), got ", grad_out_in.sizes());
  TORCH_CHECK_TYPE(grad_out_in.scalar_type() == x_in.scalar_type(), "grad_out must be ",
                   x_in.scalar_type(), ", got ", grad_out_in.scalar_type());
  const at::Tensor x = x_in.contiguous(), len_x = len_x_in.contiguous();
  const at::Tensor grad_out = grad_out_in.contiguous();
  at::Tensor grad_x = at::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "masked_pool_backward_cpu", [&] {
    MaskedPoolBackwardParams<scalar_t> p;
    fill_params(p, x, len_x);
    p.grad_out = grad_out.data_ptr<scalar_t>();
    p.grad_x = grad_x.data_ptr<scalar_t>();
    masked_pool_backward_cpu(p);
  });
  return grad_x;
}

}  // namespace dynbatch
