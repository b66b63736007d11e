// Constant effective batch: group a plan's micro-batches into optimizer steps that each hold
// about the same weight (samples or tokens), so that the learning rate sees the same batch size
// at every step however much the micro-batches vary.
#pragma once

#include <cstdint>
#include <vector>

namespace dynbatch {

struct StepOptions {
  double target = 0.0;            // weight per step, summed over replicas (> 0)
  int64_t max_micro_batches = 0;  // per replica per step; 0: no limit
  int64_t num_replicas = 1;
  bool shuffle = true;            // random order of steps, drawn from (seed, epoch)
  uint64_t seed = 0;
  uint64_t epoch = 0;
};

// Step s holds the rounds rounds[offsets[s] : offsets[s + 1]], in increasing order. A round is
// one batch per replica: batches m * num_replicas + r for r < num_replicas, as plan_batches lays
// them out, so every replica runs the same number of micro-batches in every step (their
// gradient all-reduce happens once per step on all of them).
struct StepPlan {
  std::vector<int64_t> rounds;
  std::vector<int64_t> offsets;
  std::vector<double> totals;  // weight of each step, summed over replicas
};

// `weights[b]` is batch b's weight (its samples or real tokens); num_batches must be a multiple
// of num_replicas. The number of steps is the total weight over the target, rounded, raised to
// what max_micro_batches needs; rounds are dealt heaviest first to the lightest step that has
// room (LPT), so step totals differ by at most about one round. A pure function of its
// arguments. Throws std::invalid_argument on bad input.
StepPlan plan_steps(const double* weights, int64_t num_batches, const StepOptions& options);

}  // namespace dynbatch
