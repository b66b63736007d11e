// Randomised stress of the pure C++ batching core, built with AddressSanitizer and UBSan by
// tests/test_core_sanitizers.py: on random inputs (edge cases and bad values included) a plan
// must either be refused with std::invalid_argument or cover every sample exactly once (kept,
// skipped or dropped), keep every multi-sample batch within budget and give the replicas equal
// counts; and describe_batches must refuse indices outside the data instead of reading them.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <vector>

#include "core/batch_plan.hpp"
#include "core/batch_stats.hpp"
#include "core/random.hpp"

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
