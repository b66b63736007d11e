// soft_align and its backward on the CPU (kernels/soft_align_cpu.cpp), on torch's thread pool,
// long blocks through torch's matrix product; registered below.
#include <ATen/CPUFunctions.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "kernels/soft_align_cpu.h"
#include "ops/dispatch.h"
#include "ops/soft_align.h"

namespace dynbatch {
namespace {

// The kernels' CpuMatMul: torch's CPU matrix product on views of their buffers. at::cpu calls the
// CPU kernel itself, past the dispatcher, so that no autocast, autograd or functorch layer (which
// may be active around the op) sees these views.
template <typename C>
void torch_matmul(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, const C* a,
                  int64_t lda, const C* b, int64_t ldb, C* c, int64_t ldc, bool accumulate) {
  const auto options = at::TensorOptions().dtype(c10::CppTypeToScalarType<C>::value);
  // A rows x cols view of a stored matrix with row stride `stride`, which holds the view's
  // transpose where `transposed`.
  auto view = [&](const C* data, int64_t rows, int64_t cols, int64_t stride, bool transposed) {
    return at::from_blob(const_cast<C*>(data), {rows, cols},
                         transposed ? at::IntArrayRef{1, stride} : at::IntArrayRef{stride, 1},
                         options);
  };
  at::Tensor out = view(c, m, n, ldc, false);
  const at::Tensor lhs = view(a, m, k, lda, transpose_a), rhs = view(b, k, n, ldb, transpose_b);
  if (accumulate)
    at::cpu::addmm_(out, lhs, rhs);
  else
    at::cpu::mm_out(out, lhs, rhs);
}

void torch_parallel_for(int64_t count, int64_t grain,
                        const std::function<void(int64_t, int64_t)>& body) {
  at::parallel_for(0, count, grain, body);
}

// Pairs in parallel on torch's thread pool; or, for fewer pairs than threads, one pair after
// another with each pair's lines on the pool (a call of `kernel` inside at::parallel_for would
// find itself in a parallel region, where the pool runs everything inline).
template <typename C, typename Params, typename Kernel>
void run_pairs(const Params& params, Kernel kernel) {
  if (params.batch < at::get_num_threads() && !at::in_parallel_region()) {
    kernel(params, 0, params.batch, CpuRuntime<C>{&torch_matmul<C>, &torch_parallel_for});
    return;
  }
  at::parallel_for(0, params.batch, 1, [&](int64_t begin, int64_t end) {
    kernel(params, begin, end, CpuRuntime<C>{&torch_matmul<C>, nullptr});
  });
}

std::tuple<at::Tensor, at::Tensor> soft_align(const at::Tensor& a_in, const at::Tensor& b_in,
                                              const at::Tensor& len_a_in,
                                              const at::Tensor& len_b_in) {
  check_soft_align_inputs(a_in, b_in, len_a_in, len_b_in);
  const at::Tensor a = a_in.contiguous(), b = b_in.contiguous();
  const at::Tensor len_a = len_a_in.contiguous(), len_b = len_b_in.contiguous();
  at::Tensor a_tilde = at::empty_like(a), b_tilde = at::empty_like(b);
  DYNBATCH_DISPATCH(DYNBATCH_CPU_TYPES, a, "soft_align", "CPU", [&](auto tag) {
    using T = typename decltype(tag)::type;
    run_pairs<compute_t<T>>(soft_align_forward_params<T>(a, b, len_a, len_b, a_tilde, b_tilde),
                            &soft_align_forward_cpu<T>);
  });
  return {a_tilde, b_tilde};
}

std::tuple<at::Tensor, at::Tensor> soft_align_backward(
    const at::Tensor& grad_a_tilde_in, const at::Tensor& grad_b_tilde_in, const at::Tensor& a_in,
    const at::Tensor& b_in, const at::Tensor& len_a_in, const at::Tensor& len_b_in) {
  check_soft_align_inputs(a_in, b_in, len_a_in, len_b_in);
  check_gradient(grad_a_tilde_in, a_in, "grad_a_tilde", "a");
  check_gradient(grad_b_tilde_in, b_in, "grad_b_tilde", "b");
  const at::Tensor a = a_in.contiguous(), b = b_in.contiguous();
  const at::Tensor len_a = len_a_in.contiguous(), len_b = len_b_in.contiguous();
  const at::Tensor grad_a_tilde = grad_a_tilde_in.contiguous();
  const at::Tensor grad_b_tilde = grad_b_tilde_in.contiguous();
  at::Tensor grad_a = at::empty_like(a), grad_b = at::empty_like(b);
  DYNBATCH_DISPATCH(DYNBATCH_CPU_TYPES, a, "soft_align", "CPU", [&](auto tag) {
    using T = typename decltype(tag)::type;
    run_pairs<compute_t<T>>(soft_align_backward_params<T>(grad_a_tilde, grad_b_tilde, a, b,
                                                          len_a, len_b, grad_a, grad_b),
                            &soft_align_backward_cpu<T>);
  });
  return {grad_a, grad_b};
}

}  // namespace
}  // namespace dynbatch

TORCH_LIBRARY_IMPL(dynbatch_ext, CPU, m) {
  m.impl("soft_align", &dynbatch::soft_align);
  m.impl("soft_align_backward", &dynbatch::soft_align_backward);
}
