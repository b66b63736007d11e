#include "lengths.hpp"

#include <stdexcept>
#include <string>

namespace dynbatch {

void validate_lengths(const LengthsView& lengths) {
  if (lengths.num_fields != 1 && lengths.num_fields != 2)
    throw std::invalid_argument("lengths must have shape (N,) or (N, 2), got " +
                                std::to_string(lengths.num_fields) + " fields per sample");
  if (lengths.num_samples <= 0)
    throw std::invalid_argument("lengths is empty: there is nothing to batch");
  const int64_t total = lengths.num_samples * lengths.num_fields;
  for (int64_t k = 0; k < total; ++k) {
    const int64_t value = lengths.data[k];
    if (value >= 0 && value <= kMaxLength) continue;
    const std::string where =
        lengths.pairs() ? std::to_string(k / 2) + ", " + std::to_string(k % 2) : std::to_string(k);
    throw std::invalid_argument(
        "lengths[" + where + "] is " + std::to_string(value) +
        (value < 0 ? ": lengths must be non-negative"
                   : ": lengths above " + std::to_string(kMaxLength) + " are not supported"));
  }
}

}  // namespace dynbatch
