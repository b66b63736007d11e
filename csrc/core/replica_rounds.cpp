// Lays batches out in rounds: one batch per replica per round, the same number of rounds on every
// replica, and batches of similar cost side by side so that no replica waits on another.
#include <algorithm>
#include <numeric>
#include <queue>
#include <stdexcept>
#include <string>

#include "batch_span.hpp"

namespace dynbatch {
namespace {

// Splits the largest batches in two until `splits` more batches exist. Halving a batch never
// raises its cost per sample, so the halves stay within budget.
void split_largest(const SortedLengths& sorted, std::vector<BatchSpan>& spans, int64_t splits,
                   const PlanOptions& options) {
  auto smaller = [&](size_t a, size_t b) {
    return spans[a].size() != spans[b].size() ? spans[a].size() < spans[b].size() : a > b;
  };
  std::priority_queue<size_t, std::vector<size_t>, decltype(smaller)> largest(smaller);
  for (size_t b = 0; b < spans.size(); ++b) largest.push(b);
  for (int64_t done = 0; done < splits; ++done) {
    const size_t b = largest.top();
    if (spans[b].size() < 2)
      throw std::invalid_argument(
          "cannot give each of the " + std::to_string(options.num_replicas) +
          " replicas the same number of batches: the " + std::to_string(sorted.size()) +
          " samples are too few to split further; pass drop_last=True or use fewer replicas");
    largest.pop();
    const BatchSpan whole = spans[b];
    const int64_t middle = whole.begin + whole.size() / 2;
    spans[b] = BatchSpan{whole.begin, middle,
                         span_cost(sorted, whole.begin, middle, options)};
    spans.push_back(BatchSpan{middle, whole.end,
                              span_cost(sorted, middle, whole.end, options)});
    largest.push(b);
    largest.push(spans.size() - 1);
  }
}

// Drops the `count` batches with the fewest samples, recording what they held.
void drop_smallest(const std::vector<int64_t>& order, std::vector<BatchSpan>& spans,
                   int64_t count, std::vector<int64_t>& dropped) {
  std::vector<size_t> by_size(spans.size());
  std::iota(by_size.begin(), by_size.end(), 0);
  std::stable_sort(by_size.begin(), by_size.end(),
                   [&](size_t a, size_t b) { return spans[a].size() < spans[b].size(); });
  std::vector<bool> drop(spans.size(), false);
  for (int64_t k = 0; k < count; ++k) drop[by_size[k]] = true;
  std::vector<BatchSpan> kept;
  for (size_t b = 0; b < spans.size(); ++b) {
    if (!drop[b]) {
      kept.push_back(spans[b]);
      continue;
    }
    dropped.insert(dropped.end(), order.begin() + spans[b].begin, order.begin() + spans[b].end);
  }
  std::sort(dropped.begin(), dropped.end());
  spans.swap(kept);
}

}  // namespace

void arrange_rounds(const SortedLengths& sorted, std::vector<BatchSpan> spans,
                    const PlanOptions& options, SplitMix64& rng, BatchPlan& plan) {
  const std::vector<int64_t>& order = sorted.order;
  const int64_t replicas = options.num_replicas;
  const int64_t count = static_cast<int64_t>(spans.size());
  const int64_t remainder = count % replicas;
  // The fewest batches that are a multiple of the replicas and at least min_batches.
  const int64_t wanted = (std::max(count, options.min_batches) + replicas - 1) / replicas * replicas;
  if (remainder != 0 && options.drop_last)
    drop_smallest(order, spans, remainder, plan.dropped);
  else if (wanted > count)
    split_largest(sorted, spans, wanted - count, options);
  if (spans.empty())
    throw std::invalid_argument("drop_last would drop every batch: there are fewer batches than "
                                "the " + std::to_string(replicas) + " replicas");

  // Batches of a round are neighbours in cost order, so each replica does similar work.
  std::vector<int64_t> by_cost(spans.size());
  std::iota(by_cost.begin(), by_cost.end(), 0);
  if (replicas > 1)
    std::stable_sort(by_cost.begin(), by_cost.end(),
                     [&](int64_t a, int64_t b) { return spans[a].cost < spans[b].cost; });
  const int64_t num_rounds = static_cast<int64_t>(spans.size()) / replicas;
  std::vector<int64_t> rounds(num_rounds);
  std::iota(rounds.begin(), rounds.end(), 0);
  if (options.shuffle) {
    shuffle_range(rounds.data(), num_rounds, rng);
    // Which replica gets the round's cheapest batch should not depend on its rank.
    for (int64_t s = 0; s < num_rounds; ++s)
      shuffle_range(by_cost.data() + s * replicas, replicas, rng);
  }

  plan.indices.clear();  // keeps its capacity: no fresh pages to fault in
  plan.indices.reserve(order.size());
  plan.offsets.assign(1, 0);
  for (int64_t round : rounds) {
    for (int64_t r = 0; r < replicas; ++r) {
      const BatchSpan& span = spans[by_cost[round * replicas + r]];
      plan.indices.insert(plan.indices.end(), order.begin() + span.begin,
                          order.begin() + span.end);
      plan.offsets.push_back(static_cast<int64_t>(plan.indices.size()));
      plan.costs.push_back(span.cost);
    }
  }
}

}  // namespace dynbatch
