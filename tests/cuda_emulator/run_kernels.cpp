// Runs csrc/kernels/*.cu on the CPU emulator (cuda_emulator.hpp) and compares every output with
// a plain float64 reference: soft_align and masked_pool, forward and backward, in float, half and
// bfloat16, on ragged batches with empty texts, lengths past a 32-wide tile, d = 600, and NaN in
// every padded position (which the kernels must never read); soft_align with each pair's matrices
// in shared memory and in the global workspace, and with pairs split over many blocks. Prints
// "<op> <type>: <n> checks" per op and storage type (the test asks for every op of the table
// that has a .cu file), then "<n> checks, <k> failures".
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "bench/soft_align_saving_probs.cuh"
#include "kernels/cuda_common.cuh"
#include "kernels/masked_pool_cuda.h"
#include "kernels/soft_align_cuda.h"

namespace {

using dynbatch::MaskedPoolBackwardParams;
using dynbatch::MaskedPoolForwardParams;
using dynbatch::SoftAlignBackwardParams;
using dynbatch::SoftAlignForwardParams;
using Vec = std::vector<double>;

int checks = 0, failures = 0;
std::map<std::string, int> checks_by_op;  // "<op> <type>": the op is the first word of a check
int split_runs = 0;  // soft_align forwards that took the split path (more than one launch)

// The kernels' own conversions of the storage types (round to nearest, ties to even).
using dynbatch::cuda::from_float;
using dynbatch::cuda::to_float;

template <typename T> T poison() { return from_float<T>(NAN); }
template <typename T> const char* name_of();
template <> const char* name_of<float>() { return "float"; }
template <> const char* name_of<__half>() { return "half"; }
template <> const char* name_of<__nv_bfloat16>() { return "bfloat16"; }
template <typename T> double tolerance();  // relative to the largest reference value
template <> double tolerance<float>() { return 2e-5; }
template <> double tolerance<__half>() { return 4e-3; }
template <> double tolerance<__nv_bfloat16>() { return 3e-2; }

template <typename T>
void count_check(const std::string& what) {
  ++checks;
  ++checks_by_op[what.substr(0, what.find(' ')) + " " + name_of<T>()];
}

// Valid entries (rows below len) close to the reference; padded rows exactly 0 (when `zeros`).
template <typename T>
void expect(const std::string& what, const std::vector<T>& got, const Vec& want,
            const std::vector<int64_t>& len, int64_t max_len, int64_t width, bool zeros = true) {
  double scale = 1e-30, worst = 0.0;
  for (double w : want) scale = std::max(scale, std::fabs(w));
  bool padding_ok = true;
  for (size_t n = 0; n < len.size(); ++n)
    for (int64_t i = 0; i < max_len; ++i)
      for (int64_t c = 0; c < width; ++c) {
        const size_t at = (n * max_len + i) * width + c;
        const double g = to_float(got[at]);
        if (i < len[n]) worst = std::max(worst, std::isfinite(g) ? std::fabs(g - want[at]) : INFINITY);
        else if (zeros && g != 0.0) padding_ok = false;
      }
  count_check<T>(what);
  if (worst > tolerance<T>() * scale || !padding_ok) {
    ++failures;
    std::printf("FAIL %s (%s): max error %.3g of scale %.3g, padded rows zero: %s\n", what.c_str(),
                name_of<T>(), worst, scale, padding_ok ? "yes" : "NO");
  }
}

// Every entry bit for bit as `want` (two runs of the same float arithmetic).
template <typename T>
void expect_same_bits(const std::string& what, const std::vector<T>& got, const std::vector<T>& want) {
  count_check<T>(what);
  if (got.size() == want.size() && std::memcmp(got.data(), want.data(), got.size() * sizeof(T)) == 0) return;
  ++failures;
  std::printf("FAIL %s (%s): not the same bits\n", what.c_str(), name_of<T>());
}

struct Pairs {
  int64_t batch, max_a, max_b, dim;
  std::vector<int64_t> len_a, len_b;
  Vec a, b, g_a, g_b;  // inputs and upstream gradients, already rounded to the storage type
};

// The reference of soft_align_params.h in float64: outputs a~, b~ and gradients of sum(a~ g_a + b~ g_b).
void soft_align_reference(const Pairs& p, Vec& a_t, Vec& b_t, Vec& grad_a, Vec& grad_b) {
  const int64_t d = p.dim;
  a_t.assign(p.a.size(), 0.0), b_t.assign(p.b.size(), 0.0);
  grad_a.assign(p.a.size(), 0.0), grad_b.assign(p.b.size(), 0.0);
  for (int64_t n = 0; n < p.batch; ++n) {
    const int64_t la = p.len_a[n], lb = p.len_b[n];
    auto A = [&](int64_t i, int64_t c) { return p.a[(n * p.max_a + i) * d + c]; };
    auto B = [&](int64_t j, int64_t c) { return p.b[(n * p.max_b + j) * d + c]; };
    auto GA = [&](int64_t i, int64_t c) { return p.g_a[(n * p.max_a + i) * d + c]; };
    auto GB = [&](int64_t j, int64_t c) { return p.g_b[(n * p.max_b + j) * d + c]; };
    Vec s(la * lb), pr(la * lb), pc(la * lb), g1(la * lb), g2(la * lb), ds(la * lb);
    for (int64_t i = 0; i < la; ++i)
      for (int64_t j = 0; j < lb; ++j) {
        double dot = 0, dot1 = 0, dot2 = 0;
        for (int64_t c = 0; c < d; ++c) {
          dot += A(i, c) * B(j, c), dot1 += GA(i, c) * B(j, c), dot2 += A(i, c) * GB(j, c);
        }
        s[i * lb + j] = dot, g1[i * lb + j] = dot1, g2[i * lb + j] = dot2;
      }
    for (int64_t i = 0; i < la; ++i) {  // softmax over j
      double top = -INFINITY, total = 0;
      for (int64_t j = 0; j < lb; ++j) top = std::max(top, s[i * lb + j]);
      for (int64_t j = 0; j < lb; ++j) total += std::exp(s[i * lb + j] - top);
      for (int64_t j = 0; j < lb; ++j) pr[i * lb + j] = std::exp(s[i * lb + j] - top) / total;
    }
    for (int64_t j = 0; j < lb; ++j) {  // softmax over i
      double top = -INFINITY, total = 0;
      for (int64_t i = 0; i < la; ++i) top = std::max(top, s[i * lb + j]);
      for (int64_t i = 0; i < la; ++i) total += std::exp(s[i * lb + j] - top);
      for (int64_t i = 0; i < la; ++i) pc[i * lb + j] = std::exp(s[i * lb + j] - top) / total;
    }
    for (int64_t i = 0; i < la; ++i) {
      double row = 0;
      for (int64_t j = 0; j < lb; ++j) row += pr[i * lb + j] * g1[i * lb + j];
      for (int64_t j = 0; j < lb; ++j) ds[i * lb + j] = pr[i * lb + j] * (g1[i * lb + j] - row);
    }
    for (int64_t j = 0; j < lb; ++j) {
      double column = 0;
      for (int64_t i = 0; i < la; ++i) column += pc[i * lb + j] * g2[i * lb + j];
      for (int64_t i = 0; i < la; ++i) ds[i * lb + j] += pc[i * lb + j] * (g2[i * lb + j] - column);
    }
    for (int64_t i = 0; i < la; ++i)
      for (int64_t j = 0; j < lb; ++j)
        for (int64_t c = 0; c < d; ++c) {
          const size_t at_a = (n * p.max_a + i) * d + c, at_b = (n * p.max_b + j) * d + c;
          a_t[at_a] += pr[i * lb + j] * B(j, c);
          b_t[at_b] += pc[i * lb + j] * A(i, c);
          grad_a[at_a] += pc[i * lb + j] * GB(j, c) + ds[i * lb + j] * B(j, c);
          grad_b[at_b] += pr[i * lb + j] * GA(i, c) + ds[i * lb + j] * A(i, c);
        }
  }
}

template <typename T>
std::vector<T> stored(const Vec& values, const std::vector<int64_t>& len, int64_t max_len,
                      int64_t dim, Vec& rounded) {  // NaN in the padding; `rounded` as stored
  std::vector<T> out(values.size());
  rounded.resize(values.size());
  for (size_t k = 0; k < values.size(); ++k) {
    const int64_t row = static_cast<int64_t>(k / std::max<int64_t>(dim, 1));
    const bool padding = row % std::max<int64_t>(max_len, 1) >= len[row / std::max<int64_t>(max_len, 1)];
    out[k] = from_float<T>(padding ? NAN : static_cast<float>(values[k]));
    rounded[k] = padding ? 0.0 : to_float(out[k]);
  }
  return out;
}

template <typename T>
void check_soft_align(const std::string& label, std::vector<std::pair<int64_t, int64_t>> lengths,
                      int64_t dim, double scale, std::mt19937& rng) {
  Pairs p;
  p.batch = static_cast<int64_t>(lengths.size()), p.dim = dim, p.max_a = 0, p.max_b = 0;
  for (auto [la, lb] : lengths) {
    p.len_a.push_back(la), p.len_b.push_back(lb);
    p.max_a = std::max(p.max_a, la + 1), p.max_b = std::max(p.max_b, lb + 2);  // padded further
  }
  std::normal_distribution<double> normal(0.0, scale);
  auto draw = [&](int64_t rows) { Vec v(p.batch * rows * dim); for (double& x : v) x = normal(rng); return v; };
  const Vec a0 = draw(p.max_a), b0 = draw(p.max_b), ga0 = draw(p.max_a), gb0 = draw(p.max_b);
  const auto a = stored<T>(a0, p.len_a, p.max_a, dim, p.a), b = stored<T>(b0, p.len_b, p.max_b, dim, p.b);
  const auto g_a = stored<T>(ga0, p.len_a, p.max_a, dim, p.g_a);
  const auto g_b = stored<T>(gb0, p.len_b, p.max_b, dim, p.g_b);
  Vec want_at, want_bt, want_ga, want_gb;
  soft_align_reference(p, want_at, want_bt, want_ga, want_gb);

  // Outputs start as NaN, like uninitialised device memory: every entry must be written.
  std::vector<T> a_t(a.size(), poison<T>()), b_t(b.size(), poison<T>());
  std::vector<T> grad_a(a.size(), poison<T>()), grad_b(b.size(), poison<T>());
  int64_t forward_floats = -1, backward_floats = -1;
  if (dynbatch::soft_align_forward_workspace(p.batch, p.max_a, p.max_b, &forward_floats) != cudaSuccess ||
      dynbatch::soft_align_backward_workspace(p.batch, p.max_a, p.max_b, &backward_floats) != cudaSuccess)
    ++failures;
  // Exactly as large as asked for, so that ASan sees a read past what the launcher asked for.
  std::vector<float> forward_workspace(std::max<int64_t>(forward_floats, 0), NAN);
  std::vector<float> backward_workspace(std::max<int64_t>(backward_floats, 0), NAN);
  auto pointer = [](std::vector<float>& v) { return v.empty() ? nullptr : v.data(); };
  SoftAlignForwardParams<T> fp;
  fp.a = a.data(), fp.b = b.data(), fp.len_a = p.len_a.data(), fp.len_b = p.len_b.data();
  fp.batch = p.batch, fp.max_len_a = p.max_a, fp.max_len_b = p.max_b, fp.dim = dim;
  fp.a_tilde = a_t.data(), fp.b_tilde = b_t.data();
  const int launches_before = emu::launches;
  if (dynbatch::launch_soft_align_forward(fp, pointer(forward_workspace), nullptr) != cudaSuccess) ++failures;
  split_runs += emu::launches - launches_before > 1;
  SoftAlignBackwardParams<T> bp;
  static_cast<dynbatch::SoftAlignParams<T>&>(bp) = fp;
  bp.grad_a_tilde = g_a.data(), bp.grad_b_tilde = g_b.data();
  bp.grad_a = grad_a.data(), bp.grad_b = grad_b.data();
  if (dynbatch::launch_soft_align_backward(bp, pointer(backward_workspace), nullptr) != cudaSuccess) ++failures;
  expect("soft_align a~ " + label, a_t, want_at, p.len_a, p.max_a, dim);
  expect("soft_align b~ " + label, b_t, want_bt, p.len_b, p.max_b, dim);
  expect("soft_align grad a " + label, grad_a, want_ga, p.len_a, p.max_a, dim);
  expect("soft_align grad b " + label, grad_b, want_gb, p.len_b, p.max_b, dim);

  // The saved-probabilities variant (timed against recomputing on a GPU) must give the same bits:
  // it stores the forward's probabilities and the backward reads them instead of recomputing the
  // same float arithmetic. A backward reading wrong or unwritten (NaN) probabilities differs.
  std::vector<float> saved(p.batch * 2 * p.max_a * p.max_b, NAN);  // as large as documented
  std::vector<T> a_t2(a.size(), poison<T>()), b_t2(b.size(), poison<T>());
  std::vector<T> grad_a2(a.size(), poison<T>()), grad_b2(b.size(), poison<T>());
  fp.a_tilde = a_t2.data(), fp.b_tilde = b_t2.data();
  bp.grad_a = grad_a2.data(), bp.grad_b = grad_b2.data();
  std::fill(forward_workspace.begin(), forward_workspace.end(), NAN);
  std::fill(backward_workspace.begin(), backward_workspace.end(), NAN);
  if (dynbatch::launch_soft_align_forward_saving_probs(fp, pointer(forward_workspace), saved.data(), nullptr) != cudaSuccess ||
      dynbatch::launch_soft_align_backward_from_probs(bp, pointer(backward_workspace), saved.data(), nullptr) != cudaSuccess)
    ++failures;
  expect_same_bits("soft_align saved-probabilities a~ " + label, a_t2, a_t);
  expect_same_bits("soft_align saved-probabilities b~ " + label, b_t2, b_t);
  expect_same_bits("soft_align saved-probabilities grad a " + label, grad_a2, grad_a);
  expect_same_bits("soft_align saved-probabilities grad b " + label, grad_b2, grad_b);
}

template <typename T>
void check_masked_pool(const std::string& label, std::vector<int64_t> len, int64_t dim,
                       std::mt19937& rng, bool ties = false) {  // ties: values in {-1, 0, 1}
  const int64_t batch = static_cast<int64_t>(len.size());
  int64_t max_len = 1;
  for (int64_t l : len) max_len = std::max(max_len, l + 1);
  std::normal_distribution<double> normal(0.0, 1.0);
  Vec x0(batch * max_len * dim), g0(batch * 2 * dim), xr, gr;
  for (double& v : x0) v = ties ? std::round(std::clamp(normal(rng), -1.0, 1.0)) : normal(rng);
  for (double& v : g0) v = normal(rng);
  const auto x = stored<T>(x0, len, max_len, dim, xr);
  std::vector<int64_t> whole(batch, 1);
  const auto g = stored<T>(g0, whole, 1, 2 * dim, gr);
  Vec want(batch * 2 * dim, 0.0), want_grad(x.size(), 0.0);
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t c = 0; c < dim; ++c) {
      if (len[n] == 0) continue;
      double sum = 0, best = -INFINITY;
      int64_t arg = 0;
      for (int64_t i = 0; i < len[n]; ++i) {
        const double v = xr[(n * max_len + i) * dim + c];
        sum += v;
        if (v > best) best = v, arg = i;
      }
      want[n * 2 * dim + c] = sum / len[n], want[n * 2 * dim + dim + c] = best;
      for (int64_t i = 0; i < len[n]; ++i)
        want_grad[(n * max_len + i) * dim + c] = gr[n * 2 * dim + c] / len[n] + (i == arg ? gr[n * 2 * dim + dim + c] : 0.0);
    }
  std::vector<T> out(batch * 2 * dim, poison<T>()), grad(x.size(), poison<T>());
  MaskedPoolForwardParams<T> fp;
  fp.x = x.data(), fp.len = len.data(), fp.batch = batch, fp.max_len = max_len, fp.dim = dim;
  fp.out = out.data();
  if (dynbatch::launch_masked_pool_forward(fp, nullptr) != cudaSuccess) ++failures;
  MaskedPoolBackwardParams<T> bp;
  static_cast<dynbatch::MaskedPoolParams<T>&>(bp) = fp;
  bp.grad_out = g.data(), bp.grad_x = grad.data();
  if (dynbatch::launch_masked_pool_backward(bp, nullptr) != cudaSuccess) ++failures;
  expect("masked_pool " + label, out, want, whole, 1, 2 * dim);
  expect("masked_pool grad " + label, grad, want_grad, len, max_len, dim);
}

template <typename T>
void check_all(std::mt19937& rng) {
  // One block per pair with its matrices in shared memory (an H100's opt-in limit, on a device of
  // one SM: never split), then in the global workspace (a device with too little shared memory
  // for them); then on an H100's 132 SMs, where the small batches of pairs longer than a tile are
  // split over many blocks (soft_align_split.cuh). In the split configuration the
  // saved-probabilities check compares the split path's bits with the per-pair kernels'.
  struct Device { const char* name; int optin, sms; };
  for (const Device device : {Device{", shared", 227 * 1024, 1}, Device{", workspace", 1024, 1},
                              Device{", split", 227 * 1024, 132}}) {
    emu::shared_memory_optin_bytes = device.optin, emu::multiprocessor_count = device.sms;
    const std::string where = device.name;
    // Ordinary, length 1 either side, empty either side, both empty.
    const std::vector<std::pair<int64_t, int64_t>> edges = {{3, 4}, {1, 5}, {4, 1}, {0, 3}, {2, 0}, {0, 0}, {5, 6}, {1, 1}};
    check_soft_align<T>("edge lengths, d=7" + where, edges, 7, 1.0, rng);
    // Past one 32-wide tile of scores and one 8-row group of a mix, on either side.
    check_soft_align<T>("past one tile, d=40" + where, {{33, 17}, {16, 16}, {17, 40}, {1, 33}}, 40, 0.3, rng);
    check_soft_align<T>("ESIM width d=600" + where, {{21, 9}, {3, 18}}, 600, 0.1, rng);
    check_soft_align<T>("large scores, d=7" + where, {{6, 5}, {2, 7}}, 7, 8.0, rng);
    // Several tiles, line groups and row groups of the split kernels per pair, partial ones at
    // the edges, and empty sides among them.
    check_soft_align<T>("long pairs, d=24" + where, {{70, 45}, {0, 40}, {38, 0}, {1, 66}, {50, 1}}, 24, 0.3, rng);
    check_soft_align<T>("long ESIM pairs, d=600" + where, {{40, 9}, {3, 35}}, 600, 0.05, rng);
  }
  // Matrices past 48 KiB: the launcher must opt in to that much shared memory (else the emulator,
  // like CUDA, refuses the launch). Backward: 4 * 61 * 66 floats = 64 KiB.
  emu::shared_memory_optin_bytes = 227 * 1024, emu::multiprocessor_count = 1;
  check_soft_align<T>("opt-in shared memory, d=5", {{60, 64}, {7, 3}}, 5, 0.5, rng);
  check_masked_pool<T>("edge lengths, d=7", {3, 1, 0, 5, 0, 2}, 7, rng);
  check_masked_pool<T>("d=300, 3 blocks of features", {17, 1, 40}, 300, rng);
  check_masked_pool<T>("ties (first arg-max), d=9", {6, 12, 3}, 9, rng, true);
}

}  // namespace

int main() {
  std::mt19937 rng(7);
  check_all<float>(rng);
  check_all<__half>(rng);
  check_all<__nv_bfloat16>(rng);
  for (const auto& [op_and_type, n] : checks_by_op) std::printf("%s: %d checks\n", op_and_type.c_str(), n);
  std::printf("%d soft_align runs split\n", split_runs);
  std::printf("%d checks, %d failures\n", checks, failures);
  return failures == 0 ? 0 : 1;
}
