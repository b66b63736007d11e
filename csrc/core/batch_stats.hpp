// What a list of batches costs: per-batch size, padded shape, cost and real vs padded tokens.
// Used to report on any batching (ours, or a fixed batch size for comparison).
#pragma once

#include <cstdint>
#include <vector>

#include "cost_model.hpp"
#include "lengths.hpp"

namespace dynbatch {

struct BatchStats {
  std::vector<int64_t> sizes;
  std::vector<int64_t> padded_first;   // padded longest length of each batch (premise for pairs)
  std::vector<int64_t> padded_second;  // padded longest hypothesis (0 for single texts)
  std::vector<int64_t> real_tokens;
  std::vector<int64_t> padded_tokens;  // size * (padded_first + padded_second)
  std::vector<double> costs;
};

// Batch b is indices[offsets[b] : offsets[b + 1]]. Throws std::invalid_argument on an index
// out of range or offsets that do not partition `indices`.
BatchStats describe_batches(const LengthsView& lengths, const int64_t* indices,
                            int64_t num_indices, const int64_t* offsets, int64_t num_offsets,
                            const CostModel& cost, int64_t pad_multiple);

}  // namespace dynbatch
