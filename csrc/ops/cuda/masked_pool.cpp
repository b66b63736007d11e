// masked_pool and its backward on CUDA (kernels/masked_pool.cu), registered below.
#include <torch/library.h>

#include "kernels/masked_pool_cuda.h"
#include "ops/cuda/dispatch.h"
#include "ops/masked_pool.h"

namespace dynbatch {
namespace {

at::Tensor masked_pool(const at::Tensor& x_in, const at::Tensor& len_x_in) {
  check_masked_pool_inputs(x_in, len_x_in, LengthValues::check);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous(), len_x = len_x_in.contiguous();
  at::Tensor out = at::empty({x.size(0), 2 * x.size(2)}, x.options());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  DYNBATCH_DISPATCH(DYNBATCH_CUDA_TYPES, x, "masked_pool", "CUDA", [&](auto tag) {
    using T = typename decltype(tag)::type;
    C10_CUDA_CHECK(
        launch_masked_pool_forward(masked_pool_forward_params<T>(x, len_x, out), stream));
  });
  return out;
}

at::Tensor masked_pool_backward(const at::Tensor& grad_out_in, const at::Tensor& x_in,
                                const at::Tensor& len_x_in) {
  // No device sync for the lengths: see LengthValues (ops/checks.h).
  check_masked_pool_inputs(x_in, len_x_in, LengthValues::checked_by_forward);
  check_pool_gradient(grad_out_in, x_in);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous(), len_x = len_x_in.contiguous();
  const at::Tensor grad_out = grad_out_in.contiguous();
  at::Tensor grad_x = at::empty_like(x);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  DYNBATCH_DISPATCH(DYNBATCH_CUDA_TYPES, x, "masked_pool", "CUDA", [&](auto tag) {
    using T = typename decltype(tag)::type;
    C10_CUDA_CHECK(launch_masked_pool_backward(
        masked_pool_backward_params<T>(grad_out, x, len_x, grad_x), stream));
  });
  return grad_x;
}

}  // namespace
}  // namespace dynbatch

TORCH_LIBRARY_IMPL(dynbatch_ext, CUDA, m) {
  m.impl("masked_pool", &dynbatch::masked_pool);
  m.impl("masked_pool_backward", &dynbatch::masked_pool_backward);
}
