#include "stream_batcher.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

#include "random.hpp"

namespace dynbatch {
namespace {

// How many of `count` samples the whole steps of `target` samples hold, as random and pooled
// steps are cut: step j closes at sample ceil(j * target), so the last whole one is
// j = floor(count / target).
int64_t samples_in_whole_steps(int64_t count, double target) {
  const double steps = std::floor(static_cast<double>(count) / target);
  return std::min(count, static_cast<int64_t>(std::ceil(steps * target)));
}

std::string describe(int64_t id, const int64_t* lengths, int num_fields) {
  std::ostringstream out;
  out << "sample " << id << " (length" << (num_fields == 2 ? "s " : " ") << lengths[0];
  if (num_fields == 2) out << ", " << lengths[1];
  out << ")";
  return out.str();
}

}  // namespace

void validate_stream_options(int num_fields, const StreamOptions& options) {
  if (num_fields != 1 && num_fields != 2)
    throw std::invalid_argument("a stream holds single texts (1 length each) or pairs (2), not " +
                                std::to_string(num_fields));
  validate_options(options.plan);
  if (options.buffer_size < 1)
    throw std::invalid_argument("buffer_size must be at least 1, got " +
                                std::to_string(options.buffer_size));
  if (!(options.keep_below >= 0.0 && options.keep_below <= 1.0))
    throw std::invalid_argument("keep_below must be in [0, 1]");
  if (options.plan.num_replicas != 1 || options.plan.drop_last)
    throw std::invalid_argument("a stream is split between its readers before it is batched: "
                                "num_replicas must be 1 and drop_last false");
  if (!options.steps) return;
  const EpochStepOptions& steps = *options.steps;
  validate_step_options(options.plan, steps);
  if (steps.composition != Composition::kSorted && steps.unit != StepUnit::kSamples)
    throw std::invalid_argument(
        "a stream's random or pooled steps count samples: a fill's whole steps of tokens depend "
        "on its order, so use step unit 'samples' (or composition 'sorted')");
  if (steps.unit == StepUnit::kSamples && static_cast<double>(options.buffer_size) < steps.target)
    throw std::invalid_argument("buffer_size (" + std::to_string(options.buffer_size) +
                                ") must hold at least one step of " +
                                std::to_string(steps.target) + " samples");
}

StreamBatcher::StreamBatcher(int num_fields, const StreamOptions& options)
    : num_fields_(num_fields), options_(options) {
  validate_stream_options(num_fields, options);
}

void StreamBatcher::push(const int64_t* ids, const int64_t* lengths, int64_t count) {
  // The whole chunk is checked before any of it is taken, so that a refused chunk leaves the
  // batcher as it was: a caller who catches the error loses nothing it did not feed.
  const PlanOptions& plan = options_.plan;
  std::vector<uint8_t> oversize(static_cast<size_t>(count), 0);
  for (int64_t k = 0; k < count; ++k) {
    const int64_t* sample = lengths + k * num_fields_;
    int64_t padded[2] = {0, 0};
    for (int f = 0; f < num_fields_; ++f) {
      if (sample[f] < 0 || sample[f] > kMaxLength)
        throw std::invalid_argument(
            describe(ids[k], sample, num_fields_) +
            (sample[f] < 0 ? ": lengths must be non-negative"
                           : ": lengths above " + std::to_string(kMaxLength) + " are not supported"));
      padded[f] = padded_length(sample[f], plan.pad_multiple);
    }
    const double alone = batch_cost(plan.cost, num_fields_ == 2, 1, padded[0], padded[1]);
    if (alone <= plan.budget || plan.oversize == OversizePolicy::kAlone) continue;
    if (plan.oversize == OversizePolicy::kError)
      throw std::invalid_argument(
          oversize_message(describe(ids[k], sample, num_fields_), alone, plan.budget));
    oversize[k] = 1;
  }
  for (int64_t k = 0; k < count; ++k) {
    if (oversize[k]) {
      out_.skipped.push_back(ids[k]);
      continue;
    }
    const int64_t* sample = lengths + k * num_fields_;
    state_.ids.push_back(ids[k]);
    state_.lengths.insert(state_.lengths.end(), sample, sample + num_fields_);
    state_.waited.push_back(0);
    // A fill that keeps every sample marks them all as waited, so the next one empties it.
    while (buffered() >= options_.buffer_size) plan_buffer(false);
  }
}

void StreamBatcher::finish() {
  if (buffered() > 0) plan_buffer(true);
}

StreamBatches StreamBatcher::take() {
  StreamBatches taken = std::move(out_);
  out_ = StreamBatches{};
  return taken;
}

PlanOptions StreamBatcher::fill_options() const {
  PlanOptions plan = options_.plan;
  plan.oversize = OversizePolicy::kAlone;  // push() applied the policy already
  plan.epoch = mix_seed(options_.plan.epoch, state_.fills, kFillStream);
  return plan;
}

void StreamBatcher::emit_batch(const BatchPlan& plan, int64_t b, const int64_t* positions) {
  for (int64_t k = plan.offsets[b]; k < plan.offsets[b + 1]; ++k) {
    const int64_t i = positions ? positions[plan.indices[k]] : plan.indices[k];
    out_.ids.push_back(state_.ids[i]);
  }
  out_.offsets.push_back(static_cast<int64_t>(out_.ids.size()));
  out_.costs.push_back(plan.costs[b]);
}

void StreamBatcher::plan_buffer(bool final) {
  if (options_.steps) return plan_buffer_in_steps(final);
  const PlanOptions plan = fill_options();
  const LengthsView view{state_.lengths.data(), buffered(), num_fields_};
  const BatchPlan batches = plan_batches(view, plan);

  const double min_cost = options_.keep_below * plan.budget;
  const double min_size = options_.keep_below * static_cast<double>(plan.max_batch_size);
  StreamState kept;
  kept.fills = state_.fills + 1;
  for (int64_t b = 0; b < batches.num_batches(); ++b) {
    const int64_t begin = batches.offsets[b], end = batches.offsets[b + 1];
    bool emit = final || batches.costs[b] >= min_cost ||
                (plan.max_batch_size > 0 && static_cast<double>(end - begin) >= min_size);
    for (int64_t k = begin; k < end && !emit; ++k) emit = state_.waited[batches.indices[k]] != 0;
    if (emit) {
      emit_batch(batches, b);
      continue;
    }
    for (int64_t k = begin; k < end; ++k) keep(kept, batches.indices[k]);
  }
  state_ = std::move(kept);
}

void StreamBatcher::plan_buffer_in_steps(bool final) {
  const EpochStepOptions& steps = *options_.steps;
  const PlanOptions options = fill_options();
  // The samples planned now, in the fill's random order: all of them for sorted steps (dealt in
  // steps of equal weight) and at the end of the stream; else those of the order's whole random
  // or pooled steps, the rest (fewer than a step) waiting for the next fill.
  std::vector<int64_t> planned = epoch_order(buffered(), options);
  if (!final && steps.composition != Composition::kSorted)
    planned.resize(static_cast<size_t>(samples_in_whole_steps(buffered(), steps.target)));
  std::vector<int64_t> lengths;
  lengths.reserve(planned.size() * num_fields_);
  for (int64_t i : planned)
    lengths.insert(lengths.end(), state_.lengths.begin() + i * num_fields_,
                   state_.lengths.begin() + (i + 1) * num_fields_);
  const LengthsView view{lengths.data(), static_cast<int64_t>(planned.size()), num_fields_};
  const EpochPlan plan = plan_epoch(view, options, steps);
  for (size_t s = 0; s + 1 < plan.step_offsets.size(); ++s) {
    for (int64_t b = plan.step_offsets[s]; b < plan.step_offsets[s + 1]; ++b)
      emit_batch(plan.batches, b, planned.data());
    out_.step_offsets.push_back(static_cast<int64_t>(out_.costs.size()));
  }
  std::vector<uint8_t> emitted(static_cast<size_t>(buffered()), 0);
  for (int64_t i : planned) emitted[i] = 1;
  StreamState kept;
  kept.fills = state_.fills + 1;
  for (int64_t i = 0; i < buffered(); ++i)
    if (!emitted[i]) keep(kept, i);
  state_ = std::move(kept);
}

void StreamBatcher::keep(StreamState& kept, int64_t i) const {
  kept.ids.push_back(state_.ids[i]);
  kept.lengths.insert(kept.lengths.end(), state_.lengths.begin() + i * num_fields_,
                      state_.lengths.begin() + (i + 1) * num_fields_);
  kept.waited.push_back(1);
}

void StreamBatcher::restore(StreamState state) {
  const size_t n = state.ids.size();
  if (state.lengths.size() != n * static_cast<size_t>(num_fields_) || state.waited.size() != n)
    throw std::invalid_argument("a stream state's ids, lengths and waited flags disagree in size");
  if (static_cast<int64_t>(n) >= options_.buffer_size)
    throw std::invalid_argument("a stream state holds " + std::to_string(n) +
                                " samples, more than this batcher's buffer_size allows");
  for (int64_t value : state.lengths)
    if (value < 0 || value > kMaxLength)
      throw std::invalid_argument("a stream state holds an invalid length");
  state_ = std::move(state);
}

}  // namespace dynbatch
