// Cutting the length-sorted order into batches under the budget.
//
// Greedy (grow each batch until the next sample breaks the budget) gives the fewest batches, but
// it cuts wherever the budget runs out, often right after a batch has taken in a few samples
// much longer than the rest; on pairs sorted along a Hilbert curve that costs 5-12% of all
// tokens in padding. The dynamic programme below chooses where to cut: it minimises
//     padding tokens + lambda * number of batches
// (the same as padded tokens + lambda * batches: the real tokens are equal for every cut),
// where lambda = batch_overhead * (real tokens per greedy batch), so a batch is added only when
// it saves more padding than that. Candidate starts for a batch ending at k are the start of
// every run of equal lengths inside the feasible window, plus the earliest feasible start (the
// fullest batch); within a run of equal samples an inner cut buys nothing, so the search is
// near-exhaustive while costing O(N * runs per window) instead of O(N * batch size).
#include <algorithm>
#include <limits>
#include <utility>

#include "batch_span.hpp"

namespace dynbatch {

SortedLengths::SortedLengths(const LengthsView& lengths, std::vector<int64_t> sorted_order,
                             int64_t pad_multiple)
    : order(std::move(sorted_order)), pairs(lengths.pairs()) {
  const int64_t n = size();
  first.resize(n);
  if (pairs) second.resize(n);
  for (int64_t k = 0; k < n; ++k) {
    const int64_t i = order[k];
    first[k] = static_cast<uint32_t>(padded_length(lengths.first(i), pad_multiple));
    if (pairs) second[k] = static_cast<uint32_t>(padded_length(lengths.second(i), pad_multiple));
    real_tokens += lengths.first(i) + lengths.second(i);
  }
}

SortedLengths::SortedLengths(const std::vector<uint32_t>& sorted_lengths,
                             std::vector<int64_t> sorted_order, int64_t pad_multiple)
    : order(std::move(sorted_order)), pairs(false) {
  first.resize(sorted_lengths.size());
  for (size_t k = 0; k < sorted_lengths.size(); ++k) {
    first[k] = static_cast<uint32_t>(padded_length(sorted_lengths[k], pad_multiple));
    real_tokens += sorted_lengths[k];
  }
}

SortedLengths::SortedLengths(std::vector<uint32_t> padded_first,
                             std::vector<uint32_t> padded_second, int64_t total_real_tokens)
    : first(std::move(padded_first)),
      second(std::move(padded_second)),
      real_tokens(total_real_tokens),
      pairs(!second.empty()) {
  order.resize(first.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = static_cast<int64_t>(k);
}

double span_cost(const SortedLengths& sorted, int64_t begin, int64_t end,
                 const PlanOptions& options) {
  int64_t first = 0, second = 0;
  for (int64_t k = begin; k < end; ++k) {
    first = std::max<int64_t>(first, sorted.first[k]);
    second = std::max(second, sorted.second_at(k));
  }
  return batch_cost(options.cost, sorted.pairs, end - begin, first, second);
}

std::vector<BatchSpan> partition_greedy(const SortedLengths& sorted, const PlanOptions& options) {
  std::vector<BatchSpan> spans;
  const int64_t n = sorted.size();
  const int64_t size_cap = options.max_batch_size > 0 ? options.max_batch_size : n;
  BatchSpan current;
  int64_t first = 0, second = 0;  // padded maxima of the current batch
  for (int64_t k = 0; k < n; ++k) {
    int64_t grown_first = std::max<int64_t>(first, sorted.first[k]);
    int64_t grown_second = std::max(second, sorted.second_at(k));
    double grown_cost =
        batch_cost(options.cost, sorted.pairs, current.size() + 1, grown_first, grown_second);
    const bool fits = grown_cost <= options.budget && current.size() + 1 <= size_cap;
    // A sample always opens a batch, even one over budget alone (oversize = alone): the
    // oversize policy has already removed such samples otherwise.
    if (current.size() > 0 && !fits) {
      spans.push_back(current);
      current = BatchSpan{k, k, 0.0};
      grown_first = sorted.first[k];
      grown_second = sorted.second_at(k);
      grown_cost = batch_cost(options.cost, sorted.pairs, 1, grown_first, grown_second);
    }
    current.end = k + 1;
    current.cost = grown_cost;
    first = grown_first;
    second = grown_second;
  }
  if (current.size() > 0) spans.push_back(current);
  return spans;
}

namespace {

// Largest value pushed at a position >= the last drop_before: a monotonic queue, O(1) amortised.
// Positions only grow, so a vector with a moving head serves as the deque (and is contiguous).
class SlidingMax {
 public:
  void push(int64_t position, int64_t value) {
    while (entries_.size() > head_ && entries_.back().second <= value) entries_.pop_back();
    entries_.emplace_back(position, value);
  }
  void drop_before(int64_t begin) {
    while (entries_[head_].first < begin) ++head_;
    if (head_ > 4096 && head_ * 2 > entries_.size()) {  // reclaim the consumed prefix
      entries_.erase(entries_.begin(), entries_.begin() + static_cast<int64_t>(head_));
      head_ = 0;
    }
  }
  int64_t max() const { return entries_[head_].second; }

 private:
  std::vector<std::pair<int64_t, int64_t>> entries_;
  size_t head_ = 0;
};

// Bounds the candidates per batch end on pathological inputs (thousands of distinct lengths
// inside one batch); the fullest batch is always a candidate, so plans stay within budget.
constexpr int kMaxRunCandidates = 256;

// A plan pads fewer than 2^95 tokens (at most 2^63 samples, each padded by less than 2^32), so a
// batch penalty of 1e200 already outweighs any padding a cut could save, and 2^63 of them still
// sum to a finite double.
constexpr double kMaxLambda = 1e200;

}  // namespace

std::vector<BatchSpan> partition_sorted(const SortedLengths& sorted, const PlanOptions& options) {
  const int64_t n = sorted.size();
  std::vector<int64_t> run_starts;  // first position of every run of equal padded lengths
  for (int64_t k = 0; k < n; ++k)
    if (k == 0 || sorted.first[k] != sorted.first[k - 1] ||
        sorted.second_at(k) != sorted.second_at(k - 1))
      run_starts.push_back(k);

  const double greedy_batches = static_cast<double>(partition_greedy(sorted, options).size());
  // The tiny constant makes ties go to fewer batches even with batch_overhead = 0. Past
  // kMaxLambda (more than any cut's padding, so the same plan as any larger value) lambda is
  // capped, so that sums of it stay finite whatever batch_overhead is.
  const double lambda = std::min(
      options.batch_overhead * static_cast<double>(sorted.real_tokens) / greedy_batches + 1e-6,
      kMaxLambda);
  const int64_t size_cap = options.max_batch_size > 0 ? options.max_batch_size : n;

  std::vector<double> best(n + 1, std::numeric_limits<double>::infinity());
  std::vector<int64_t> start_of(n + 1, -1);  // the best batch ending at k starts at start_of[k]
  best[0] = 0.0;
  auto consider = [&](int64_t j, int64_t k, int64_t max_first, int64_t max_second) {
    const double padded = static_cast<double>(k - j) * static_cast<double>(max_first + max_second);
    const double value = best[j] + padded + lambda;
    // The first candidate of every k is a feasible batch (the fullest), and always taken, so the
    // cut never falls back to start_of's initial 0 (one batch of everything).
    if (value < best[k] || start_of[k] < 0) {
      best[k] = value;
      start_of[k] = j;
    }
  };

  SlidingMax window_first, window_second;
  int64_t earliest = 0;  // earliest start of a feasible batch ending at k (never decreases)
  size_t current_run = 0;  // the run holding position k - 1
  for (int64_t k = 1; k <= n; ++k) {
    window_first.push(k - 1, sorted.first[k - 1]);
    window_second.push(k - 1, sorted.second_at(k - 1));
    if (current_run + 1 < run_starts.size() && run_starts[current_run + 1] == k - 1) ++current_run;
    // A lone sample is always feasible (oversize = alone); longer batches must fit.
    while (k - earliest > 1 &&
           (k - earliest > size_cap ||
            batch_cost(options.cost, sorted.pairs, k - earliest, window_first.max(),
                       window_second.max()) > options.budget)) {
      ++earliest;
      window_first.drop_before(earliest);
      window_second.drop_before(earliest);
    }
    consider(earliest, k, window_first.max(), window_second.max());  // the fullest batch first
    int64_t max_first = 0, max_second = 0;
    for (size_t run = current_run, c = 0; c < kMaxRunCandidates; --run, ++c) {
      const int64_t j = run_starts[run];
      if (j <= earliest) break;
      max_first = std::max<int64_t>(max_first, sorted.first[j]);
      max_second = std::max(max_second, sorted.second_at(j));
      consider(j, k, max_first, max_second);
    }
  }

  std::vector<BatchSpan> spans;
  for (int64_t k = n; k > 0; k = start_of[k])
    spans.push_back(BatchSpan{start_of[k], k, span_cost(sorted, start_of[k], k, options)});
  std::reverse(spans.begin(), spans.end());
  return spans;
}

}  // namespace dynbatch
