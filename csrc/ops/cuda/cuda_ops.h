// The CUDA implementations of the dynbatch_ext ops (registered in register_cuda.cpp). Same
// signatures as the CPU ones; float32, float16 and bfloat16, accumulating in float32.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

namespace dynbatch {

std::tuple<at::Tensor, at::Tensor> soft_align_cuda(const at::Tensor& a, const at::Tensor& b,
                                                   const at::Tensor& len_a,
                                                   const at::Tensor& len_b);
std::tuple<at::Tensor, at::Tensor> soft_align_backward_cuda(
    const at::Tensor& grad_a_tilde, const at::Tensor& grad_b_tilde, const at::Tensor& a,
    const at::Tensor& b, const at::Tensor& len_a, const at::Tensor& len_b);

at::Tensor masked_pool_cuda(const at::Tensor& x, const at::Tensor& len_x);
at::Tensor masked_pool_backward_cuda(const at::Tensor& grad_out, const at::Tensor& x,
                                     const at::Tensor& len_x);

}  // namespace dynbatch
