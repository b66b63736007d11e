// Budgeted batches from a stream whose lengths are not known up front.
//
// Samples arrive in chunks and wait in a buffer of at most `buffer_size` samples. Each time the
// buffer is full it is planned as a whole, exactly as plan_batches plans a data set (sorted by
// length, or along the Hilbert curve for pairs, and cut with the same dynamic programme), so the
// plan's batches are the length bins, fitted to what the buffer holds rather than fixed from the
// stream's start. Every batch of that plan is emitted except the underfull ones (under
// `keep_below` of the budget and of max_batch_size): their samples wait for the next fill, to
// meet more samples of their length, but only once, so that no sample waits long. At the end of
// the stream everything that waits is planned and emitted.
//
// Memory is bounded by the buffer, whatever the stream's length. Every sample admitted is in
// exactly one emitted batch; the batches of one fill come out in random order (of the seed, the
// epoch and the fill's number), so the same stream and settings give the same batches.
//
// In steps (options.steps set), each fill is planned as plan_epoch plans an epoch, so the buffer
// is the epoch: with "pooled" each step holds a random mix of the fill's lengths (the fill is the
// pool, or is cut into pools of pool_steps steps), with "random" each step is a random set of
// the fill's samples, with "sorted" the fill is sorted and its micro-batches dealt into steps.
// Whole steps are emitted. Nothing waits but, with random or pooled steps (which count samples
// here), the fill's samples past its last whole step in its random order: fewer than a step,
// they join the next fill (at the end of the stream, a smaller step of their own).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "batch_plan.hpp"
#include "epoch_plan.hpp"

namespace dynbatch {

struct StreamOptions {
  PlanOptions plan;  // num_replicas 1: a stream is split between its readers before batching
  int64_t buffer_size = 10000;
  double keep_below = 0.5;  // an emitted batch fills at least this share of budget or size
  std::optional<EpochStepOptions> steps;  // set: emit whole optimizer steps (see above)
};

// Emitted batches: batch b holds ids[offsets[b] : offsets[b + 1]] and costs costs[b].
struct StreamBatches {
  std::vector<int64_t> ids;
  std::vector<int64_t> offsets{0};
  std::vector<double> costs;
  std::vector<int64_t> skipped;  // ids left out as oversize (oversize = skip)
  std::vector<int64_t> step_offsets{0};  // in steps: step s holds batches [s] .. [s + 1]
};

// What a batcher holds between two pushes: enough to continue exactly where it stopped.
struct StreamState {
  std::vector<int64_t> ids;
  std::vector<int64_t> lengths;  // num_fields per sample, row-major
  std::vector<uint8_t> waited;   // 1: the sample already waited for one fill
  uint64_t fills = 0;
};

class StreamBatcher {
 public:
  // Throws std::invalid_argument on bad options.
  StreamBatcher(int num_fields, const StreamOptions& options);

  // Takes `count` samples: their ids (any int64 the caller uses to find them again) and lengths
  // (num_fields per sample). Plans the buffer whenever it fills. A negative or too long length,
  // or a sample over the budget alone with oversize = error, throws std::invalid_argument naming
  // the sample's id, and nothing of the chunk is taken.
  void push(const int64_t* ids, const int64_t* lengths, int64_t count);

  // Plans and emits everything that waits (the stream has ended).
  void finish();

  // The batches emitted since the last take().
  StreamBatches take();

  int64_t buffered() const { return static_cast<int64_t>(state_.ids.size()); }
  const StreamState& state() const { return state_; }
  // Continues from a state() of a batcher with the same settings. Throws on a malformed state.
  void restore(StreamState state);

 private:
  PlanOptions fill_options() const;
  void plan_buffer(bool final);
  void plan_buffer_in_steps(bool final);
  // Batch b of a plan of the buffer (or, with `positions`, of the buffer samples it names).
  void emit_batch(const BatchPlan& plan, int64_t b, const int64_t* positions = nullptr);
  void keep(StreamState& kept, int64_t i) const;        // buffer sample i waits in `kept`

  int num_fields_;
  StreamOptions options_;
  StreamState state_;
  StreamBatches out_;
};

void validate_stream_options(int num_fields, const StreamOptions& options);

}  // namespace dynbatch
