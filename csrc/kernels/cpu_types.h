// The 16-bit floating-point storage types of the CPU kernels, and the type each storage type is
// computed in: float and double in their own precision, bfloat16 and float16 in float (rounded
// to nearest, ties to even, on the way back, as torch converts). No torch header: BF16 and FP16
// hold the same bits as at::BFloat16 and at::Half.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace dynbatch {

struct BF16 {
  uint16_t bits;
};
struct FP16 {
  uint16_t bits;
};

template <typename T>
struct ComputeOf {
  using type = T;
};
template <>
struct ComputeOf<BF16> {
  using type = float;
};
template <>
struct ComputeOf<FP16> {
  using type = float;
};
template <typename T>
using compute_t = typename ComputeOf<T>::type;

namespace detail {

inline float float_from_bits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
inline uint32_t bits_of(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
}

// IEEE half <-> float, exact on the way in and correctly rounded on the way out, with the
// subnormals, infinities and NaNs of both (the FP16 library's branch-free conversions, which
// c10::Half also uses).
inline float half_to_float(uint16_t h) {
  const uint32_t w = static_cast<uint32_t>(h) << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w;
  const float normalized = float_from_bits((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
  const float denormalized = float_from_bits((two_w >> 17) | (126u << 23)) - 0.5f;
  const uint32_t magnitude = two_w < (1u << 27) ? bits_of(denormalized) : bits_of(normalized);
  return float_from_bits(sign | magnitude);
}

inline uint16_t float_to_half(float f) {
  float base = (f < 0 ? -f : f) * 0x1.0p+112f * 0x1.0p-110f;
  const uint32_t w = bits_of(f);
  const uint32_t shl1_w = w + w;
  const uint32_t sign = w & 0x80000000u;
  uint32_t bias = shl1_w & 0xFF000000u;
  if (bias < 0x71000000u) bias = 0x71000000u;
  base = float_from_bits((bias >> 1) + 0x07800000u) + base;
  const uint32_t bits = bits_of(base);
  const uint32_t nonsign = ((bits >> 13) & 0x00007C00u) + (bits & 0x00000FFFu);
  return static_cast<uint16_t>((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

inline uint16_t float_to_bfloat16(float f) {
  const uint32_t u = bits_of(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // NaN
  return static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

}  // namespace detail

template <typename T>
inline compute_t<T> to_compute(T v) {
  if constexpr (std::is_same_v<T, BF16>)
    return detail::float_from_bits(static_cast<uint32_t>(v.bits) << 16);
  else if constexpr (std::is_same_v<T, FP16>)
    return detail::half_to_float(v.bits);
  else
    return v;
}

template <typename T>
inline T from_compute(compute_t<T> v) {
  if constexpr (std::is_same_v<T, BF16>)
    return BF16{detail::float_to_bfloat16(v)};
  else if constexpr (std::is_same_v<T, FP16>)
    return FP16{detail::float_to_half(v)};
  else
    return v;
}

}  // namespace dynbatch
