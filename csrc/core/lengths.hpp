// A read-only view of sample lengths: (num_samples,) for single texts or (num_samples, 2) for
// sentence pairs, row-major int64.
#pragma once

#include <cstdint>

namespace dynbatch {

// Longest text (and largest padding multiple) we accept: a padded length then fits in 31 bits,
// so sorted lengths travel as uint32 and Hilbert coordinates never overflow.
constexpr int64_t kMaxLength = int64_t{1} << 30;

struct LengthsView {
  const int64_t* data = nullptr;
  int64_t num_samples = 0;
  int num_fields = 1;  // 1: single texts, 2: (premise, hypothesis) pairs

  bool pairs() const { return num_fields == 2; }
  int64_t first(int64_t i) const { return data[i * num_fields]; }
  int64_t second(int64_t i) const { return pairs() ? data[i * num_fields + 1] : 0; }
};

// Throws std::invalid_argument naming the first bad entry (negative, too long), or an empty set.
void validate_lengths(const LengthsView& lengths);

}  // namespace dynbatch
