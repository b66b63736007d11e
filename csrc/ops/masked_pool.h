// masked_pool's op layer, shared by its backends (cpu/masked_pool.cpp, cuda/masked_pool.cpp):
// its input checks and its kernel params filled from tensors.
#pragma once

#include <ATen/ATen.h>

#include "kernels/masked_pool_params.h"
#include "ops/checks.h"
#include "ops/params.h"

namespace dynbatch {

// x: (B, L, d) floating; len_x: int64 (B,) with values in [0, L].
void check_masked_pool_inputs(const at::Tensor& x, const at::Tensor& len_x,
                              LengthValues values = LengthValues::check);

// grad_out of masked_pool: (B, 2d) for x (B, L, d), x's dtype and device.
void check_pool_gradient(const at::Tensor& grad_out, const at::Tensor& x);

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
