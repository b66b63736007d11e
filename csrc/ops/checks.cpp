#include "ops/checks.h"

#include <sstream>

namespace dynbatch {
namespace {

void check_lengths(const at::Tensor& len, const char* name, int64_t batch, int64_t max_len,
                   const char* padded_name, const at::Tensor& like) {
  TORCH_CHECK_VALUE(len.dim() == 1, name, " must have shape (B,), got ", len.sizes());
  TORCH_CHECK_VALUE(len.size(0) == batch, name, " has ", len.size(0),
                    " entries but the batch has ", batch);
  TORCH_CHECK_TYPE(len.scalar_type() == at::kLong, name, " must be int64, got ",
                   len.scalar_type());
  TORCH_CHECK_VALUE(len.device() == like.device(), name, " is on ", len.device(),
                    " but the inputs are on ", like.device());
  if (batch == 0) return;
  const auto [low, high] = at::aminmax(len);
  const int64_t smallest = low.item<int64_t>(), largest = high.item<int64_t>();
  TORCH_CHECK_VALUE(smallest >= 0, name, " holds ", smallest, ": lengths must be non-negative");
  TORCH_CHECK_VALUE(largest <= max_len, name, " holds ", largest, ", longer than the padded ",
                    padded_name, " dimension (", max_len, ")");
}

void check_3d(const at::Tensor& t, const char* name, const char* shape) {
  TORCH_CHECK_VALUE(t.dim() == 3, name, " must have shape ", shape, ", got ", t.sizes());
  TORCH_CHECK_TYPE(at::isFloatingType(t.scalar_type()), name,
                   " must be a floating-point tensor, got ", t.scalar_type());
}

}  // namespace

void check_soft_align_inputs(const at::Tensor& a, const at::Tensor& b, const at::Tensor& len_a,
                             const at::Tensor& len_b) {
  check_3d(a, "a", "(B, La, d)");
  check_3d(b, "b", "(B, Lb, d)");
  TORCH_CHECK_VALUE(a.device() == b.device(), "a is on ", a.device(), " but b is on ", b.device());
  TORCH_CHECK_TYPE(a.scalar_type() == b.scalar_type(), "a and b must have the same dtype, got ",
                   a.scalar_type(), " and ", b.scalar_type());
  TORCH_CHECK_VALUE(a.size(0) == b.size(0), "a and b have different batch sizes (", a.size(0),
                    " and ", b.size(0), ")");
  TORCH_CHECK_VALUE(a.size(2) == b.size(2), "a and b have different feature sizes (", a.size(2),
                    " and ", b.size(2), ")");
  check_lengths(len_a, "len_a", a.size(0), a.size(1), "a", a);
  check_lengths(len_b, "len_b", b.size(0), b.size(1), "b", b);
}

void check_masked_pool_inputs(const at::Tensor& x, const at::Tensor& len_x) {
  check_3d(x, "x", "(B, L, d)");
  check_lengths(len_x, "len_x", x.size(0), x.size(1), "x", x);
}

void check_gradient(const at::Tensor& grad, const at::Tensor& like, const char* grad_name,
                    const char* like_name) {
  TORCH_CHECK_VALUE(grad.sizes() == like.sizes(), grad_name, " must have the shape of ",
                    like_name, " ", like.sizes(), ", got ", grad.sizes());
  TORCH_CHECK_TYPE(grad.scalar_type() == like.scalar_type(), grad_name, " must be ",
                   like.scalar_type(), ", got ", grad.scalar_type());
  TORCH_CHECK_VALUE(grad.device() == like.device(), grad_name, " is on ", grad.device(),
                    " but ", like_name, " is on ", like.device());
}

void check_pool_gradient(const at::Tensor& grad_out, const at::Tensor& x) {
  TORCH_CHECK_VALUE(grad_out.dim() == 2 && grad_out.size(0) == x.size(0) &&
                        grad_out.size(1) == 2 * x.size(2),
                    "grad_out must have shape (B, 2d) = (", x.size(0), ", ", 2 * x.size(2),
                    "), got ", grad_out.sizes());
  TORCH_CHECK_TYPE(grad_out.scalar_type() == x.scalar_type(), "grad_out must be ",
                   x.scalar_type(), ", got ", grad_out.scalar_type());
  TORCH_CHECK_VALUE(grad_out.device() == x.device(), "grad_out is on ", grad_out.device(),
                    " but x is on ", x.device());
}

void check_dtype_supported(const at::Tensor& t, const char* op, const char* backend,
                           std::initializer_list<at::ScalarType> supported) {
  for (at::ScalarType s : supported)
    if (t.scalar_type() == s) return;
  std::ostringstream names;
  for (at::ScalarType s : supported) names << (names.tellp() > 0 ? ", " : "") << s;
  TORCH_CHECK_TYPE(false, op, " on ", backend, " supports ", names.str(), "; got ",
                   t.scalar_type());
}

}  // namespace dynbatch
