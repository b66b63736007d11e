// Internal to the planner: samples in sorted order, and a batch as a stretch of that order.
#pragma once

#include <cstdint>
#include <vector>

#include "batch_plan.hpp"
#include "random.hpp"

namespace dynbatch {

// The admitted samples in sorted order with their padded lengths, gathered once so that every
// later pass streams through memory instead of jumping around the caller's array.
struct SortedLengths {
  std::vector<int64_t> order;        // sample indices, sorted
  std::vector<uint32_t> first;       // padded first length of order[k]
  std::vector<uint32_t> second;      // padded second length (empty for single texts)
  int64_t real_tokens = 0;           // of all samples, both fields
  bool pairs = false;

  SortedLengths(const LengthsView& lengths, std::vector<int64_t> sorted_order,
                int64_t pad_multiple);
  // Single texts whose exact lengths are already sorted alongside: no gather needed.
  SortedLengths(const std::vector<uint32_t>& sorted_lengths, std::vector<int64_t> sorted_order,
                int64_t pad_multiple);
  // Padded lengths given directly (second empty for single texts), in the order given.
  SortedLengths(std::vector<uint32_t> padded_first, std::vector<uint32_t> padded_second,
                int64_t total_real_tokens);
  int64_t size() const { return static_cast<int64_t>(order.size()); }
  int64_t second_at(int64_t k) const { return pairs ? second[k] : 0; }
};

// The samples that fit the budget alone, in index order; the oversize policy applied to the
// others (kSkip: recorded in `skipped`; kError: std::invalid_argument naming the first). Throws
// when none is left.
std::vector<int64_t> admit_samples(const LengthsView& lengths, const PlanOptions& options,
                                   std::vector<int64_t>& skipped);

// Sorts `order` (sample indices) by length, or along the Hilbert curve for pairs, with the
// padding noise and the random order among equal keys of the options' seed and epoch.
SortedLengths sort_samples(const LengthsView& lengths, std::vector<int64_t> order,
                           std::vector<int64_t>& spare, const PlanOptions& options);

struct BatchSpan {
  int64_t begin = 0;  // into the sorted order
  int64_t end = 0;
  double cost = 0.0;

  int64_t size() const { return end - begin; }
};

// Padded cost of sorted[begin:end] as one batch.
double span_cost(const SortedLengths& sorted, int64_t begin, int64_t end,
                 const PlanOptions& options);

// Greedy cut of the sorted order: a batch grows while it stays within budget and max size.
// The fewest batches a cut of this order can give, nearly; it scales partition_sorted's penalty.
std::vector<BatchSpan> partition_greedy(const SortedLengths& sorted, const PlanOptions& options);

// Cut of the sorted order that minimises padding plus a penalty per batch, every batch within
// budget and max size (dynamic programming, see the .cpp).
std::vector<BatchSpan> partition_sorted(const SortedLengths& sorted, const PlanOptions& options);

// Makes the batch count a multiple of num_replicas (splitting the largest batches, or dropping
// the smallest with drop_last), groups batches of similar cost into rounds (one batch per
// replica), orders the rounds, and writes the result into plan (overwriting plan.indices, whose
// memory it reuses).
void arrange_rounds(const SortedLengths& sorted, std::vector<BatchSpan> spans,
                    const PlanOptions& options, SplitMix64& rng, BatchPlan& plan);

}  // namespace dynbatch
