// Input checks shared by every backend: each failure names the argument and what is wrong
// (ValueError for shapes and values, TypeError for dtypes), before a kernel sees a pointer.
#pragma once

#include <ATen/ATen.h>

namespace dynbatch {

// a: (B, La, d), b: (B, Lb, d), same floating dtype and device; len_a, len_b: int64 (B,) with
// values in [0, La] and [0, Lb].
void check_soft_align_inputs(const at::Tensor& a, const at::Tensor& b, const at::Tensor& len_a,
                             const at::Tensor& len_b);

// x: (B, L, d) floating; len_x: int64 (B,) with values in [0, L].
void check_masked_pool_inputs(const at::Tensor& x, const at::Tensor& len_x);

// `grad` has the shape, dtype and device of `like`.
void check_gradient(const at::Tensor& grad, const at::Tensor& like, const char* grad_name,
                    const char* like_name);

// grad_out of masked_pool: (B, 2d) for x (B, L, d), x's dtype and device.
void check_pool_gradient(const at::Tensor& grad_out, const at::Tensor& x);

// The dtypes a backend implements, e.g. {kFloat, kDouble} on the CPU.
void check_dtype_supported(const at::Tensor& t, const char* op, const char* backend,
                           std::initializer_list<at::ScalarType> supported);

}  // namespace dynbatch
