#include "kernels/masked_pool_cuda.h"
#include "ops/checks.h"
#include "ops/cuda/cuda_ops.h"
#include "ops/cuda/cuda_types.h"
#include "ops/params.h"

namespace dynbatch {
namespace {

void check_cuda_inputs(const at::Tensor& x, const at::Tensor& len_x, LengthValues values) {
  check_masked_pool_inputs(x, len_x, values);
  check_dtype_supported(x, "masked_pool", "CUDA", {at::kFloat, at::kHalf, at::kBFloat16});
}

}  // namespace

at::Tensor masked_pool_cuda(const at::Tensor& x_in, const at::Tensor& len_x_in) {
  check_cuda_inputs(x_in, len_x_in, LengthValues::check);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous(), len_x = len_x_in.contiguous();
  at::Tensor out = at::empty({x.size(0), 2 * x.size(2)}, x.options());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  DYNBATCH_DISPATCH_CUDA(x.scalar_type(), "masked_pool_cuda", [&] {
    C10_CUDA_CHECK(
        launch_masked_pool_forward(masked_pool_forward_params<kernel_t>(x, len_x, out), stream));
  });
  return out;
}

at::Tensor masked_pool_backward_cuda(const at::Tensor& grad_out_in, const at::Tensor& x_in,
                                     const at::Tensor& len_x_in) {
  // No device sync for the lengths: see LengthValues (ops/checks.h).
  check_cuda_inputs(x_in, len_x_in, LengthValues::checked_by_forward);
  check_pool_gradient(grad_out_in, x_in);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous(), len_x = len_x_in.contiguous();
  const at::Tensor grad_out = grad_out_in.contiguous();
  at::Tensor grad_x = at::empty_like(x);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  DYNBATCH_DISPATCH_CUDA(x.scalar_type(), "masked_pool_backward_cuda", [&] {
    C10_CUDA_CHECK(launch_masked_pool_backward(
        masked_pool_backward_params<kernel_t>(grad_out, x, len_x, grad_x), stream));
  });
  return grad_x;
}

}  // namespace dynbatch
