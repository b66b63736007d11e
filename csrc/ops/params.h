// Kernel params from (contiguous) tensors, shared by every backend's op layer. `kernel_t` is the
// kernel's element type: the tensor's own on the CPU, the CUDA storage type (__half for
// at::Half, ...) on the GPU, which has the same size and bits.
#pragma once

#include <ATen/ATen.h>

#include "kernels/masked_pool.h"
#include "kernels/soft_align.h"

namespace dynbatch {

template <typename kernel_t>
const kernel_t* input_ptr(const at::Tensor& t) {
  return reinterpret_cast<const kernel_t*>(t.const_data_ptr());
}
template <typename kernel_t>
kernel_t* output_ptr(at::Tensor& t) {
  return reinterpret_cast<kernel_t*>(t.mutable_data_ptr());
}

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

template <typename kernel_t>
void fill_masked_pool_params(MaskedPoolParams<kernel_t>& p, const at::Tensor& x,
                             const at::Tensor& len_x) {
  p.x = input_ptr<kernel_t>(x);
  p.len = len_x.const_data_ptr<int64_t>();
  p.batch = x.size(0);
  p.max_len = x.size(1);
  p.dim = x.size(2);
}

template <typename kernel_t>
MaskedPoolForwardParams<kernel_t> masked_pool_forward_params(const at::Tensor& x,
                                                             const at::Tensor& len_x,
                                                             at::Tensor& out) {
  MaskedPoolForwardParams<kernel_t> p;
  fill_masked_pool_params(p, x, len_x);
  p.out = output_ptr<kernel_t>(out);
  return p;
}

template <typename kernel_t>
MaskedPoolBackwardParams<kernel_t> masked_pool_backward_params(const at::Tensor& grad_out,
                                                               const at::Tensor& x,
                                                               const at::Tensor& len_x,
                                                               at::Tensor& grad_x) {
  MaskedPoolBackwardParams<kernel_t> p;
  fill_masked_pool_params(p, x, len_x);
  p.grad_out = input_ptr<kernel_t>(grad_out);
  p.grad_x = output_ptr<kernel_t>(grad_x);
  return p;
}

}  // namespace dynbatch
