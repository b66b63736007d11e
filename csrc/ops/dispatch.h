// From a tensor's dtype to a kernel's element type, over one backend's list in kernels/dtypes.h.
#pragma once

#include <ATen/ATen.h>

#include <type_traits>
#include <vector>

#include "kernels/cpu_types.h"
#include "kernels/dtypes.h"
#include "ops/checks.h"

namespace dynbatch {

template <typename T>
struct Tag {
  using type = T;
};

// The torch dtype of a kernel element type; ops/cuda/dispatch.h adds the CUDA storage types.
template <typename T>
struct ScalarTypeOf : c10::CppTypeToScalarType<T> {};
template <>
struct ScalarTypeOf<BF16> : std::integral_constant<at::ScalarType, at::kBFloat16> {};
template <>
struct ScalarTypeOf<FP16> : std::integral_constant<at::ScalarType, at::kHalf> {};

}  // namespace dynbatch

#define DYNBATCH_DISPATCH_CASE(T)                                                        \
  if (dtype_ == ::dynbatch::ScalarTypeOf<T>::value) return body_(::dynbatch::Tag<T>{});  \
  supported_.push_back(::dynbatch::ScalarTypeOf<T>::value);

// Calls body(Tag<T>{}) for the type T of `tensor`'s dtype among TYPES (DYNBATCH_CPU_TYPES or
// DYNBATCH_CUDA_TYPES), or raises the TypeError of unsupported_dtype. In the body,
// `using T = typename decltype(tag)::type;` names the kernel's element type.
#define DYNBATCH_DISPATCH(TYPES, tensor, op, backend, ...)                   \
  [&] {                                                                      \
    const at::ScalarType dtype_ = (tensor).scalar_type();                    \
    auto&& body_ = __VA_ARGS__;                                              \
    std::vector<at::ScalarType> supported_;                                  \
    TYPES(DYNBATCH_DISPATCH_CASE)                                            \
    ::dynbatch::unsupported_dtype(dtype_, op, backend, supported_);          \
  }()
