#include "batch_plan.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "batch_span.hpp"
#include "hilbert.hpp"
#include "radix_sort.hpp"

namespace dynbatch {
namespace {

double cost_alone(const LengthsView& lengths, int64_t i, const PlanOptions& options) {
  return batch_cost(options.cost, lengths.pairs(), 1,
                    padded_length(lengths.first(i), options.pad_multiple),
                    padded_length(lengths.second(i), options.pad_multiple));
}

std::string describe_sample(const LengthsView& lengths, int64_t i) {
  std::ostringstream out;
  out << "sample " << i << " (length";
  if (lengths.pairs())
    out << "s " << lengths.first(i) << ", " << lengths.second(i) << ")";
  else
    out << " " << lengths.first(i) << ")";
  return out.str();
}

// A length perturbed by multiplicative noise, so that similar lengths mix across epochs.
uint64_t noisy_length(int64_t length, double noise, SplitMix64& rng) {
  if (noise <= 0.0) return static_cast<uint64_t>(length);
  const double factor = 1.0 + noise * (2.0 * rng.uniform() - 1.0);
  return static_cast<uint64_t>(std::llround(static_cast<double>(length) * factor));
}

// Sort keys of the samples of `order`: lengths for single texts (uint32: noise keeps them below
// 2 * kMaxLength = 2^31), positions on a Hilbert curve for pairs.
std::vector<uint32_t> single_keys(const LengthsView& lengths, const std::vector<int64_t>& order,
                                  const PlanOptions& options) {
  SplitMix64 rng(mix_seed(options.seed, options.epoch, kNoiseStream));
  std::vector<uint32_t> keys(order.size());
  for (size_t k = 0; k < order.size(); ++k)
    keys[k] = static_cast<uint32_t>(
        noisy_length(lengths.first(order[k]), options.padding_noise, rng));
  return keys;
}

std::vector<uint64_t> pair_keys(const LengthsView& lengths, const std::vector<int64_t>& order,
                                const PlanOptions& options) {
  SplitMix64 rng(mix_seed(options.seed, options.epoch, kNoiseStream));
  std::vector<uint64_t> keys(order.size()), second(order.size());
  uint64_t largest = 1;
  for (size_t k = 0; k < order.size(); ++k) {
    keys[k] = noisy_length(lengths.first(order[k]), options.padding_noise, rng);
    second[k] = noisy_length(lengths.second(order[k]), options.padding_noise, rng);
    largest = std::max({largest, keys[k], second[k]});
  }
  int bits = 1;
  while ((largest >> bits) != 0) ++bits;
  for (size_t k = 0; k < order.size(); ++k)
    keys[k] = hilbert_index(static_cast<uint32_t>(keys[k]), static_cast<uint32_t>(second[k]),
                            bits);
  return keys;
}

// Sorts `order` by `keys` (aligned with it) and returns the sorted keys. Equal keys come out of
// the stable sort in index order; with shuffling, each run of them is shuffled so that which
// samples share a batch changes from epoch to epoch.
template <typename Key>
std::vector<Key> sort_by_keys(std::vector<Key> keys, std::vector<int64_t>& order,
                              std::vector<int64_t>& spare, const PlanOptions& options) {
  radix_sort_pairs(keys, order, spare);
  if (!options.shuffle) return keys;
  SplitMix64 rng(mix_seed(options.seed, options.epoch, kTieStream));
  const int64_t n = static_cast<int64_t>(order.size());
  for (int64_t begin = 0; begin < n;) {
    int64_t end = begin + 1;
    while (end < n && keys[end] == keys[begin]) ++end;
    shuffle_range(order.data() + begin, end - begin, rng);
    begin = end;
  }
  return keys;
}

}  // namespace

// Without noise the sorted keys of single texts are their exact lengths, which spares a gather
// over the whole (possibly huge) input.
SortedLengths sort_samples(const LengthsView& lengths, std::vector<int64_t> order,
                           std::vector<int64_t>& spare, const PlanOptions& options) {
  if (lengths.pairs()) {
    sort_by_keys(pair_keys(lengths, order, options), order, spare, options);
    return SortedLengths(lengths, std::move(order), options.pad_multiple);
  }
  const std::vector<uint32_t> keys =
      sort_by_keys(single_keys(lengths, order, options), order, spare, options);
  if (options.padding_noise > 0.0) return SortedLengths(lengths, std::move(order), options.pad_multiple);
  return SortedLengths(keys, std::move(order), options.pad_multiple);
}

std::vector<int64_t> admit_samples(const LengthsView& lengths, const PlanOptions& options,
                                   std::vector<int64_t>& skipped) {
  std::vector<int64_t> kept;
  kept.reserve(static_cast<size_t>(lengths.num_samples));
  int64_t first_oversize = -1, num_oversize = 0;
  for (int64_t i = 0; i < lengths.num_samples; ++i) {
    if (options.oversize == OversizePolicy::kAlone || cost_alone(lengths, i, options) <= options.budget) {
      kept.push_back(i);
      continue;
    }
    if (first_oversize < 0) first_oversize = i;
    ++num_oversize;
    if (options.oversize == OversizePolicy::kSkip) skipped.push_back(i);
  }
  if (num_oversize > 0 && options.oversize == OversizePolicy::kError)
    throw std::invalid_argument(oversize_message(describe_sample(lengths, first_oversize),
                                                 cost_alone(lengths, first_oversize, options),
                                                 options.budget, num_oversize));
  if (kept.empty())
    throw std::invalid_argument("every sample exceeds the budget alone, so nothing is left to "
                                "batch; raise the budget");
  return kept;
}

std::string oversize_message(const std::string& sample, double cost_alone, double budget,
                             int64_t how_many) {
  std::ostringstream out;
  out << sample << " costs " << cost_alone << " alone, more than the budget " << budget;
  if (how_many > 0) out << " (" << how_many << " sample" << (how_many > 1 ? "s exceed" : " exceeds") << " it)";
  out << "; raise the budget, or pass oversize='alone' to give such samples a batch of their own "
         "or oversize='skip' to leave them out";
  return out.str();
}

void validate_options(const PlanOptions& options) {
  auto fail = [](const std::string& message) { throw std::invalid_argument(message); };
  if (!std::isfinite(options.budget) || options.budget <= 0.0) {
    std::ostringstream out;
    out << "budget must be a positive finite number, got " << options.budget;
    fail(out.str());
  }
  const CostModel& c = options.cost;
  for (double v : {c.constant, c.linear, c.quadratic})
    if (!std::isfinite(v) || v < 0.0)
      fail("cost model coefficients must be finite and non-negative");
  if (c.constant == 0.0 && c.linear == 0.0 && c.quadratic == 0.0)
    fail("cost model is all zeros: every batch would be free; set const, linear or quadratic");
  if (options.pad_multiple < 1 || options.pad_multiple > kMaxLength)
    fail("pad_multiple must be in [1, " + std::to_string(kMaxLength) + "], got " +
         std::to_string(options.pad_multiple));
  if (options.max_batch_size < 0)
    fail("max_batch_size must be positive, got " + std::to_string(options.max_batch_size));
  if (!(options.padding_noise >= 0.0 && options.padding_noise < 1.0))
    fail("padding_noise must be in [0, 1)");
  if (!std::isfinite(options.batch_overhead) || options.batch_overhead < 0.0)
    fail("batch_overhead must be a finite number >= 0");
  if (options.padding_noise > 0.0 && !options.shuffle)
    fail("padding_noise adds randomness, which shuffle=False turns off; set one or the other");
  if (options.num_replicas < 1)
    fail("num_replicas must be at least 1, got " + std::to_string(options.num_replicas));
}

BatchPlan plan_batches(const LengthsView& lengths, const PlanOptions& options) {
  validate_lengths(lengths);
  validate_options(options);
  BatchPlan plan;
  std::vector<int64_t> order = admit_samples(lengths, options, plan.skipped);

  std::vector<int64_t> spare;  // the sort's scratch, reused for the plan's indices
  const SortedLengths sorted = sort_samples(lengths, std::move(order), spare, options);
  SplitMix64 round_rng(mix_seed(options.seed, options.epoch, kRoundStream));
  plan.indices = std::move(spare);
  arrange_rounds(sorted, partition_sorted(sorted, options), options, round_rng, plan);
  return plan;
}

}  // namespace dynbatch
