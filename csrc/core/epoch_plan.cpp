#include "epoch_plan.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "batch_span.hpp"
#include "random.hpp"
#include "step_plan.hpp"

namespace dynbatch {
namespace {


double sample_weight(const LengthsView& lengths, int64_t i, StepUnit unit) {
  if (unit == StepUnit::kSamples) return 1.0;
  return static_cast<double>(lengths.first(i) + lengths.second(i));
}

std::vector<double> batch_weights(const LengthsView& lengths, const BatchPlan& plan,
                                  StepUnit unit) {
  std::vector<double> weights(plan.num_batches(), 0.0);
  for (int64_t b = 0; b < plan.num_batches(); ++b)
    for (int64_t k = plan.offsets[b]; k < plan.offsets[b + 1]; ++k)
      weights[b] += sample_weight(lengths, plan.indices[k], unit);
  return weights;
}

// Today's plan: the whole epoch sorted and cut, its rounds dealt into steps of equal weight.
EpochPlan plan_sorted(const LengthsView& lengths, const PlanOptions& options,
                      const EpochStepOptions& steps) {
  EpochPlan out;
  BatchPlan plan = plan_batches(lengths, options);
  const std::vector<double> weights = batch_weights(lengths, plan, steps.unit);
  StepOptions grouping;
  grouping.target = steps.target;
  grouping.max_micro_batches = steps.max_micro_batches;
  grouping.num_replicas = options.num_replicas;
  grouping.shuffle = options.shuffle;
  grouping.seed = options.seed;
  grouping.epoch = options.epoch;
  const StepPlan grouped = plan_steps(weights.data(), plan.num_batches(), grouping);

  const int64_t replicas = options.num_replicas;
  BatchPlan& ordered = out.batches;
  ordered.skipped = std::move(plan.skipped);
  ordered.dropped = std::move(plan.dropped);
  ordered.indices.reserve(plan.indices.size());
  ordered.offsets.assign(1, 0);
  for (int64_t round : grouped.rounds)
    for (int64_t r = 0; r < replicas; ++r) {
      const int64_t b = round * replicas + r;
      ordered.indices.insert(ordered.indices.end(), plan.indices.begin() + plan.offsets[b],
                             plan.indices.begin() + plan.offsets[b + 1]);
      ordered.offsets.push_back(static_cast<int64_t>(ordered.indices.size()));
      ordered.costs.push_back(plan.costs[b]);
    }
  out.step_offsets = grouped.offsets;
  out.step_totals = grouped.totals;
  return out;
}

// Cuts `order` into steps: a step closes once its running weight reaches the next multiple of
// the target (steps of exactly `target` samples for an integer target, as a fixed-size batch
// sampler cuts) and its sample count is a multiple of the replicas (every replica gets as many
// samples, so each can hold as many micro-batches: one sample each at worst); a last step with
// fewer samples than replicas joins the one before it. Returns the step boundaries into `order`.
std::vector<int64_t> cut_steps(const LengthsView& lengths, const std::vector<int64_t>& order,
                               const EpochStepOptions& steps, int64_t replicas) {
  std::vector<int64_t> bounds{0};
  double running = 0.0;
  double next = steps.target;
  const int64_t n = static_cast<int64_t>(order.size());
  for (int64_t k = 0; k < n; ++k) {
    running += sample_weight(lengths, order[k], steps.unit);
    if (running >= next && (k + 1 - bounds.back()) % replicas == 0) {
      bounds.push_back(k + 1);
      next = (std::floor(running / steps.target) + 1.0) * steps.target;
    }
  }
  if (bounds.back() != n) bounds.push_back(n);
  if (bounds.size() > 2 && bounds[bounds.size() - 1] - bounds[bounds.size() - 2] < replicas)
    bounds.erase(bounds.end() - 2);
  if (bounds.back() - bounds[bounds.size() - 2] < replicas)
    throw std::invalid_argument("the " + std::to_string(n) + " samples are fewer than the " +
                                std::to_string(replicas) +
                                " replicas: every replica needs a sample of every step");
  return bounds;
}

using Slices = std::vector<std::pair<int64_t, int64_t>>;  // (begin, end) in the sorted pool

// A span of fewer samples than slots leaves some slots without a micro-batch from it; where that
// leaves a step's replicas with unequal counts, the short replicas' largest micro-batches are
// split in two (a half never costs more per sample than the whole, so it stays within budget)
// until the counts agree. False where that cannot be done (a short replica's micro-batches hold
// one sample each, or it has none).
bool equalise_replicas(std::vector<Slices>& replica_slices) {
  size_t most = 0;
  for (const Slices& mine : replica_slices) most = std::max(most, mine.size());
  for (Slices& mine : replica_slices) {
    while (mine.size() < most) {
      if (mine.empty()) return false;
      auto largest = std::max_element(mine.begin(), mine.end(), [](const auto& a, const auto& b) {
        return a.second - a.first < b.second - b.first;
      });
      const auto [begin, end] = *largest;
      if (end - begin < 2) return false;
      const int64_t middle = begin + (end - begin) / 2;
      *largest = {begin, middle};
      mine.insert(largest + 1, {middle, end});
    }
  }
  return true;
}

// Appends a step whose slices could not be equalised, cut anew: its samples sorted and cut under
// the budget, the largest micro-batches split until every replica has as many. Where the cut that
// pads least has too many micro-batches to reach a multiple of the replicas by splitting, the cut
// into the fewest is taken (any count between the fewest and one sample each can be reached by
// splitting, and a split never raises the cost per sample). Throws where no cut can do it.
void append_replanned_step(const LengthsView& lengths, const std::vector<int64_t>& samples,
                           const PlanOptions& settings, const EpochStepOptions& steps,
                           EpochPlan& out) {
  std::vector<int64_t> spare;
  const SortedLengths sorted = sort_samples(lengths, samples, spare, settings);
  const int64_t replicas = settings.num_replicas, n = sorted.size();
  auto reachable = [&](const std::vector<BatchSpan>& spans) {
    return (static_cast<int64_t>(spans.size()) + replicas - 1) / replicas * replicas <= n;
  };
  std::vector<BatchSpan> spans = partition_sorted(sorted, settings);
  if (!reachable(spans)) spans = partition_greedy(sorted, settings);
  if (!reachable(spans))
    throw std::invalid_argument(
        "a step of " + std::to_string(n) + " samples cannot give each of the " +
        std::to_string(replicas) + " replicas the same number of micro-batches: its samples need " +
        std::to_string(spans.size()) + " micro-batches within the budget, and no multiple of " +
        std::to_string(replicas) + " up to one sample each is reachable; raise the budget, use " +
        "fewer replicas, or use composition='sorted' with drop_last=True");
  SplitMix64 round_rng(mix_seed(settings.seed, settings.epoch, kRoundStream));
  BatchPlan plan;
  plan.indices = std::move(spare);
  arrange_rounds(sorted, std::move(spans), settings, round_rng, plan);
  double total = 0.0;
  for (int64_t b = 0; b < plan.num_batches(); ++b) {
    for (int64_t k = plan.offsets[b]; k < plan.offsets[b + 1]; ++k) {
      out.batches.indices.push_back(plan.indices[k]);
      total += sample_weight(lengths, plan.indices[k], steps.unit);
    }
    out.batches.offsets.push_back(static_cast<int64_t>(out.batches.indices.size()));
    out.batches.costs.push_back(plan.costs[b]);
  }
  out.step_offsets.push_back(out.step_offsets.back() + plan.num_batches() / replicas);
  out.step_totals.push_back(total);
}

// Plans one pool: `pool` (sample indices, in the epoch order) holds `num_steps` steps. The pool is
// sorted and taken in groups of G = num_steps * replicas consecutive samples; the groups are cut
// under the budget as if each were one sample of the group's longest lengths, and every span of
// groups is split into G consecutive slices of about equal size, one per (step, replica). So each
// step gets one micro-batch per replica from every stretch of the pool's lengths (the pool's mix),
// each micro-batch holds neighbours in the pool's sorted order (its padding), and a slice holds
// at most the span's groups, so it costs at most what the span's groups cost as samples: within
// the budget. Appends the pool's steps, in random order, to `out`.
void plan_pool(const LengthsView& lengths, const std::vector<int64_t>& pool, int64_t num_steps,
               uint64_t pool_number, const PlanOptions& options, const EpochStepOptions& steps,
               EpochPlan& out) {
  const int64_t replicas = options.num_replicas;
  const int64_t slots = num_steps * replicas;
  PlanOptions settings = options;
  settings.epoch = mix_seed(options.epoch, pool_number, kPoolStream);
  std::vector<int64_t> spare;
  const SortedLengths sorted = sort_samples(lengths, pool, spare, settings);
  const int64_t n = sorted.size();

  // Groups of `slots` samples; a partial group, if any, first (among the shortest samples, whose
  // spans hold the most groups).
  const int64_t partial = n % slots;
  std::vector<int64_t> group_start;
  for (int64_t k = partial > 0 ? partial : slots; k <= n; k += slots) group_start.push_back(k);
  group_start.insert(group_start.begin(), 0);  // group g is sorted[group_start[g] : group_start[g + 1]]
  const int64_t groups = static_cast<int64_t>(group_start.size()) - 1;
  std::vector<uint32_t> first(groups, 0), second(sorted.pairs ? groups : 0, 0);
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t k = group_start[g]; k < group_start[g + 1]; ++k) {
      first[g] = std::max(first[g], sorted.first[k]);
      if (sorted.pairs) second[g] = std::max(second[g], sorted.second[k]);
    }
  const SortedLengths grouped(std::move(first), std::move(second), sorted.real_tokens);
  const std::vector<BatchSpan> spans = partition_sorted(grouped, settings);

  // A span's slices, in sorted order, go to the steps in blocks of `replicas` consecutive slices
  // (a step's replicas get neighbouring slices: similar work). Which step gets which block: a
  // random permutation of the pool's steps, taken forwards for one span and backwards for the
  // next (the step with a span's shortest slice gets the next span's longest, so that every
  // step's mean length stays near the pool's), and rotated so that the extra samples of an
  // uneven split (the first slices are one larger) go to other steps each time.
  std::vector<int64_t> step_of_block(num_steps);
  std::iota(step_of_block.begin(), step_of_block.end(), 0);
  SplitMix64 rng(mix_seed(settings.seed, settings.epoch, kPoolStepOrderStream));
  if (options.shuffle) shuffle_range(step_of_block.data(), num_steps, rng);
  // slices[step * replicas + r]: replica r's micro-batches of the step, as (begin, end) in the
  // sorted pool, one per span.
  std::vector<Slices> slices(slots);
  int64_t block_rotation = 0, replica_rotation = 0;
  bool backwards = false;
  for (const BatchSpan& span : spans) {
    const int64_t begin = group_start[span.begin], count = group_start[span.end] - begin;
    const int64_t extra = count % slots;
    for (int64_t p = 0, at = begin; p < slots; ++p) {
      const int64_t size = count / slots + (p < extra ? 1 : 0);
      const int64_t block = (p / replicas + block_rotation) % num_steps;
      const int64_t step = step_of_block[backwards ? num_steps - 1 - block : block];
      const int64_t replica = (p % replicas + replica_rotation) % replicas;
      if (size > 0) slices[step * replicas + replica].emplace_back(at, at + size);
      at += size;
    }
    block_rotation = (block_rotation + (extra + replicas - 1) / replicas) % num_steps;
    replica_rotation = (replica_rotation + extra) % replicas;
    backwards = !backwards;
  }

  std::vector<int64_t> step_order(num_steps);
  std::iota(step_order.begin(), step_order.end(), 0);
  if (options.shuffle) shuffle_range(step_order.data(), num_steps, rng);
  BatchPlan& batches = out.batches;
  for (int64_t step : step_order) {
    std::vector<Slices> mine(slices.begin() + step * replicas,
                             slices.begin() + (step + 1) * replicas);
    if (!equalise_replicas(mine)) {
      std::vector<int64_t> samples;
      for (const Slices& replica : mine)
        for (const auto& [begin, end] : replica)
          samples.insert(samples.end(), sorted.order.begin() + begin, sorted.order.begin() + end);
      append_replanned_step(lengths, samples, settings, steps, out);
      continue;
    }
    const int64_t rounds = static_cast<int64_t>(mine[0].size());
    double total = 0.0;
    for (int64_t m = 0; m < rounds; ++m)
      for (int64_t r = 0; r < replicas; ++r) {
        const auto [begin, end] = mine[r][m];
        for (int64_t k = begin; k < end; ++k) {
          batches.indices.push_back(sorted.order[k]);
          total += sample_weight(lengths, sorted.order[k], steps.unit);
        }
        batches.offsets.push_back(static_cast<int64_t>(batches.indices.size()));
        batches.costs.push_back(span_cost(sorted, begin, end, settings));
      }
    out.step_offsets.push_back(out.step_offsets.back() + rounds);
    out.step_totals.push_back(total);
  }
}

EpochPlan plan_pooled(const LengthsView& lengths, const PlanOptions& options,
                      const EpochStepOptions& steps) {
  EpochPlan out;
  const std::vector<int64_t> admitted = admit_samples(lengths, options, out.batches.skipped);
  const std::vector<int64_t> shuffled = epoch_order(static_cast<int64_t>(admitted.size()), options);
  std::vector<int64_t> order(admitted.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = admitted[shuffled[k]];
  const std::vector<int64_t> bounds = cut_steps(lengths, order, steps, options.num_replicas);

  const int64_t num_steps = static_cast<int64_t>(bounds.size()) - 1;
  const int64_t per_pool = steps.composition == Composition::kRandom ? 1 : steps.pool_steps;
  out.batches.offsets.assign(1, 0);
  out.step_offsets.assign(1, 0);
  for (int64_t first = 0, pool_number = 0; first < num_steps; first += per_pool, ++pool_number) {
    const int64_t last = std::min(first + per_pool, num_steps);
    const std::vector<int64_t> pool(order.begin() + bounds[first], order.begin() + bounds[last]);
    plan_pool(lengths, pool, last - first, static_cast<uint64_t>(pool_number), options, steps, out);
  }
  return out;
}

}  // namespace

std::vector<int64_t> epoch_order(int64_t count, const PlanOptions& options) {
  std::vector<int64_t> order(static_cast<size_t>(std::max<int64_t>(count, 0)));
  std::iota(order.begin(), order.end(), 0);
  if (options.shuffle) {
    SplitMix64 rng(mix_seed(options.seed, options.epoch, kPermutationStream));
    shuffle_range(order.data(), count, rng);
  }
  return order;
}

void validate_step_options(const PlanOptions& options, const EpochStepOptions& steps) {
  if (!(steps.target > 0.0) || !std::isfinite(steps.target))
    throw std::invalid_argument("step target must be a positive finite number, got " +
                                std::to_string(steps.target));
  if (steps.max_micro_batches < 0)
    throw std::invalid_argument("max_micro_batches must be >= 0 (0: no limit)");
  if (steps.pool_steps < 1)
    throw std::invalid_argument("pool_steps must be at least 1, got " +
                                std::to_string(steps.pool_steps));
  if (steps.composition == Composition::kSorted) return;
  if (steps.max_micro_batches > 0)
    throw std::invalid_argument(
        "max_micro_batches applies to sorted steps only: a random or pooled step holds the "
        "samples the random order gives it, in as many micro-batches as the budget needs");
  if (options.drop_last)
    throw std::invalid_argument(
        "drop_last applies to sorted steps only: random and pooled steps give every replica its "
        "share of every step, so no batch is left over");
}

EpochPlan plan_epoch(const LengthsView& lengths, const PlanOptions& options,
                     const EpochStepOptions& steps) {
  validate_lengths(lengths);
  validate_options(options);
  validate_step_options(options, steps);
  if (steps.composition == Composition::kSorted) return plan_sorted(lengths, options, steps);
  return plan_pooled(lengths, options, steps);
}

}  // namespace dynbatch
