// The padded cost of a batch: what the budget bounds.
//
//   one field: B * (constant + linear * L + quadratic * L^2)
//   pairs:     B * (constant + linear * (Lp + Lh) + quadratic * Lp * Lh)
//
// L, Lp and Lh are the batch's longest lengths rounded up to the padding multiple, because that
// is the shape of the tensor the model really sees.
#pragma once

#include <cstdint>

namespace dynbatch {

struct CostModel {
  double constant = 0.0;
  double linear = 0.0;
  double quadratic = 0.0;
};

// Round up to a multiple of `multiple` (>= 1). Lengths are validated to stay far below overflow.
inline int64_t padded_length(int64_t length, int64_t multiple) {
  return (length + multiple - 1) / multiple * multiple;
}

// Cost of one sample of a batch whose padded maxima are `first` (and `second` for pairs).
inline double per_sample_cost(const CostModel& cost, bool pairs, int64_t first, int64_t second) {
  const double a = static_cast<double>(first);
  if (!pairs) return cost.constant + cost.linear * a + cost.quadratic * a * a;
  const double b = static_cast<double>(second);
  return cost.constant + cost.linear * (a + b) + cost.quadratic * a * b;
}

inline double batch_cost(const CostModel& cost, bool pairs, int64_t batch_size, int64_t first,
                         int64_t second) {
  return static_cast<double>(batch_size) * per_sample_cost(cost, pairs, first, second);
}

}  // namespace dynbatch
