// An epoch's micro-batches in optimizer-step order, in one call: the plan (batch_plan.hpp) and
// its grouping into steps of about `target` samples or real tokens, for each way of composing a
// step from the data.
//
//   kSorted  the whole epoch is sorted and cut (plan_batches), then its rounds are dealt into
//            steps of equal weight (plan_steps): the least padding, but each step holds samples
//            of nearly one length.
//   kRandom  the epoch's random order of samples is cut into steps of `target` (as a fixed-size
//            random batch sampler cuts it), and only inside a step are its samples sorted and cut
//            into micro-batches under the budget: every step is a uniformly random set of
//            samples, so with exact loss weights its gradient is that of a random batch.
//   kPooled  the random order is cut into pools of `pool_steps` steps; each pool is sorted and
//            cut as a whole, and its rounds are dealt in length order to the pool's steps, each
//            to the lightest, so that every step holds about `target` and the pool's mix of
//            lengths. kRandom is kPooled with pools of one step.
#pragma once

#include <cstdint>
#include <vector>

#include "batch_plan.hpp"
#include "lengths.hpp"

namespace dynbatch {

enum class Composition { kSorted, kPooled, kRandom };
enum class StepUnit { kSamples, kTokens };  // what a step's weight counts (tokens: both fields)

struct EpochStepOptions {
  double target = 0.0;            // weight per step, summed over replicas (> 0)
  StepUnit unit = StepUnit::kSamples;
  int64_t max_micro_batches = 0;  // kSorted only: per replica per step; 0: no limit
  Composition composition = Composition::kSorted;
  int64_t pool_steps = 1;         // kPooled: steps per pool (>= 1)
};

// The plan's batches in step order: step s holds rounds step_offsets[s] .. step_offsets[s + 1]
// (a round is one batch per replica, batch m * num_replicas + r for replica r), so every replica
// has the same number of micro-batches in every step.
struct EpochPlan {
  BatchPlan batches;
  std::vector<int64_t> step_offsets;  // in rounds
  std::vector<double> step_totals;    // weight of each step, summed over replicas
};

// A pure function of its arguments. Throws std::invalid_argument on bad input: besides
// plan_batches' own checks, a composition other than kSorted takes neither max_micro_batches nor
// drop_last (a step is the random order's, whole), and under several replicas every step needs
// at least one sample per replica (a last step with fewer joins the one before it).
EpochPlan plan_epoch(const LengthsView& lengths, const PlanOptions& options,
                     const EpochStepOptions& steps);

// plan_epoch's checks of the step options alone (std::invalid_argument naming the problem).
void validate_step_options(const PlanOptions& options, const EpochStepOptions& steps);

// The epoch's random order of `count` samples that kPooled and kRandom cut into steps (the
// identity without shuffle): a fixed-size batch sampler over it gives kRandom's step sets.
std::vector<int64_t> epoch_order(int64_t count, const PlanOptions& options);

}  // namespace dynbatch
