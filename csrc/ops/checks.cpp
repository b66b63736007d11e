#include "ops/checks.h"

#include <sstream>

namespace dynbatch {

void check_length_tensor(const at::Tensor& len, const char* name, int64_t batch,
                         const at::Tensor& like) {
  TORCH_CHECK_VALUE(len.dim() == 1, name, " must have shape (B,), got ", len.sizes());
  TORCH_CHECK_VALUE(len.size(0) == batch, name, " has ", len.size(0),
                    " entries but the batch has ", batch);
  TORCH_CHECK_TYPE(len.scalar_type() == at::kLong, name, " must be int64, got ",
                   len.scalar_type());
  TORCH_CHECK_VALUE(len.device() == like.device(), name, " is on ", len.device(),
                    " but the inputs are on ", like.device());
}

void check_length_values(std::initializer_list<LengthBound> bounds) {
  std::vector<at::Tensor> extremes;
  for (const LengthBound& b : bounds) {
    if (b.len.numel() == 0) continue;
    const auto [low, high] = at::aminmax(b.len);
    extremes.push_back(low);
    extremes.push_back(high);
  }
  if (extremes.empty()) return;
  const at::Tensor host = at::stack(extremes).cpu();
  const int64_t* value = host.const_data_ptr<int64_t>();
  for (const LengthBound& b : bounds) {
    if (b.len.numel() == 0) continue;
    const int64_t smallest = *value++, largest = *value++;
    TORCH_CHECK_VALUE(smallest >= 0, b.name, " holds ", smallest,
                      ": lengths must be non-negative");
    TORCH_CHECK_VALUE(largest <= b.max_len, b.name, " holds ", largest,
                      ", longer than the padded ", b.padded_name, " dimension (", b.max_len, ")");
  }
}

void check_3d(const at::Tensor& t, const char* name, const char* shape) {
  TORCH_CHECK_VALUE(t.dim() == 3, name, " must have shape ", shape, ", got ", t.sizes());
  TORCH_CHECK_TYPE(at::isFloatingType(t.scalar_type()), name,
                   " must be a floating-point tensor, got ", t.scalar_type());
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

void unsupported_dtype(at::ScalarType dtype, const char* op, const char* backend,
                       const std::vector<at::ScalarType>& supported) {
  std::ostringstream names;
  for (at::ScalarType s : supported) names << (names.tellp() > 0 ? ", " : "") << s;
  TORCH_CHECK_TYPE(false, op, " on ", backend, " supports ", names.str(), "; got ", dtype);
}

}  // namespace dynbatch
