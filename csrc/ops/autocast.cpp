// The ops under torch.autocast, on the CPU and on CUDA: like torch's matmul-like ops (the
// lower_precision_fp policy), they run in the autocast dtype. Floating inputs are cast to it
// (float64 ones are left alone, as autocast leaves them), lengths are not, and the op is then
// called again below autocast. The backward ops need no entry: autograd calls them with the
// dtypes the forward ran in.
#include <ATen/autocast_mode.h>
#include <torch/library.h>

#include <tuple>

namespace dynbatch {
namespace {

template <c10::DeviceType device>
at::Tensor cast(const at::Tensor& t) {
  return at::autocast::cached_cast(at::autocast::get_lower_precision_fp_from_device_type(device),
                                   t, device);
}

template <typename Signature>
c10::TypedOperatorHandle<Signature> find_op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

template <c10::DeviceType device>
std::tuple<at::Tensor, at::Tensor> soft_align(const at::Tensor& a, const at::Tensor& b,
                                              const at::Tensor& len_a, const at::Tensor& len_b) {
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(
      at::autocast::get_autocast_dispatch_key_from_device_type(device));
  static const auto op = find_op<decltype(soft_align<device>)>("dynbatch_ext::soft_align");
  return op.call(cast<device>(a), cast<device>(b), len_a, len_b);
}

template <c10::DeviceType device>
at::Tensor masked_pool(const at::Tensor& x, const at::Tensor& len_x) {
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(
      at::autocast::get_autocast_dispatch_key_from_device_type(device));
  static const auto op = find_op<decltype(masked_pool<device>)>("dynbatch_ext::masked_pool");
  return op.call(cast<device>(x), len_x);
}

}  // namespace
}  // namespace dynbatch

TORCH_LIBRARY_IMPL(dynbatch_ext, AutocastCPU, m) {
  m.impl("soft_align", &dynbatch::soft_align<c10::DeviceType::CPU>);
  m.impl("masked_pool", &dynbatch::masked_pool<c10::DeviceType::CPU>);
}

TORCH_LIBRARY_IMPL(dynbatch_ext, AutocastCUDA, m) {
  m.impl("soft_align", &dynbatch::soft_align<c10::DeviceType::CUDA>);
  m.impl("masked_pool", &dynbatch::masked_pool<c10::DeviceType::CUDA>);
}
