#include "batch_stats.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace dynbatch {

BatchStats describe_batches(const LengthsView& lengths, const int64_t* indices,
                            int64_t num_indices, const int64_t* offsets, int64_t num_offsets,
                            const CostModel& cost, int64_t pad_multiple) {
  validate_lengths(lengths);
  if (pad_multiple < 1) throw std::invalid_argument("pad_multiple must be at least 1");
  if (num_offsets < 1 || offsets[0] != 0 || offsets[num_offsets - 1] != num_indices)
    throw std::invalid_argument("batch offsets must start at 0 and end at the number of indices");
  BatchStats stats;
  for (int64_t b = 0; b + 1 < num_offsets; ++b) {
    const int64_t begin = offsets[b], end = offsets[b + 1];
    if (end < begin) throw std::invalid_argument("batch offsets must be non-decreasing");
    int64_t first = 0, second = 0, real = 0;
    for (int64_t k = begin; k < end; ++k) {
      const int64_t i = indices[k];
      if (i < 0 || i >= lengths.num_samples)
        throw std::invalid_argument("batch " + std::to_string(b) + " holds index " +
                                    std::to_string(i) + ", outside the " +
                                    std::to_string(lengths.num_samples) + " samples");
      first = std::max(first, lengths.first(i));
      second = std::max(second, lengths.second(i));
      real += lengths.first(i) + lengths.second(i);
    }
    first = padded_length(first, pad_multiple);
    second = lengths.pairs() ? padded_length(second, pad_multiple) : 0;
    const int64_t size = end - begin;
    stats.sizes.push_back(size);
    stats.padded_first.push_back(first);
    stats.padded_second.push_back(second);
    stats.real_tokens.push_back(real);
    stats.padded_tokens.push_back(size * (first + second));
    stats.costs.push_back(batch_cost(cost, lengths.pairs(), size, first, second));
  }
  return stats;
}

}  // namespace dynbatch
