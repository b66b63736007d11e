// masked_pool and its backward on the CPU (kernels/masked_pool_cpu.cpp), sequences in parallel
// on torch's thread pool; registered below.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "kernels/masked_pool_cpu.h"
#include "ops/dispatch.h"
#include "ops/masked_pool.h"

namespace dynbatch {
namespace {

at::Tensor masked_pool(const at::Tensor& x_in, const at::Tensor& len_x_in) {
  check_masked_pool_inputs(x_in, len_x_in);
  const at::Tensor x = x_in.contiguous(), len_x = len_x_in.contiguous();
  at::Tensor out = at::empty({x.size(0), 2 * x.size(2)}, x.options());
  DYNBATCH_DISPATCH(DYNBATCH_CPU_TYPES, x, "masked_pool", "CPU", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const auto params = masked_pool_forward_params<T>(x, len_x, out);
    at::parallel_for(0, params.batch, 1, [&](int64_t begin, int64_t end) {
      masked_pool_forward_cpu(params, begin, end);
    });
  });
  return out;
}

at::Tensor masked_pool_backward(const at::Tensor& grad_out_in, const at::Tensor& x_in,
                                const at::Tensor& len_x_in) {
  check_masked_pool_inputs(x_in, len_x_in);
  check_pool_gradient(grad_out_in, x_in);
  const at::Tensor x = x_in.contiguous(), len_x = len_x_in.contiguous();
  const at::Tensor grad_out = grad_out_in.contiguous();
  at::Tensor grad_x = at::empty_like(x);
  DYNBATCH_DISPATCH(DYNBATCH_CPU_TYPES, x, "masked_pool", "CPU", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const auto params = masked_pool_backward_params<T>(grad_out, x, len_x, grad_x);
    at::parallel_for(0, params.batch, 1, [&](int64_t begin, int64_t end) {
      masked_pool_backward_cpu(params, begin, end);
    });
  });
  return grad_x;
}

}  // namespace
}  // namespace dynbatch

TORCH_LIBRARY_IMPL(dynbatch_ext, CPU, m) {
  m.impl("masked_pool", &dynbatch::masked_pool);
  m.impl("masked_pool_backward", &dynbatch::masked_pool_backward);
}
