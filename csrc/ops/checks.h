// Input checks shared by every backend: each failure names the argument and what is wrong
// (ValueError for shapes and values, TypeError for dtypes), before a kernel sees a pointer.
#pragma once

#include <ATen/ATen.h>

#include <vector>

namespace dynbatch {

// Whether the length values are checked here. Reading them costs a device-to-host copy that
// waits for all queued work, on CUDA; the backward ops get the lengths the forward checked
// (saved for backward, so autograd refuses them if changed in place) and skip it there. Their
// kernels still stop on a length out of range (require_length in cuda_common.cuh), so a direct
// call with bad lengths fails instead of reading out of bounds.
enum class LengthValues { check, checked_by_forward };

// a: (B, La, d), b: (B, Lb, d), same floating dtype and device; len_a, len_b: int64 (B,) with
// values in [0, La] and [0, Lb] (both read back in one transfer).
void check_soft_align_inputs(const at::Tensor& a, const at::Tensor& b, const at::Tensor& len_a,
                             const at::Tensor& len_b, LengthValues values = LengthValues::check);

// x: (B, L, d) floating; len_x: int64 (B,) with values in [0, L].
void check_masked_pool_inputs(const at::Tensor& x, const at::Tensor& len_x,
                              LengthValues values = LengthValues::check);

// `grad` has the shape, dtype and device of `like`.
void check_gradient(const at::Tensor& grad, const at::Tensor& like, const char* grad_name,
                    const char* like_name);

// grad_out of masked_pool: (B, 2d) for x (B, L, d), x's dtype and device.
void check_pool_gradient(const at::Tensor& grad_out, const at::Tensor& x);

// TypeError "<op> on <backend> supports Float, Double; got Half" (raised by DYNBATCH_DISPATCH,
// ops/dispatch.h, for a dtype outside the backend's list).
[[noreturn]] void unsupported_dtype(at::ScalarType dtype, const char* op, const char* backend,
                                    const std::vector<at::ScalarType>& supported);

}  // namespace dynbatch
