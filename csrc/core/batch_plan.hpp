// Budgeted length bucketing: sort samples by length, cut them into batches whose padded cost
// stays under a budget, and lay the batches out in rounds (one batch per replica) for one or more
// replicas.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cost_model.hpp"
#include "lengths.hpp"

namespace dynbatch {

enum class OversizePolicy {
  kError,  // a sample that alone costs more than the budget is an error
  kAlone,  // it gets a batch of its own (the only batches allowed over budget)
  kSkip,   // it is left out and reported in BatchPlan::skipped
};

struct PlanOptions {
  double budget = 0.0;
  CostModel cost;
  int64_t pad_multiple = 1;    // pad every length up to a multiple of this
  int64_t max_batch_size = 0;  // 0: no limit besides the budget
  OversizePolicy oversize = OversizePolicy::kError;
  bool shuffle = true;          // random order of rounds, random ties between equal lengths
  uint64_t seed = 0;
  uint64_t epoch = 0;
  double padding_noise = 0.0;   // sort by length * (1 + U(-noise, noise)): in [0, 1)
  // One more batch is worth this fraction of an average batch's real tokens in saved padding
  // (see partition_sorted): 0 pads least, larger values give fewer, fuller batches.
  double batch_overhead = 0.15;
  int64_t num_replicas = 1;
  bool drop_last = false;       // drop batches that would make the replicas' counts unequal
  // At least this many batches, the largest split to get them (epoch_plan.cpp: a round for
  // each step of a pool). Not a user option.
  int64_t min_batches = 0;
};

// Batch b holds indices[offsets[b] : offsets[b + 1]]. Batches come in round order: batch
// s * num_replicas + r is replica r's s-th batch, and each round's batches have similar cost.
struct BatchPlan {
  std::vector<int64_t> indices;
  std::vector<int64_t> offsets;
  std::vector<double> costs;
  std::vector<int64_t> skipped;  // oversize samples left out (oversize = kSkip)
  std::vector<int64_t> dropped;  // samples left out by drop_last

  int64_t num_batches() const { return static_cast<int64_t>(costs.size()); }
};

// A pure function of its arguments. Throws std::invalid_argument on bad input.
BatchPlan plan_batches(const LengthsView& lengths, const PlanOptions& options);

void validate_options(const PlanOptions& options);

// The error for a sample that alone costs more than the budget under OversizePolicy::kError;
// `how_many`: of all samples, when known (0: not said).
std::string oversize_message(const std::string& sample, double cost_alone, double budget,
                             int64_t how_many = 0);

}  // namespace dynbatch
