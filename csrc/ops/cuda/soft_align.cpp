// soft_align and its backward on CUDA (kernels/soft_align.cu), registered below.
#include <torch/library.h>

#include "kernels/soft_align_cuda.h"
#include "ops/cuda/dispatch.h"
#include "ops/soft_align.h"

namespace dynbatch {
namespace {

// The float32 workspace a launcher asks for on this device: empty (no allocation) when every
// pair's matrices fit in shared memory.
at::Tensor float_workspace(const at::Tensor& a, const at::Tensor& b, bool backward) {
  int64_t floats = 0;
  const auto query = backward ? soft_align_backward_workspace : soft_align_forward_workspace;
  C10_CUDA_CHECK(query(a.size(0), a.size(1), b.size(1), &floats));
  return at::empty({floats}, a.options().dtype(at::kFloat));
}

float* data_or_null(at::Tensor& workspace) {
  return workspace.numel() > 0 ? workspace.mutable_data_ptr<float>() : nullptr;
}

std::tuple<at::Tensor, at::Tensor> soft_align(const at::Tensor& a_in, const at::Tensor& b_in,
                                              const at::Tensor& len_a_in,
                                              const at::Tensor& len_b_in) {
  check_soft_align_inputs(a_in, b_in, len_a_in, len_b_in, LengthValues::check);
  const c10::cuda::CUDAGuard guard(a_in.device());
  const at::Tensor a = a_in.contiguous(), b = b_in.contiguous();
  const at::Tensor len_a = len_a_in.contiguous(), len_b = len_b_in.contiguous();
  at::Tensor a_tilde = at::empty_like(a), b_tilde = at::empty_like(b);
  at::Tensor workspace = float_workspace(a, b, /*backward=*/false);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  DYNBATCH_DISPATCH(DYNBATCH_CUDA_TYPES, a, "soft_align", "CUDA", [&](auto tag) {
    using T = typename decltype(tag)::type;
    C10_CUDA_CHECK(launch_soft_align_forward(
        soft_align_forward_params<T>(a, b, len_a, len_b, a_tilde, b_tilde),
        data_or_null(workspace), stream));
  });
  return {a_tilde, b_tilde};
}

std::tuple<at::Tensor, at::Tensor> soft_align_backward(
    const at::Tensor& grad_a_tilde_in, const at::Tensor& grad_b_tilde_in, const at::Tensor& a_in,
    const at::Tensor& b_in, const at::Tensor& len_a_in, const at::Tensor& len_b_in) {
  // No device sync for the lengths: see LengthValues (ops/checks.h).
  check_soft_align_inputs(a_in, b_in, len_a_in, len_b_in, LengthValues::checked_by_forward);
  check_gradient(grad_a_tilde_in, a_in, "grad_a_tilde", "a");
  check_gradient(grad_b_tilde_in, b_in, "grad_b_tilde", "b");
  const c10::cuda::CUDAGuard guard(a_in.device());
  const at::Tensor a = a_in.contiguous(), b = b_in.contiguous();
  const at::Tensor len_a = len_a_in.contiguous(), len_b = len_b_in.contiguous();
  const at::Tensor grad_a_tilde = grad_a_tilde_in.contiguous();
  const at::Tensor grad_b_tilde = grad_b_tilde_in.contiguous();
  at::Tensor grad_a = at::empty_like(a), grad_b = at::empty_like(b);
  at::Tensor workspace = float_workspace(a, b, /*backward=*/true);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  DYNBATCH_DISPATCH(DYNBATCH_CUDA_TYPES, a, "soft_align", "CUDA", [&](auto tag) {
    using T = typename decltype(tag)::type;
    C10_CUDA_CHECK(launch_soft_align_backward(
        soft_align_backward_params<T>(grad_a_tilde, grad_b_tilde, a, b, len_a, len_b, grad_a,
                                      grad_b),
        data_or_null(workspace), stream));
  });
  return {grad_a, grad_b};
}

}  // namespace
}  // namespace dynbatch

TORCH_LIBRARY_IMPL(dynbatch_ext, CUDA, m) {
  m.impl("soft_align", &dynbatch::soft_align);
  m.impl("soft_align_backward", &dynbatch::soft_align_backward);
}
