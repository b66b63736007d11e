// The input checks every op's own checks (ops/<op>.cpp) are made of: each failure names the
// argument and what is wrong (ValueError for shapes and values, TypeError for dtypes), before a
// kernel sees a pointer.
#pragma once

#include <ATen/ATen.h>

#include <initializer_list>
#include <vector>

namespace dynbatch {

// Whether the length values are checked here. Reading them costs a device-to-host copy that
// waits for all queued work, on CUDA; the backward ops get the lengths the forward checked
// (saved for backward, so autograd refuses them if changed in place) and skip it there. Their
// kernels still stop on a length out of range (require_length in cuda_common.cuh), so a direct
// call with bad lengths fails instead of reading out of bounds.
enum class LengthValues { check, checked_by_forward };

// `t` is (B, L, d) (`shape` names it in the message) and floating.
void check_3d(const at::Tensor& t, const char* name, const char* shape);

// `len` is int64 (batch,), on `like`'s device.
void check_length_tensor(const at::Tensor& len, const char* name, int64_t batch,
                         const at::Tensor& like);

// A length tensor and the padded dimension its values must fit in.
struct LengthBound {
  const at::Tensor& len;
  const char* name;
  int64_t max_len;
  const char* padded_name;
};

// Every length in [0, max_len], for all the tensors with one device-to-host transfer.
void check_length_values(std::initializer_list<LengthBound> bounds);

// `grad` has the shape, dtype and device of `like`.
void check_gradient(const at::Tensor& grad, const at::Tensor& like, const char* grad_name,
                    const char* like_name);

// TypeError "<op> on <backend> supports Float, Double; got Half" (raised by DYNBATCH_DISPATCH,
// ops/dispatch.h, for a dtype outside the backend's list).
[[noreturn]] void unsupported_dtype(at::ScalarType dtype, const char* op, const char* backend,
                                    const std::vector<at::ScalarType>& supported);

}  // namespace dynbatch
