// CPU soft alignment over a range of pairs (the op layer runs ranges in parallel); each pair works
// on its valid la x lb block only (dot products and axpys over rows of d, and the softmaxes of
// softmax_cpu.h).
#include <algorithm>
#include <array>
#include <type_traits>
#include <vector>

#include "kernels/cpu_types.h"
#include "kernels/dtypes.h"
#include "kernels/soft_align_cpu.h"
#include "kernels/softmax_cpu.h"
#include "kernels/vector_math_cpu.h"

namespace dynbatch {
namespace {

// Lines per task when a pair's lines are shared between threads: enough elements that a task
// outweighs handing it out.
constexpr int64_t kElementsPerTask = int64_t{1} << 14;

// The work of one pair's block: its matrix products (the primitives, or the runtime's matmul
// where the block is large enough for a blocked GEMM to win) and its loops over lines (on the
// runtime's thread pool where it lends one).
template <typename C>
struct BlockWork {
  CpuMatMul<C> matmul;  // null: never used
  CpuParallelFor parallel_for;

  BlockWork(const CpuRuntime<C>& runtime, int64_t la, int64_t lb, int64_t dim)
      : matmul(runtime.matmul != nullptr && la * lb * dim >= kCpuMatMulMinWork ? runtime.matmul
                                                                              : nullptr),
        parallel_for(runtime.parallel_for) {}

  // out (m x n) = x (m x dim) y^T, y being (n x dim).
  void dots(const C* x, int64_t m, const C* y, int64_t n, int64_t dim, C* out) const {
    if (matmul) return matmul(false, true, m, n, dim, x, dim, y, dim, out, n, false);
    pairwise_dots(x, m, y, n, dim, out);
  }
  // out (rows x dim) (+)= w x, x being (inner x dim) and w (rows x inner), or w^T where
  // `transposed` (w then stored as inner x rows).
  void mix(const C* w, bool transposed, int64_t rows, int64_t inner, const C* x, int64_t dim,
           C* out, bool accumulate) const {
    if (matmul)
      return matmul(transposed, false, rows, dim, inner, w, transposed ? rows : inner, x, dim, out,
                    dim, accumulate);
    mix_rows(w, transposed ? 1 : inner, transposed ? rows : 1, rows, inner, x, dim, out,
             accumulate);
  }
  // body(begin, end) over ranges covering [0, count) lines of `length` elements each.
  template <typename F>
  void lines(int64_t count, int64_t length, const F& body) const {
    if (parallel_for == nullptr) return body(int64_t{0}, count);
    parallel_for(count, std::max<int64_t>(1, kElementsPerTask / std::max<int64_t>(length, 1)), body);
  }
};

// scores = A B^T (la x lb) into `rows`, then column-softmax into `cols` and row-softmax in place.
template <typename C>
void alignment_probabilities(const BlockWork<C>& work, const C* a, const C* b, int64_t la,
                             int64_t lb, int64_t dim, C* rows, C* cols) {
  work.dots(a, la, b, lb, dim, rows);
  work.lines(lb, la, [&](int64_t j0, int64_t j1) { softmax_columns(rows, la, lb, j0, j1, cols); });
  work.lines(la, lb, [&](int64_t i0, int64_t i1) { softmax_rows(rows, lb, i0, i1); });
}

template <typename T>
void zero_rows(T* rows, int64_t from, int64_t to, int64_t dim) {
  std::fill(rows + from * dim, rows + to * dim, from_compute<T>(0));
}

// A scratch buffer of `count` elements, grown to exactly that where it must grow (resize alone
// may double it, past what the thread keeps: see ScratchLease).
template <typename C>
void sized(std::vector<C>& buffer, int64_t count) {
  if (static_cast<size_t>(count) > buffer.capacity()) buffer.reserve(count);
  buffer.resize(count);
}

// One pair's valid rows in the compute type C: the stored rows themselves when T is C, else a
// converted copy (bfloat16 and float16 are computed in float).
template <typename C, typename T>
const C* rows_in(const T* rows, int64_t count, std::vector<C>& copy) {
  if constexpr (std::is_same_v<C, T>) {
    return rows;
  } else {
    sized(copy, count);
    for (int64_t k = 0; k < count; ++k) copy[k] = to_compute(rows[k]);
    return copy.data();
  }
}

// Where a pair's valid output rows are computed: in the output itself when T is C, else in
// `buffer`, which store_rows then rounds into the output.
template <typename C, typename T>
C* rows_out(T* out, int64_t count, std::vector<C>& buffer) {
  if constexpr (std::is_same_v<C, T>) {
    return out;
  } else {
    sized(buffer, count);
    return buffer.data();
  }
}

template <typename C, typename T>
void store_rows(const C* computed, T* out, int64_t count) {
  if constexpr (!std::is_same_v<C, T>)
    for (int64_t k = 0; k < count; ++k) out[k] = from_compute<T>(computed[k]);
}

// Buffers a range of pairs reuses: the probabilities and their gradients, and the 16-bit types'
// rows in float.
template <typename C>
struct Scratch {
  std::vector<C> rows, cols, d_rows, d_cols, d_scores;
  std::vector<C> a, b, grad_a_tilde, grad_b_tilde, out_a, out_b;

  std::array<std::vector<C>*, 11> buffers() {
    return {&rows, &cols, &d_rows, &d_cols, &d_scores, &a, &b, &grad_a_tilde, &grad_b_tilde,
            &out_a, &out_b};
  }
};

// The calling thread's Scratch, for one kernel call. Each thread keeps its own from call to call:
// allocated afresh on every call, the buffers cost a page fault per 4 KiB touched (a third of a
// step's time at B = 4, L = 512, d = 64 on an Intel Xeon, half of it for one pair at L = 1024).
// A buffer grown past kKeptScratchBytes (a 1024 x 1024 float block) is given back when the call
// ends, so that a thread holds at most about 20 MiB between calls (five such blocks, in the
// backward) and longer batches leave nothing behind.
constexpr size_t kKeptScratchBytes = size_t{1} << 22;

template <typename C>
class ScratchLease {
 public:
  ScratchLease() : scratch_(kept()) {}
  ~ScratchLease() {
    for (std::vector<C>* buffer : scratch_.buffers())
      if (buffer->capacity() * sizeof(C) > kKeptScratchBytes) std::vector<C>().swap(*buffer);
  }
  ScratchLease(const ScratchLease&) = delete;
  ScratchLease& operator=(const ScratchLease&) = delete;
  Scratch<C>* operator->() { return &scratch_; }

 private:
  static Scratch<C>& kept() {
    thread_local Scratch<C> scratch;
    return scratch;
  }
  Scratch<C>& scratch_;
};

}  // namespace

template <typename T>
void soft_align_forward_cpu(const SoftAlignForwardParams<T>& p, int64_t begin, int64_t end,
                            const CpuRuntime<compute_t<T>>& runtime) {
  using C = compute_t<T>;
  const int64_t d = p.dim;
  if (d == 0) return;  // the outputs hold no elements
  ScratchLease<C> s;
  for (int64_t n = begin; n < end; ++n) {
    const int64_t la = p.len_a[n], lb = p.len_b[n];
    T* a_tilde = p.a_tilde + n * p.max_len_a * d;
    T* b_tilde = p.b_tilde + n * p.max_len_b * d;
    if (la == 0 || lb == 0) {  // nothing to attend to: every row is zero
      zero_rows(a_tilde, 0, p.max_len_a, d);
      zero_rows(b_tilde, 0, p.max_len_b, d);
      continue;
    }
    const C* a = rows_in<C>(p.a + n * p.max_len_a * d, la * d, s->a);
    const C* b = rows_in<C>(p.b + n * p.max_len_b * d, lb * d, s->b);
    C* out_a = rows_out<C>(a_tilde, la * d, s->out_a);
    C* out_b = rows_out<C>(b_tilde, lb * d, s->out_b);
    sized(s->rows, la * lb);
    sized(s->cols, la * lb);
    const BlockWork<C> work(runtime, la, lb, d);
    alignment_probabilities(work, a, b, la, lb, d, s->rows.data(), s->cols.data());
    work.mix(s->rows.data(), false, la, lb, b, d, out_a, false);  // P B
    work.mix(s->cols.data(), true, lb, la, a, d, out_b, false);   // Q^T A
    store_rows(out_a, a_tilde, la * d);
    store_rows(out_b, b_tilde, lb * d);
    zero_rows(a_tilde, la, p.max_len_a, d);
    zero_rows(b_tilde, lb, p.max_len_b, d);
  }
}

// With P = row softmax and Q = column softmax of E = A B^T, a_tilde = P B, b_tilde = Q^T A:
//   dP = gA~ B^T, dE  = P o (dP - rowsum(dP o P))
//   dQ = A gB~^T, dE += Q o (dQ - colsum(dQ o Q))
//   dA = dE B + Q gB~,  dB = dE^T A + P^T gA~
template <typename T>
void soft_align_backward_cpu(const SoftAlignBackwardParams<T>& p, int64_t begin, int64_t end,
                             const CpuRuntime<compute_t<T>>& runtime) {
  using C = compute_t<T>;
  const int64_t d = p.dim;
  if (d == 0) return;
  ScratchLease<C> s;
  for (int64_t n = begin; n < end; ++n) {
    const int64_t la = p.len_a[n], lb = p.len_b[n];
    const int64_t off_a = n * p.max_len_a * d, off_b = n * p.max_len_b * d;
    T *g_a = p.grad_a + off_a, *g_b = p.grad_b + off_b;
    if (la == 0 || lb == 0) {
      zero_rows(g_a, 0, p.max_len_a, d);
      zero_rows(g_b, 0, p.max_len_b, d);
      continue;
    }
    const C* a = rows_in<C>(p.a + off_a, la * d, s->a);
    const C* b = rows_in<C>(p.b + off_b, lb * d, s->b);
    const C* g_at = rows_in<C>(p.grad_a_tilde + off_a, la * d, s->grad_a_tilde);
    const C* g_bt = rows_in<C>(p.grad_b_tilde + off_b, lb * d, s->grad_b_tilde);
    C* out_a = rows_out<C>(g_a, la * d, s->out_a);
    C* out_b = rows_out<C>(g_b, lb * d, s->out_b);
    const int64_t area = la * lb;
    for (auto* v : {&s->rows, &s->cols, &s->d_rows, &s->d_cols, &s->d_scores}) sized(*v, area);
    C *rows = s->rows.data(), *cols = s->cols.data(), *d_scores = s->d_scores.data();
    C *d_rows = s->d_rows.data(), *d_cols = s->d_cols.data();
    const BlockWork<C> work(runtime, la, lb, d);
    alignment_probabilities(work, a, b, la, lb, d, rows, cols);
    work.dots(g_at, la, b, lb, d, d_rows);  // dP = gA~ B^T
    work.dots(a, la, g_bt, lb, d, d_cols);  // dQ = A gB~^T
    work.lines(la, lb, [&](int64_t i0, int64_t i1) {
      softmax_rows_backward(rows, d_rows, lb, i0, i1, d_scores);
    });
    work.lines(lb, la, [&](int64_t j0, int64_t j1) {
      softmax_columns_backward_add(cols, d_cols, la, lb, j0, j1, d_scores);
    });
    work.mix(d_scores, false, la, lb, b, d, out_a, false);  // dE B
    work.mix(cols, false, la, lb, g_bt, d, out_a, true);    // + Q gB~
    work.mix(d_scores, true, lb, la, a, d, out_b, false);   // dE^T A
    work.mix(rows, true, lb, la, g_at, d, out_b, true);     // + P^T gA~
    store_rows(out_a, g_a, la * d);
    store_rows(out_b, g_b, lb * d);
    zero_rows(g_a, la, p.max_len_a, d);
    zero_rows(g_b, lb, p.max_len_b, d);
  }
}

#define DYNBATCH_INSTANTIATE(T)                                                                  \
  template void soft_align_forward_cpu<T>(const SoftAlignForwardParams<T>&, int64_t, int64_t,     \
                                          const CpuRuntime<compute_t<T>>&);                        \
  template void soft_align_backward_cpu<T>(const SoftAlignBackwardParams<T>&, int64_t, int64_t,   \
                                           const CpuRuntime<compute_t<T>>&);
DYNBATCH_CPU_TYPES(DYNBATCH_INSTANTIATE)

}  // namespace dynbatch
