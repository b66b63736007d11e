#include "step_plan.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <queue>
#include <stdexcept>
#include <string>
#include <tuple>

#include "random.hpp"

namespace dynbatch {
namespace {

void validate(const double* weights, int64_t num_batches, const StepOptions& options) {
  if (!(options.target > 0.0) || !std::isfinite(options.target))
    throw std::invalid_argument("step target must be a positive finite number, got " +
                                std::to_string(options.target));
  if (options.max_micro_batches < 0)
    throw std::invalid_argument("max_micro_batches must be >= 0 (0: no limit)");
  if (options.num_replicas < 1) throw std::invalid_argument("num_replicas must be >= 1");
  if (num_batches <= 0) throw std::invalid_argument("there are no batches to group into steps");
  if (num_batches % options.num_replicas != 0)
    throw std::invalid_argument("the " + std::to_string(num_batches) +
                                " batches do not split evenly over " +
                                std::to_string(options.num_replicas) + " replicas");
  for (int64_t b = 0; b < num_batches; ++b)
    if (!(weights[b] >= 0.0) || !std::isfinite(weights[b]))
      throw std::invalid_argument("batch " + std::to_string(b) +
                                  " has a weight that is negative, infinite or NaN");
}

}  // namespace

StepPlan plan_steps(const double* weights, int64_t num_batches, const StepOptions& options) {
  validate(weights, num_batches, options);
  const int64_t replicas = options.num_replicas;
  const int64_t count = num_batches / replicas;  // rounds
  std::vector<double> round_weight(count, 0.0);
  for (int64_t b = 0; b < num_batches; ++b) round_weight[b / replicas] += weights[b];
  const double total = std::accumulate(round_weight.begin(), round_weight.end(), 0.0);

  const int64_t room = options.max_micro_batches > 0 ? options.max_micro_batches : count;
  const int64_t fewest = (count + room - 1) / room;
  const int64_t wanted = std::llround(std::min(total / options.target, 9.0e18));
  const int64_t num_steps = std::clamp(std::max(wanted, fewest), int64_t{1}, count);

  // Heaviest first; among equal weights, the earlier round (a pure function of the input).
  std::vector<int64_t> by_weight(count);
  std::iota(by_weight.begin(), by_weight.end(), 0);
  std::stable_sort(by_weight.begin(), by_weight.end(), [&](int64_t a, int64_t b) {
    return round_weight[a] > round_weight[b];
  });

  // The lightest step with room: (total, rounds so far, step), smallest first. Taking the
  // emptier step on equal totals means no step stays empty (num_steps <= count).
  using Slot = std::tuple<double, int64_t, int64_t>;
  std::priority_queue<Slot, std::vector<Slot>, std::greater<Slot>> lightest;
  for (int64_t s = 0; s < num_steps; ++s) lightest.emplace(0.0, 0, s);
  std::vector<std::vector<int64_t>> members(num_steps);
  std::vector<double> totals(num_steps, 0.0);
  for (int64_t m : by_weight) {
    auto [weight, size, step] = lightest.top();
    lightest.pop();
    members[step].push_back(m);
    totals[step] = weight + round_weight[m];
    if (size + 1 < room) lightest.emplace(totals[step], size + 1, step);
  }

  std::vector<int64_t> order(num_steps);
  std::iota(order.begin(), order.end(), 0);
  if (options.shuffle) {
    SplitMix64 rng(mix_seed(options.seed, options.epoch, kStepOrderStream));
    shuffle_range(order.data(), num_steps, rng);
  }
  StepPlan plan;
  plan.rounds.reserve(count);
  plan.offsets.reserve(num_steps + 1);
  plan.offsets.push_back(0);
  for (int64_t s : order) {
    std::sort(members[s].begin(), members[s].end());
    plan.rounds.insert(plan.rounds.end(), members[s].begin(), members[s].end());
    plan.offsets.push_back(static_cast<int64_t>(plan.rounds.size()));
    plan.totals.push_back(totals[s]);
  }
  return plan;
}

}  // namespace dynbatch
