// soft_align's two choices for the attention probabilities, timed against each other on a GPU:
//   recompute  the backward recomputes S and both softmaxes from A and B (what the ops do);
//   save       the forward also writes each pair's P_row and P_col (2 * la * lb floats) and the
//              backward reads them back instead (soft_align_saving_probs.cuh).
// Both run the same float arithmetic, so the program first checks that they agree (to the bit
// on the CPU emulator, to rounding on a GPU), then times each choice's forward and backward with CUDA events, over one batch of the lengths
// it reads, in float32 and bfloat16. The L2 cache is flushed before every timed pass: in training
// the rest of the model runs between the forward and the backward, so saved probabilities come
// back from DRAM, not from the cache. The choices alternate from one repeat to the next.
//
//   soft_align_probs DIM REPEATS < LENGTHS     (LENGTHS: one "la lb" line per pair)
//
// prints one JSON object. python -m dynbatch_ext.bench.tools.probs_choice runs it on the ops
// benchmark's lengths and says which choice is faster (scripts/gpu_check.sh's probs step).
// No torch: it builds with nvcc alone, and on the CPU against tests/cuda_emulator.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "bench/soft_align_saving_probs.cuh"
#include "kernels/cuda_common.cuh"
#include "kernels/soft_align_cuda.h"

namespace {

using dynbatch::SoftAlignBackwardParams;
using dynbatch::SoftAlignForwardParams;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "soft_align_probs: %s\n", what.c_str());
  std::exit(1);
}

void check(cudaError_t status, const char* call) {
  if (status != cudaSuccess) fail(std::string(call) + ": " + cudaGetErrorString(status));
}
#define CHECK(call) check((call), #call)

float host_value(float v, float) { return v; }
__nv_bfloat16 host_value(float v, __nv_bfloat16) { return __float2bfloat16_rn(v); }
float host_float(float v) { return v; }
float host_float(__nv_bfloat16 v) { return __bfloat162float(v); }
// How far the two choices' results may differ, relative to the largest output: both run the
// same float arithmetic (the same bits on the CPU emulator), but nvcc may contract or schedule
// it differently in two kernels; in bfloat16 that can flip a last bit (2^-8).
double tolerance(float) { return 1e-5; }
double tolerance(__nv_bfloat16) { return 1e-2; }

// One device allocation of `count` T, freed with the object.
template <typename T>
struct DeviceArray {
  T* data = nullptr;
  size_t count = 0;
  explicit DeviceArray(size_t n) : count(n) {
    CHECK(cudaMalloc(reinterpret_cast<void**>(&data), std::max<size_t>(n, 1) * sizeof(T)));
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() { cudaFree(data); }
  size_t bytes() const { return count * sizeof(T); }
  void poison() { CHECK(cudaMemsetAsync(data, 0xff, bytes(), nullptr)); }  // NaN in every type
  std::vector<T> to_host() const {
    std::vector<T> out(count);
    CHECK(cudaMemcpy(out.data(), data, bytes(), cudaMemcpyDeviceToHost));
    return out;
  }
};

struct Batch {
  std::vector<int64_t> len_a, len_b;
  int64_t max_a = 0, max_b = 0, probs_floats = 0;  // probs_floats: the valid 2 * la * lb, summed
};

Batch read_lengths(std::istream& in) {
  Batch batch;
  int64_t la = 0, lb = 0;
  while (in >> la >> lb) {
    if (la < 0 || lb < 0)
      fail("pair " + std::to_string(batch.len_a.size()) + " has a negative length");
    batch.len_a.push_back(la), batch.len_b.push_back(lb);
    batch.max_a = std::max(batch.max_a, la), batch.max_b = std::max(batch.max_b, lb);
    batch.probs_floats += 2 * la * lb;
  }
  if (!in.eof()) fail("standard input: expected one \"la lb\" line of two integers per pair");
  if (batch.len_a.empty()) fail("standard input: no pairs (one \"la lb\" line per pair)");
  return batch;
}

struct Timings {  // milliseconds, one entry per repeat
  std::vector<float> forward, backward, step;
};

// The q-quantile at the rank below q * (n - 1): q = 0.5 is the median (the lower of the middle
// two for an even count).
float quantile(std::vector<float> v, double q) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.f : v[static_cast<size_t>(q * (v.size() - 1))];
}

std::string json(const Timings& t) {
  char text[256];
  std::snprintf(text, sizeof text,
                "{\"forward_ms\": %.5f, \"backward_ms\": %.5f, \"step_ms\": %.5f, "
                "\"step_ms_q25\": %.5f, \"step_ms_q75\": %.5f}",
                quantile(t.forward, 0.5), quantile(t.backward, 0.5), quantile(t.step, 0.5),
                quantile(t.step, 0.25), quantile(t.step, 0.75));
  return text;
}

template <typename T>
std::string measure(const char* dtype, const Batch& batch, int64_t dim, int repeats,
                    int64_t flush_bytes) {
  const int64_t n = static_cast<int64_t>(batch.len_a.size());
  const size_t size_a = n * batch.max_a * dim, size_b = n * batch.max_b * dim;
  // Random inputs everywhere, padding too (the kernels must not read it; zeros can time faster).
  std::mt19937 rng(0);
  std::normal_distribution<float> normal(0.f, 0.1f);  // of the order of LSTM states
  auto upload = [&](DeviceArray<T>& array) {
    std::vector<T> host(array.count);
    for (T& v : host) v = host_value(normal(rng), T{});
    CHECK(cudaMemcpy(array.data, host.data(), array.bytes(), cudaMemcpyHostToDevice));
  };
  DeviceArray<T> a(size_a), b(size_b), g_a(size_a), g_b(size_b);
  upload(a), upload(b), upload(g_a), upload(g_b);
  DeviceArray<int64_t> len_a(n), len_b(n);
  CHECK(cudaMemcpy(len_a.data, batch.len_a.data(), len_a.bytes(), cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(len_b.data, batch.len_b.data(), len_b.bytes(), cudaMemcpyHostToDevice));
  int64_t forward_floats = 0, backward_floats = 0;
  CHECK(dynbatch::soft_align_forward_workspace(n, batch.max_a, batch.max_b, &forward_floats));
  CHECK(dynbatch::soft_align_backward_workspace(n, batch.max_a, batch.max_b, &backward_floats));
  DeviceArray<float> forward_workspace(forward_floats), backward_workspace(backward_floats);
  DeviceArray<float> saved(n * 2 * batch.max_a * batch.max_b);
  DeviceArray<char> flush(flush_bytes);

  // One set of outputs per choice, poisoned, so that the bit comparison also sees unwritten ones.
  struct Outputs {
    DeviceArray<T> a_tilde, b_tilde, grad_a, grad_b;
  };
  Outputs outputs[2] = {{DeviceArray<T>(size_a), DeviceArray<T>(size_b), DeviceArray<T>(size_a),
                         DeviceArray<T>(size_b)},
                        {DeviceArray<T>(size_a), DeviceArray<T>(size_b), DeviceArray<T>(size_a),
                         DeviceArray<T>(size_b)}};
  auto workspace = [](DeviceArray<float>& w) { return w.count > 0 ? w.data : nullptr; };
  auto forward_params = [&](Outputs& out) {
    SoftAlignForwardParams<T> p;
    p.a = a.data, p.b = b.data, p.len_a = len_a.data, p.len_b = len_b.data;
    p.batch = n, p.max_len_a = batch.max_a, p.max_len_b = batch.max_b, p.dim = dim;
    p.a_tilde = out.a_tilde.data, p.b_tilde = out.b_tilde.data;
    return p;
  };
  auto backward_params = [&](Outputs& out) {
    SoftAlignBackwardParams<T> p;
    static_cast<dynbatch::SoftAlignParams<T>&>(p) = forward_params(out);
    p.grad_a_tilde = g_a.data, p.grad_b_tilde = g_b.data;
    p.grad_a = out.grad_a.data, p.grad_b = out.grad_b.data;
    return p;
  };
  // choice 0 recomputes, choice 1 saves.
  auto forward = [&](int choice) {
    const SoftAlignForwardParams<T> p = forward_params(outputs[choice]);
    CHECK(choice == 0 ? dynbatch::launch_soft_align_forward(p, workspace(forward_workspace), nullptr)
                      : dynbatch::launch_soft_align_forward_saving_probs(
                            p, workspace(forward_workspace), saved.data, nullptr));
  };
  auto backward = [&](int choice) {
    const SoftAlignBackwardParams<T> p = backward_params(outputs[choice]);
    CHECK(choice == 0
              ? dynbatch::launch_soft_align_backward(p, workspace(backward_workspace), nullptr)
              : dynbatch::launch_soft_align_backward_from_probs(p, workspace(backward_workspace),
                                                                saved.data, nullptr));
  };

  for (int choice = 0; choice < 2; ++choice) {
    Outputs& out = outputs[choice];
    out.a_tilde.poison(), out.b_tilde.poison(), out.grad_a.poison(), out.grad_b.poison();
    saved.poison();
    forward(choice);
    backward(choice);
  }
  CHECK(cudaDeviceSynchronize());
  bool same_bits = true;
  double difference = 0.0;  // largest, relative to the largest output; NaN (unwritten) is inf
  auto compare = [&](const DeviceArray<T>& x, const DeviceArray<T>& y) {
    const std::vector<T> hx = x.to_host(), hy = y.to_host();
    same_bits = same_bits && std::memcmp(hx.data(), hy.data(), x.bytes()) == 0;
    double scale = 1e-30, worst = 0.0;
    for (size_t k = 0; k < hx.size(); ++k) {
      const double u = host_float(hx[k]), v = host_float(hy[k]);
      scale = std::max(scale, std::fabs(v));
      worst = std::max(worst, std::isfinite(u) && std::isfinite(v) ? std::fabs(u - v) : INFINITY);
    }
    difference = std::max(difference, worst / scale);
  };
  compare(outputs[0].a_tilde, outputs[1].a_tilde), compare(outputs[0].b_tilde, outputs[1].b_tilde);
  compare(outputs[0].grad_a, outputs[1].grad_a), compare(outputs[0].grad_b, outputs[1].grad_b);
  if (!(difference <= tolerance(T{})))
    fail(std::string(dtype) + ": saving the probabilities changed the results (relative "
         "difference " + std::to_string(difference) + "); fix the kernels before timing them");

  cudaEvent_t marks[4];
  for (cudaEvent_t& mark : marks) CHECK(cudaEventCreate(&mark));
  Timings timings[2];
  for (int r = -1; r < repeats; ++r)  // r = -1 warms up
    for (int k = 0; k < 2; ++k) {
      const int choice = (r + k) % 2 == 0 ? 0 : 1;  // alternate which choice goes first
      CHECK(cudaMemsetAsync(flush.data, r & 0xff, flush.bytes(), nullptr));
      CHECK(cudaEventRecord(marks[0], nullptr));
      forward(choice);
      CHECK(cudaEventRecord(marks[1], nullptr));
      CHECK(cudaMemsetAsync(flush.data, (r + 1) & 0xff, flush.bytes(), nullptr));
      CHECK(cudaEventRecord(marks[2], nullptr));
      backward(choice);
      CHECK(cudaEventRecord(marks[3], nullptr));
      CHECK(cudaEventSynchronize(marks[3]));
      if (r < 0) continue;
      float forward_ms = 0, backward_ms = 0;
      CHECK(cudaEventElapsedTime(&forward_ms, marks[0], marks[1]));
      CHECK(cudaEventElapsedTime(&backward_ms, marks[2], marks[3]));
      timings[choice].forward.push_back(forward_ms);
      timings[choice].backward.push_back(backward_ms);
      timings[choice].step.push_back(forward_ms + backward_ms);
    }
  for (cudaEvent_t mark : marks) CHECK(cudaEventDestroy(mark));

  // What saving adds to DRAM traffic (written once, read once), next to what the forward must
  // move anyway (a and b read, a~ and b~ written, padding included).
  char head[512];
  std::snprintf(head, sizeof head,
                "{\"dtype\": \"%s\", \"same_bits\": %s, \"max_relative_difference\": %.3g, "
                "\"saved_bytes_written_and_read\": %lld, \"forward_bytes\": %lld, ",
                dtype, same_bits ? "true" : "false", difference,
                static_cast<long long>(2 * batch.probs_floats * sizeof(float)),
                static_cast<long long>(2 * (size_a + size_b) * sizeof(T)));
  return std::string(head) + "\"recompute\": " + json(timings[0]) + ", \"save\": " +
         json(timings[1]) + "}";
}

int parse_positive(const char* text, const char* what) {
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || value <= 0 || value > 1000000)
    fail(std::string(what) + " must be a positive integer, got \"" + text + "\"");
  return static_cast<int>(value);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) fail("usage: soft_align_probs DIM REPEATS < LENGTHS (one \"la lb\" line per pair)");
  const int64_t dim = parse_positive(argv[1], "DIM");
  const int repeats = parse_positive(argv[2], "REPEATS");
  const Batch batch = read_lengths(std::cin);
  int device = 0, driver = 0, runtime = 0;
  cudaDeviceProp prop;
  CHECK(cudaGetDevice(&device));
  CHECK(cudaGetDeviceProperties(&prop, device));
  CHECK(cudaDriverGetVersion(&driver));
  CHECK(cudaRuntimeGetVersion(&runtime));
  const int64_t flush_bytes = 4 * static_cast<int64_t>(prop.l2CacheSize);  // evicts all of L2
  const std::string float32 = measure<float>("float32", batch, dim, repeats, flush_bytes);
  const std::string bfloat16 = measure<__nv_bfloat16>("bfloat16", batch, dim, repeats, flush_bytes);
  std::printf("{\"gpu\": \"%s\", \"compute_capability\": \"%d.%d\", \"cuda_driver_api\": %d, "
              "\"cuda_runtime\": %d, \"batch\": %zu, \"max_len_a\": %lld, \"max_len_b\": %lld, "
              "\"dim\": %lld, \"repeats\": %d, \"l2_flush_bytes\": %lld, \"results\": [%s, %s]}\n",
              prop.name, prop.major, prop.minor, driver, runtime, batch.len_a.size(),
              static_cast<long long>(batch.max_a), static_cast<long long>(batch.max_b),
              static_cast<long long>(dim), repeats, static_cast<long long>(flush_bytes),
              float32.c_str(), bfloat16.c_str());
  return 0;
}
