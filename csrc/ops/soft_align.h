// soft_align's op layer, shared by its backends (cpu/soft_align.cpp, cuda/soft_align.cpp): its
// input checks and its kernel params filled from tensors.
#pragma once

#include <ATen/ATen.h>

#include "kernels/soft_align_params.h"
#include "ops/checks.h"
#include "ops/params.h"

namespace dynbatch {

// a: (B, La, d), b: (B, Lb, d), same floating dtype and device; len_a, len_b: int64 (B,) with
// values in [0, La] and [0, Lb] (both read back in one transfer).
void check_soft_align_inputs(const at::Tensor& a, const at::Tensor& b, const at::Tensor& len_a,
                             const at::Tensor& len_b, LengthValues values = LengthValues::check);

template <typename kernel_t>
void fill_soft_align_params(SoftAlignParams<kernel_t>& p, const at::Tensor& a, const at::Tensor& b,
                            const at::Tensor& len_a, const at::Tensor& len_b) {
  p.a = input_ptr<kernel_t>(a);
  p.b = input_ptr<kernel_t>(b);
  p.len_a = len_a.const_data_ptr<int64_t>();
  p.len_b = len_b.const_data_ptr<int64_t>();
  p.batch = a.size(0);
  p.max_len_a = a.size(1);
  p.max_len_b = b.size(1);
  p.dim = a.size(2);
}

template <typename kernel_t>
SoftAlignForwardParams<kernel_t> soft_align_forward_params(
    const at::Tensor& a, const at::Tensor& b, const at::Tensor& len_a, const at::Tensor& len_b,
    at::Tensor& a_tilde, at::Tensor& b_tilde) {
  SoftAlignForwardParams<kernel_t> p;
  fill_soft_align_params(p, a, b, len_a, len_b);
  p.a_tilde = output_ptr<kernel_t>(a_tilde);
  p.b_tilde = output_ptr<kernel_t>(b_tilde);
  return p;
}

template <typename kernel_t>
SoftAlignBackwardParams<kernel_t> soft_align_backward_params(
    const at::Tensor& grad_a_tilde, const at::Tensor& grad_b_tilde, const at::Tensor& a,
    const at::Tensor& b, const at::Tensor& len_a, const at::Tensor& len_b, at::Tensor& grad_a,
    at::Tensor& grad_b) {
  SoftAlignBackwardParams<kernel_t> p;
  fill_soft_align_params(p, a, b, len_a, len_b);
  p.grad_a_tilde = input_ptr<kernel_t>(grad_a_tilde);
  p.grad_b_tilde = input_ptr<kernel_t>(grad_b_tilde);
  p.grad_a = output_ptr<kernel_t>(grad_a);
  p.grad_b = output_ptr<kernel_t>(grad_b);
  return p;
}

}  // namespace dynbatch
