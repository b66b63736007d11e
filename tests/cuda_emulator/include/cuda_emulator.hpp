// A CPU stand-in for the few CUDA features csrc/kernels/*.cu use, so that their kernels run, and
// are checked against a reference, on a machine without a GPU (tests/test_cuda_kernels_emulated.py).
//
// Each block runs on its own, one block after another. Its threads are fibers (ucontext) on one OS
// thread, switched at __syncthreads and warp shuffles. A barrier opens when every thread of the
// block (every lane of the warp, for a shuffle) that has not returned is waiting at it; threads
// waiting at different barriers are a deadlock, and a shuffle with a lane that has returned is an
// error: both abort with a message. __shared__ arrays are statics, which is one copy per block
// because blocks run one at a time; dynamic shared memory is one buffer per launch, filled with
// NaN before every block (a read of an entry the block did not write shows). A launch that asks
// for more dynamic shared memory than 48 KiB, or than the kernel opted in to, aborts, as CUDA
// refuses it. emu::shared_memory_optin_bytes and emu::multiprocessor_count are what the device
// "has" (an H100's by default); the harness changes them to send the kernels down each of their
// paths (no shared memory; one block per pair or pairs split over blocks).
// What this cannot show: data races between real threads, memory-model effects and speed
// (compute-sanitizer and the benchmark, on a GPU, do).
#pragma once

#include <ucontext.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <vector>

using std::isnan;  // device code calls isnan unqualified, as CUDA allows

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

using cudaError_t = int;
constexpr cudaError_t cudaSuccess = 0;
constexpr cudaError_t cudaErrorInvalidValue = 1;
using cudaStream_t = struct CUstream_st*;
enum cudaDeviceAttr { cudaDevAttrMultiProcessorCount = 16, cudaDevAttrMaxSharedMemoryPerBlockOptin = 97 };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };

#define __global__
#define __launch_bounds__(...)
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static

namespace emu {

constexpr size_t kStackBytes = size_t{1} << 17;  // per thread; the kernels' frames are small
constexpr int kDefaultDynamicSharedBytes = 48 * 1024;

inline int shared_memory_optin_bytes = 227 * 1024;
inline int multiprocessor_count = 132;
inline int launches = 0;  // kernel launches so far, for the harness to see which path ran

// Dynamic shared memory a kernel has opted in to (cudaFuncSetAttribute), by kernel address.
inline std::map<const void*, int>& dynamic_shared_limits() {
  static std::map<const void*, int> limits;
  return limits;
}

enum class State { Runnable, AtBlockBarrier, AtWarpBarrier, Done };

struct Fiber {
  ucontext_t context;
  dim3 thread;
  State state = State::Runnable;
  float shuffled = 0.f;  // the value this lane offers to a shuffle
  float offered = 0.f;   // its value when the warp's shuffle opened
};

struct Grid {
  dim3 grid, block, block_index;
  std::vector<Fiber> fibers;
  std::vector<std::unique_ptr<char[]>> stacks;
  ucontext_t scheduler;
  size_t current = 0;
  std::function<void()> body;
  std::vector<unsigned char> dynamic_shared;
};

inline Grid*& grid_in_flight() {
  static Grid* grid = nullptr;
  return grid;
}
inline Fiber& this_fiber() { return grid_in_flight()->fibers[grid_in_flight()->current]; }

[[noreturn]] inline void fail(const char* what) {
  const Grid& g = *grid_in_flight();
  std::fflush(stdout);  // what the kernels printf'd first, as a GPU flushes it at the launch's end
  std::fprintf(stderr, "cuda emulator: %s (block %u,%u,%u)\n", what, g.block_index.x,
               g.block_index.y, g.block_index.z);
  std::abort();
}

inline void wait_at(State barrier) {
  Fiber& fiber = this_fiber();
  fiber.state = barrier;
  swapcontext(&fiber.context, &grid_in_flight()->scheduler);
}

inline void fiber_entry() {
  grid_in_flight()->body();
  this_fiber().state = State::Done;  // uc_link returns to the scheduler
}

// Opens what can open: a warp whose lanes all wait at a shuffle, else the block barrier when
// every thread still running waits there. False: nothing could open (a deadlock).
inline bool open_barriers(Grid& g) {
  bool opened = false;
  for (size_t base = 0; base < g.fibers.size(); base += 32) {
    const size_t end = base + 32 < g.fibers.size() ? base + 32 : g.fibers.size();
    size_t waiting = 0, done = 0;
    for (size_t k = base; k < end; ++k) {
      waiting += g.fibers[k].state == State::AtWarpBarrier;
      done += g.fibers[k].state == State::Done;
    }
    if (waiting == 0) continue;
    if (end - base != 32 || done > 0) fail("a warp shuffle with a lane that has returned or does not exist");
    if (waiting != 32) continue;
    for (size_t k = base; k < end; ++k) {
      g.fibers[k].offered = g.fibers[k].shuffled;
      g.fibers[k].state = State::Runnable;
    }
    opened = true;
  }
  if (opened) return true;
  size_t running = 0, at_barrier = 0;
  for (const Fiber& f : g.fibers) {
    running += f.state != State::Done;
    at_barrier += f.state == State::AtBlockBarrier;
  }
  if (running == 0 || at_barrier != running) return false;
  for (Fiber& f : g.fibers)
    if (f.state == State::AtBlockBarrier) f.state = State::Runnable;
  return true;
}

inline void run_block(Grid& g) {
  if (!g.dynamic_shared.empty())  // NaN in every float
    std::memset(g.dynamic_shared.data(), 0xff, g.dynamic_shared.size());
  for (size_t k = 0; k < g.fibers.size(); ++k) {
    Fiber& f = g.fibers[k];
    f.state = State::Runnable;
    getcontext(&f.context);
    f.context.uc_stack.ss_sp = g.stacks[k].get();
    f.context.uc_stack.ss_size = kStackBytes;
    f.context.uc_link = &g.scheduler;
    makecontext(&f.context, fiber_entry, 0);
  }
  for (;;) {
    bool ran = false;
    for (size_t k = 0; k < g.fibers.size(); ++k) {
      if (g.fibers[k].state != State::Runnable) continue;
      g.current = k;
      swapcontext(&g.scheduler, &g.fibers[k].context);
      ran = true;
    }
    if (ran) continue;
    bool all_done = true;
    for (const Fiber& f : g.fibers) all_done = all_done && f.state == State::Done;
    if (all_done) return;
    if (!open_barriers(g)) fail("deadlock: threads wait at different barriers (divergent __syncthreads?)");
  }
}

template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes, Args... args) {
  const auto opted = dynamic_shared_limits().find(reinterpret_cast<const void*>(kernel));
  const size_t shared_limit =
      opted == dynamic_shared_limits().end() ? kDefaultDynamicSharedBytes : opted->second;
  // Launches CUDA would refuse: the launchers must never make one.
  const size_t threads = size_t{block.x} * block.y * block.z;
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || threads == 0 || threads > 1024) {
    std::fprintf(stderr, "cuda emulator: a launch of an empty grid or of %zu threads a block\n", threads);
    std::abort();
  }
  if (shared_bytes > shared_limit) {
    std::fprintf(stderr, "cuda emulator: a launch with %zu bytes of dynamic shared memory, past the "
                 "kernel's %zu (cudaFuncSetAttribute raises it)\n", shared_bytes, shared_limit);
    std::abort();
  }
  ++launches;
  Grid g;
  g.dynamic_shared.resize(shared_bytes);
  g.grid = grid;
  g.block = block;
  g.fibers.resize(threads);
  for (size_t k = 0; k < threads; ++k) {
    g.fibers[k].thread = dim3(k % block.x, (k / block.x) % block.y, k / (size_t{block.x} * block.y));
    g.stacks.emplace_back(new char[kStackBytes]);
  }
  g.body = [&] { kernel(args...); };
  grid_in_flight() = &g;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        g.block_index = dim3(x, y, z);
        run_block(g);
      }
  grid_in_flight() = nullptr;
}

}  // namespace emu

#define threadIdx (::emu::this_fiber().thread)
#define blockIdx (::emu::grid_in_flight()->block_index)
#define blockDim (::emu::grid_in_flight()->block)
#define gridDim (::emu::grid_in_flight()->grid)
#define DYNBATCH_LAUNCH(kernel, grid, block, shared_bytes, stream, ...) \
  ::emu::launch(kernel, grid, block, shared_bytes, __VA_ARGS__)
#define DYNBATCH_DYNAMIC_SHARED(type, name) \
  type* name = reinterpret_cast<type*>(::emu::grid_in_flight()->dynamic_shared.data())

inline void __syncthreads() { ::emu::wait_at(::emu::State::AtBlockBarrier); }

inline float __shfl_xor_sync(unsigned mask, float value, int lane_mask) {
  if (mask != 0xffffffffu) ::emu::fail("only full-warp shuffles are emulated");
  ::emu::Fiber& me = ::emu::this_fiber();
  me.shuffled = value;
  ::emu::wait_at(::emu::State::AtWarpBarrier);
  const size_t k = ::emu::grid_in_flight()->current;
  const size_t partner = (k & ~size_t{31}) | ((k & 31) ^ static_cast<size_t>(lane_mask & 31));
  return ::emu::grid_in_flight()->fibers[partner].offered;
}

[[noreturn]] inline void __trap() { ::emu::fail("__trap(): the kernel stopped"); }

inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
inline cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attribute, int device) {
  if (device != 0) return cudaErrorInvalidValue;
  switch (attribute) {
    case cudaDevAttrMultiProcessorCount: *value = ::emu::multiprocessor_count; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = ::emu::shared_memory_optin_bytes; return cudaSuccess;
  }
  return cudaErrorInvalidValue;
}
template <typename... Params>
cudaError_t cudaFuncSetAttribute(void (*kernel)(Params...), cudaFuncAttribute attribute, int value) {
  if (attribute != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 ||
      value > ::emu::shared_memory_optin_bytes)
    return cudaErrorInvalidValue;
  ::emu::dynamic_shared_limits()[reinterpret_cast<const void*>(kernel)] = value;
  return cudaSuccess;
}

// The host side of the runtime that host programs (csrc/bench/*.cu) call: "device"
// memory is host memory, every call is synchronous, events read the host's clock, and the device
// is a small one (1 MiB of L2) so that cache flushes stay cheap.
enum cudaMemcpyKind { cudaMemcpyHostToDevice = 1, cudaMemcpyDeviceToHost = 2 };
struct cudaDeviceProp {
  char name[256];
  int major, minor, l2CacheSize, multiProcessorCount;
};
using cudaEvent_t = struct emu_event*;
struct emu_event {
  std::chrono::steady_clock::time_point at;
};
inline const char* cudaGetErrorString(cudaError_t error) {
  return error == cudaSuccess ? "no error" : "invalid argument (emulated runtime)";
}
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device != 0) return cudaErrorInvalidValue;
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof prop->name, "CPU emulator");
  prop->l2CacheSize = 1 << 20, prop->multiProcessorCount = ::emu::multiprocessor_count;
  return cudaSuccess;
}
inline cudaError_t cudaDriverGetVersion(int* version) { return *version = 0, cudaSuccess; }
inline cudaError_t cudaRuntimeGetVersion(int* version) { return *version = 0, cudaSuccess; }
inline cudaError_t cudaMalloc(void** pointer, size_t bytes) {
  *pointer = std::malloc(bytes > 0 ? bytes : 1);
  return *pointer ? cudaSuccess : cudaErrorInvalidValue;
}
inline cudaError_t cudaFree(void* pointer) { return std::free(pointer), cudaSuccess; }
inline cudaError_t cudaMemcpy(void* to, const void* from, size_t bytes, cudaMemcpyKind) {
  return std::memcpy(to, from, bytes), cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void* to, int value, size_t bytes, cudaStream_t = nullptr) {
  return std::memset(to, value, bytes), cudaSuccess;
}
inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
inline cudaError_t cudaEventCreate(cudaEvent_t* event) { return *event = new emu_event{}, cudaSuccess; }
inline cudaError_t cudaEventDestroy(cudaEvent_t event) { return delete event, cudaSuccess; }
inline cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t = nullptr) {
  return event->at = std::chrono::steady_clock::now(), cudaSuccess;
}
inline cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
inline cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  *ms = std::chrono::duration<float, std::milli>(end->at - start->at).count();
  return cudaSuccess;
}

// Storage types, rounded as the GPU rounds them (to nearest, ties to even).
struct __half {
  _Float16 value;
};
inline __half __float2half_rn(float v) { return __half{static_cast<_Float16>(v)}; }
inline float __half2float(__half h) { return static_cast<float>(h.value); }

struct __nv_bfloat16 {
  uint16_t bits;
};
inline __nv_bfloat16 __float2bfloat16_rn(float v) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  if (std::isnan(v)) return __nv_bfloat16{0x7fc0};
  u += 0x7fffu + ((u >> 16) & 1u);
  return __nv_bfloat16{static_cast<uint16_t>(u >> 16)};
}
inline float __bfloat162float(__nv_bfloat16 b) {
  const uint32_t u = static_cast<uint32_t>(b.bits) << 16;
  float v;
  std::memcpy(&v, &u, sizeof v);
  return v;
}
