// A (contiguous) tensor's data as a kernel's pointer, for every op's params fill (ops/<op>.h).
// `kernel_t` is the kernel's element type: the tensor's own on the CPU, the CUDA storage type
// (__half for at::Half, ...) on the GPU, which has the same size and bits.
#pragma once

#include <ATen/ATen.h>

namespace dynbatch {

template <typename kernel_t>
const kernel_t* input_ptr(const at::Tensor& t) {
  return reinterpret_cast<const kernel_t*>(t.const_data_ptr());
}
template <typename kernel_t>
kernel_t* output_ptr(at::Tensor& t) {
  return reinterpret_cast<kernel_t*>(t.mutable_data_ptr());
}

}  // namespace dynbatch
