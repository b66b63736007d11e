// The CPU implementations of the dynbatch_ext ops (registered in register_cpu.cpp).
#pragma once

#include <ATen/ATen.h>

#include <tuple>

namespace dynbatch {

// a (B, La, d), b (B, Lb, d), len_a (B,), len_b (B,) -> a_tilde (B, La, d), b_tilde (B, Lb, d)
std::tuple<at::Tensor, at::Tensor> soft_align_cpu(const at::Tensor& a, const at::Tensor& b,
                                                  const at::Tensor& len_a,
                                                  const at::Tensor& len_b);
std::tuple<at::Tensor, at::Tensor> soft_align_backward_cpu(
    const at::Tensor& grad_a_tilde, const at::Tensor& grad_b_tilde, const at::Tensor& a,
    const at::Tensor& b, const at::Tensor& len_a, const at::Tensor& len_b);

// x (B, L, d), len_x (B,) -> (B, 2d)
at::Tensor masked_pool_cpu(const at::Tensor& x, const at::Tensor& len_x);
at::Tensor masked_pool_backward_cpu(const at::Tensor& grad_out, const at::Tensor& x,
                                    const at::Tensor& len_x);

}  // namespace dynbatch
