// Randomised stress of the pure C++ batching core, built with AddressSanitizer and UBSan by
// tests/test_core_sanitizers.py: on random inputs (edge cases and bad values included) a plan
// must either be refused with std::invalid_argument or cover every sample exactly once (kept,
// skipped or dropped), keep every multi-sample batch within budget and give the replicas equal
// counts; and describe_batches must refuse indices outside the data instead of reading them.
// The streaming batcher gets the same inputs in random chunks and buffer sizes, with a state saved
// and restored into a new batcher midway: every sample in exactly one batch (or skipped), every
// multi-sample batch within budget and max size, never more than the buffer held; in steps, whole
// steps covering every batch taken, random steps of exactly the target and fills of whole steps but at
// the end. The epoch's
// plan in optimizer steps (plan_epoch), for every composition: the same coverage and budget, whole
// rounds in every step, and random steps that hold exactly the epoch order's consecutive runs.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <vector>

#include "core/batch_plan.hpp"
#include "core/batch_stats.hpp"
#include "core/epoch_plan.hpp"
#include "core/random.hpp"
#include "core/stream_batcher.hpp"

using namespace dynbatch;

namespace {

int failures = 0;

void fail(int iteration, const char* what) {
  std::fprintf(stderr, "iteration %d: %s\n", iteration, what);
  ++failures;
}

template <typename T>
T pick(SplitMix64& rng, std::initializer_list<T> values) {
  return values.begin()[rng.below(values.size())];
}

void check_plan(int iteration, const LengthsView& lengths, const PlanOptions& options,
                const BatchPlan& plan) {
  std::vector<int> seen(lengths.num_samples, 0);
  for (int64_t i : plan.indices) ++seen.at(i);
  for (int64_t i : plan.skipped) ++seen.at(i);
  for (int64_t i : plan.dropped) ++seen.at(i);
  if (std::any_of(seen.begin(), seen.end(), [](int s) { return s != 1; }))
    fail(iteration, "a sample is lost or repeated");
  if (plan.num_batches() % options.num_replicas != 0) fail(iteration, "unequal replica counts");
  if (static_cast<int64_t>(plan.offsets.size()) != plan.num_batches() + 1)
    fail(iteration, "offsets do not match the batches");
  const BatchStats stats =
      describe_batches(lengths, plan.indices.data(), static_cast<int64_t>(plan.indices.size()),
                       plan.offsets.data(), static_cast<int64_t>(plan.offsets.size()),
                       options.cost, options.pad_multiple);
  for (int64_t b = 0; b < plan.num_batches(); ++b) {
    if (stats.costs[b] != plan.costs[b]) fail(iteration, "plan and stats disagree on a cost");
    if (stats.sizes[b] > 1 && stats.costs[b] > options.budget) fail(iteration, "over budget");
    if (options.max_batch_size > 0 && stats.sizes[b] > options.max_batch_size)
      fail(iteration, "over max_batch_size");
  }
}

void check_epoch(int iteration, const LengthsView& lengths, PlanOptions options, SplitMix64& rng) {
  EpochStepOptions steps;
  steps.composition = pick(rng, {Composition::kSorted, Composition::kPooled, Composition::kRandom});
  steps.unit = pick(rng, {StepUnit::kSamples, StepUnit::kTokens});
  steps.target = pick<double>(rng, {1.0, 3.0, 20.0, 2.5, 1e6});
  steps.pool_steps = pick<int64_t>(rng, {1, 2, 8});
  if (steps.composition != Composition::kSorted) options.drop_last = false;
  else steps.max_micro_batches = pick<int64_t>(rng, {0, 0, 1, 3});
  EpochPlan plan;
  try {
    plan = plan_epoch(lengths, options, steps);
  } catch (const std::invalid_argument&) {
    return;  // e.g. fewer samples than replicas: refused with a message
  }
  check_plan(iteration, lengths, options, plan.batches);
  const int64_t rounds = plan.batches.num_batches() / options.num_replicas;
  if (plan.step_offsets.front() != 0 || plan.step_offsets.back() != rounds ||
      plan.step_totals.size() + 1 != plan.step_offsets.size())
    fail(iteration, "the steps do not cover the rounds");
  for (size_t s = 0; s + 1 < plan.step_offsets.size(); ++s)
    if (plan.step_offsets[s + 1] <= plan.step_offsets[s]) fail(iteration, "an empty step");
  if (steps.composition != Composition::kRandom || steps.unit != StepUnit::kSamples ||
      steps.target != 20.0 || options.oversize == OversizePolicy::kSkip)
    return;
  // Random steps of 20 samples: each holds the next run of the epoch order, the first multiple
  // of the replicas that takes the epoch past the next multiple of 20 (the last step the rest,
  // and a last run shorter than the replicas joins the step before it).
  const std::vector<int64_t> order = epoch_order(lengths.num_samples, options);
  int64_t position = 0;
  for (size_t s = 0; s + 1 < plan.step_offsets.size(); ++s) {
    const int64_t begin = plan.batches.offsets[plan.step_offsets[s] * options.num_replicas];
    const int64_t end = plan.batches.offsets[plan.step_offsets[s + 1] * options.num_replicas];
    std::vector<int64_t> got(plan.batches.indices.begin() + begin, plan.batches.indices.begin() + end);
    std::vector<int64_t> want(order.begin() + position, order.begin() + position + (end - begin));
    position += end - begin;
    std::sort(got.begin(), got.end());
    std::sort(want.begin(), want.end());
    const bool last = s + 2 == plan.step_offsets.size();
    const int64_t past = 20 * static_cast<int64_t>(s + 1), replicas = options.num_replicas;
    const bool cut_right = (end - begin) % replicas == 0 && position >= past && position < past + replicas;
    if (got != want || (!last && !cut_right)) fail(iteration, "a random step is not the order's run");
  }
}

void check_stream(int iteration, const LengthsView& lengths, PlanOptions options,
                  SplitMix64& rng) {
  options.num_replicas = 1;
  options.drop_last = false;
  StreamOptions settings{options, pick<int64_t>(rng, {1, 2, 7, 64, 100000}),
                         pick<double>(rng, {0.0, 0.5, 1.0})};
  if (rng.below(2) == 0) {
    EpochStepOptions steps;
    steps.composition = pick(rng, {Composition::kSorted, Composition::kPooled, Composition::kRandom});
    // (a stream's random and pooled steps count samples; tokens are refused, with a message)
    steps.unit = steps.composition == Composition::kSorted ? pick(rng, {StepUnit::kSamples, StepUnit::kTokens})
                                                           : StepUnit::kSamples;
    steps.target = pick<double>(rng, {1.0, 3.0, 20.0, 2.5, 1e6});
    steps.pool_steps = pick<int64_t>(rng, {1, 2, 8});
    settings.steps = steps;
  }
  const bool exact_steps = settings.steps && settings.steps->composition == Composition::kRandom &&
                           settings.steps->target == 20.0;
  const bool whole_steps = settings.steps && settings.steps->composition != Composition::kSorted;
  const int fields = lengths.num_fields;
  std::vector<int64_t> ids(lengths.num_samples);
  for (int64_t i = 0; i < lengths.num_samples; ++i) ids[i] = 1000 + i;  // ids need not be positions
  StreamBatcher batcher(fields, settings);
  StreamBatches out;
  auto collect = [&](StreamBatcher& from, bool at_end) {
    StreamBatches taken = from.take();
    const int64_t batches = static_cast<int64_t>(taken.costs.size());
    if (settings.steps && taken.step_offsets.back() != batches)
      fail(iteration, "a stream's steps do not cover its batches");
    if (!settings.steps && taken.step_offsets.size() != 1) fail(iteration, "steps outside step mode");
    for (size_t s = 0; s + 1 < taken.step_offsets.size(); ++s) {
      const int64_t first = taken.step_offsets[s], last = taken.step_offsets[s + 1];
      if (last <= first) fail(iteration, "an empty step in a stream");
      const int64_t samples = taken.offsets[last] - taken.offsets[first];
      if (exact_steps && !at_end && samples != 20) fail(iteration, "a random step is not 20 samples");
    }
    // Random or pooled fills emit whole steps only: a multiple of 20 samples for steps of 20.
    if (whole_steps && !at_end && settings.steps->target == 20.0 && taken.ids.size() % 20 != 0)
      fail(iteration, "a fill emitted a partial step");
    for (size_t b = 0; b + 1 < taken.offsets.size(); ++b) {
      out.costs.push_back(taken.costs[b]);
      out.ids.insert(out.ids.end(), taken.ids.begin() + taken.offsets[b],
                     taken.ids.begin() + taken.offsets[b + 1]);
      out.offsets.push_back(static_cast<int64_t>(out.ids.size()));
    }
    out.skipped.insert(out.skipped.end(), taken.skipped.begin(), taken.skipped.end());
  };
  const int64_t restore_at = lengths.num_samples / 2;
  bool restored = false;
  for (int64_t start = 0; start < lengths.num_samples;) {
    const int64_t count = std::min<int64_t>(lengths.num_samples - start, 1 + rng.below(40));
    batcher.push(ids.data() + start, lengths.data + start * fields, count);
    start += count;
    collect(batcher, false);
    if (batcher.buffered() >= settings.buffer_size) fail(iteration, "the stream's buffer overflowed");
    if (!restored && start >= restore_at) {  // continue in a new batcher from the saved state
      StreamBatcher resumed(fields, settings);
      resumed.restore(batcher.state());
      batcher = std::move(resumed);
      restored = true;
    }
  }
  batcher.finish();
  collect(batcher, true);
  std::vector<int> seen(lengths.num_samples, 0);
  for (int64_t id : out.ids) ++seen.at(id - 1000);
  for (int64_t id : out.skipped) ++seen.at(id - 1000);
  if (std::any_of(seen.begin(), seen.end(), [](int s) { return s != 1; }))
    fail(iteration, "the stream lost or repeated a sample");
  const std::vector<int64_t> positions = [&] {
    std::vector<int64_t> p(out.ids);
    for (int64_t& id : p) id -= 1000;
    return p;
  }();
  const BatchStats stats =
      describe_batches(lengths, positions.data(), static_cast<int64_t>(positions.size()),
                       out.offsets.data(), static_cast<int64_t>(out.offsets.size()),
                       options.cost, options.pad_multiple);
  for (size_t b = 0; b < out.costs.size(); ++b) {
    if (stats.costs[b] != out.costs[b]) fail(iteration, "a streamed batch's cost is wrong");
    if (stats.sizes[b] > 1 && stats.costs[b] > options.budget) fail(iteration, "stream over budget");
    if (options.max_batch_size > 0 && stats.sizes[b] > options.max_batch_size)
      fail(iteration, "stream over max_batch_size");
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 3000;
  SplitMix64 rng(20261122);
  int refused = 0;
  for (int it = 0; it < iterations; ++it) {
    const int fields = 1 + static_cast<int>(rng.below(2));
    const bool bad = rng.below(4) == 0;  // a quarter of the runs get one bad value
    const int64_t n = bad && rng.below(6) == 0 ? 0 : pick<int64_t>(rng, {1, 2, 3, 17, 200, 1000});
    const int64_t longest = pick<int64_t>(rng, {0, 1, 5, 60, 2000, kMaxLength});
    std::vector<int64_t> data(static_cast<size_t>(n * fields));
    for (int64_t& v : data) v = static_cast<int64_t>(rng.below(static_cast<uint64_t>(longest) + 1));
    if (n > 0 && bad && rng.below(6) == 0) data[rng.below(data.size())] = -1;
    if (n > 0 && bad && rng.below(6) == 0) data[rng.below(data.size())] = kMaxLength + 1;
    LengthsView lengths{data.data(), n, fields};

    PlanOptions options;
    options.cost = CostModel{pick<double>(rng, {0.0, 1.0}), pick<double>(rng, {0.0, 2.0}),
                             bad && rng.below(6) == 0 ? 0.0 : pick<double>(rng, {1.0, 0.25})};
    options.pad_multiple = bad && rng.below(6) == 0 ? 0 : pick<int64_t>(rng, {1, 1, 8, kMaxLength});
    const double scale = pick<double>(rng, {1.0, 4.0, 100.0, 1e9});
    const int64_t padded = options.pad_multiple > 0 ? padded_length(longest, options.pad_multiple) : longest;
    const double longest_cost =
        batch_cost(options.cost, fields == 2, 1, padded, fields == 2 ? padded : 0);
    options.budget = bad && rng.below(6) == 0 ? pick<double>(rng, {0.0, -1.0, 1.0})
                                              : pick<double>(rng, {longest_cost * scale, 1e300});
    options.max_batch_size = bad && rng.below(6) == 0 ? -1 : pick<int64_t>(rng, {0, 0, 1, 5});
    options.oversize = pick(rng, {OversizePolicy::kError, OversizePolicy::kAlone, OversizePolicy::kSkip});
    options.shuffle = rng.below(2) == 1;
    options.seed = rng.next();
    options.epoch = rng.below(5);
    options.padding_noise = options.shuffle ? pick<double>(rng, {0.0, 0.0, 0.3, 0.99}) : 0.0;
    options.batch_overhead = pick<double>(rng, {0.0, 0.15, 0.15, 10.0});
    options.num_replicas = pick<int64_t>(rng, {1, 1, 2, 3, 8});
    options.drop_last = rng.below(3) == 0;
    try {
      const BatchPlan plan = plan_batches(lengths, options);
      check_plan(it, lengths, options, plan);
      check_epoch(it, lengths, options, rng);
      check_stream(it, lengths, options, rng);
      if (!plan.indices.empty()) {  // a corrupted index must be refused, never read
        std::vector<int64_t> bad = plan.indices;
        bad[rng.below(bad.size())] = pick<int64_t>(rng, {-1, n, n + 1000});
        try {
          describe_batches(lengths, bad.data(), static_cast<int64_t>(bad.size()),
                           plan.offsets.data(), static_cast<int64_t>(plan.offsets.size()),
                           options.cost, options.pad_multiple);
          fail(it, "describe_batches accepted an index outside the data");
        } catch (const std::invalid_argument&) {
        }
      }
    } catch (const std::invalid_argument&) {
      ++refused;  // bad input, refused with a message
    }
  }
  std::printf("%d iterations, %d refused as bad input, %d failures\n", iterations, refused,
              failures);
  return failures == 0 ? 0 : 1;
}
