// What an op's autocast kernels (in ops/<op>.cpp) share. Like torch's matmul-like ops (the
// lower_precision_fp policy), the ops run in the autocast dtype: floating inputs are cast to it
// (float64 ones are left alone, as autocast leaves them), lengths are not, and the op is then
// called again below autocast. Backward ops need no entry: autograd calls them with the dtypes
// the forward ran in.
#pragma once

#include <ATen/autocast_mode.h>

namespace dynbatch {

template <c10::DeviceType device>
at::Tensor autocast_input(const at::Tensor& t) {
  return at::autocast::cached_cast(at::autocast::get_lower_precision_fp_from_device_type(device),
                                   t, device);
}

// Excludes `device`'s autocast key for as long as it lives: the op called under it runs below
// autocast.
template <c10::DeviceType device>
struct BelowAutocast {
  c10::impl::ExcludeDispatchKeyGuard guard{
      at::autocast::get_autocast_dispatch_key_from_device_type(device)};
};

template <typename Signature>
c10::TypedOperatorHandle<Signature> find_op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

}  // namespace dynbatch
