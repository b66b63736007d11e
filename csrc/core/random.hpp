// A small, fully specified random generator, so that a plan is the same on every platform and
// standard library (std::shuffle and the std distributions are implementation-defined).
#pragma once

#include <cstdint>

namespace dynbatch {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}

  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  // Uniform integer in [0, bound), bound >= 1 (Lemire's multiply-shift, unbiased by rejection).
  uint64_t below(uint64_t bound) {
    unsigned __int128 m = static_cast<unsigned __int128>(next()) * bound;
    uint64_t low = static_cast<uint64_t>(m);
    if (low < bound) {
      const uint64_t threshold = (0 - bound) % bound;
      while (low < threshold) {
        m = static_cast<unsigned __int128>(next()) * bound;
        low = static_cast<uint64_t>(m);
      }
    }
    return static_cast<uint64_t>(m >> 64);
  }

  // Uniform double in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

// The independent random streams of a plan, one per use, mixed into the seed by mix_seed. Each id
// is fixed forever: changing one changes every plan drawn from it.
enum RandomStream : uint64_t {
  kNoiseStream = 1,         // padding_noise on the sort keys (batch_plan.cpp)
  kTieStream = 2,           // the order among equal sort keys (batch_plan.cpp)
  kRoundStream = 3,         // the order of rounds, and of batches inside a round (batch_plan.cpp)
  kFillStream = 4,          // a stream's fill: its plan's epoch (stream_batcher.cpp)
  kStepOrderStream = 7,     // the order of sorted steps (step_plan.cpp)
  kPermutationStream = 8,   // the epoch's order of samples for pooled steps (epoch_plan.cpp)
  kPoolStream = 9,          // a pool's plan: its epoch (epoch_plan.cpp)
  kPoolStepOrderStream = 10,  // the order of a pool's steps (epoch_plan.cpp)
};

// Mixes (seed, epoch, stream) into one seed, so each epoch and each use draws independent numbers.
inline uint64_t mix_seed(uint64_t seed, uint64_t epoch, uint64_t stream) {
  SplitMix64 g(seed ^ (epoch * 0xD1B54A32D192ED03ull) ^ (stream * 0x8CB92BA72F3D8DD7ull));
  g.next();
  return g.next();
}

template <typename T>
void shuffle_range(T* first, int64_t count, SplitMix64& rng) {
  for (int64_t i = count - 1; i > 0; --i) {
    const int64_t j = static_cast<int64_t>(rng.below(static_cast<uint64_t>(i) + 1));
    T tmp = first[i];
    first[i] = first[j];
    first[j] = tmp;
  }
}

}  // namespace dynbatch
