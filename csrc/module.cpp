// The compiled module: the numpy-facing batching API, the version and the build's CUDA flag.
// Torch ops register themselves from their own files (csrc/ops) through static initialisers.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/batch_plan.hpp"
#include "core/batch_stats.hpp"
#include "core/step_plan.hpp"

namespace py = pybind11;
using namespace dynbatch;

namespace {

// Hands a vector to numpy without copying: the array owns it through a capsule.
template <typename T>
py::array_t<T> to_numpy(std::vector<T>&& values) {
  auto* owned = new std::vector<T>(std::move(values));
  py::capsule release(owned, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>({static_cast<py::ssize_t>(owned->size())}, owned->data(), release);
}

using Int64Array = py::array_t<int64_t, py::array::c_style>;

LengthsView view_lengths(const Int64Array& lengths) {
  if (lengths.ndim() != 1 && lengths.ndim() != 2)
    throw std::invalid_argument("lengths must have shape (N,) or (N, 2)");
  LengthsView view;
  view.data = lengths.data();
  view.num_samples = lengths.shape(0);
  view.num_fields = lengths.ndim() == 1 ? 1 : static_cast<int>(lengths.shape(1));
  return view;
}

CostModel make_cost(const py::tuple& coefficients) {
  if (coefficients.size() != 3)
    throw std::invalid_argument("cost must be a (const, linear, quadratic) tuple");
  return CostModel{coefficients[0].cast<double>(), coefficients[1].cast<double>(),
                   coefficients[2].cast<double>()};
}

OversizePolicy parse_oversize(const std::string& name) {
  if (name == "error") return OversizePolicy::kError;
  if (name == "alone") return OversizePolicy::kAlone;
  if (name == "skip") return OversizePolicy::kSkip;
  throw std::invalid_argument("oversize must be 'error', 'alone' or 'skip', got '" + name + "'");
}

py::dict plan(const Int64Array& lengths, double budget, const py::tuple& cost,
              int64_t pad_multiple, int64_t max_batch_size, const std::string& oversize,
              bool shuffle, uint64_t seed, uint64_t epoch, double padding_noise,
              double batch_overhead, int64_t num_replicas, bool drop_last) {
  const LengthsView view = view_lengths(lengths);
  PlanOptions options;
  options.budget = budget;
  options.cost = make_cost(cost);
  options.pad_multiple = pad_multiple;
  options.max_batch_size = max_batch_size;
  options.oversize = parse_oversize(oversize);
  options.shuffle = shuffle;
  options.seed = seed;
  options.epoch = epoch;
  options.padding_noise = padding_noise;
  options.batch_overhead = batch_overhead;
  options.num_replicas = num_replicas;
  options.drop_last = drop_last;
  BatchPlan result;
  {
    py::gil_scoped_release release;
    result = plan_batches(view, options);
  }
  py::dict out;
  out["indices"] = to_numpy(std::move(result.indices));
  out["offsets"] = to_numpy(std::move(result.offsets));
  out["costs"] = to_numpy(std::move(result.costs));
  out["skipped"] = to_numpy(std::move(result.skipped));
  out["dropped"] = to_numpy(std::move(result.dropped));
  return out;
}

py::dict describe(const Int64Array& lengths, const Int64Array& indices,
                  const Int64Array& offsets, const py::tuple& cost, int64_t pad_multiple) {
  if (indices.ndim() != 1 || offsets.ndim() != 1)
    throw std::invalid_argument("indices and offsets must be 1-D");
  const LengthsView view = view_lengths(lengths);
  const CostModel model = make_cost(cost);
  BatchStats stats;
  {
    py::gil_scoped_release release;
    stats = describe_batches(view, indices.data(), indices.shape(0), offsets.data(),
                             offsets.shape(0), model, pad_multiple);
  }
  py::dict out;
  out["sizes"] = to_numpy(std::move(stats.sizes));
  out["padded_first"] = to_numpy(std::move(stats.padded_first));
  out["padded_second"] = to_numpy(std::move(stats.padded_second));
  out["real_tokens"] = to_numpy(std::move(stats.real_tokens));
  out["padded_tokens"] = to_numpy(std::move(stats.padded_tokens));
  out["costs"] = to_numpy(std::move(stats.costs));
  return out;
}

py::dict steps(const py::array_t<double, py::array::c_style>& weights, double target,
            int64_t max_micro_batches, int64_t num_replicas, bool shuffle, uint64_t seed,
            uint64_t epoch) {
  if (weights.ndim() != 1) throw std::invalid_argument("batch weights must be 1-D");
  StepOptions options;
  options.target = target;
  options.max_micro_batches = max_micro_batches;
  options.num_replicas = num_replicas;
  options.shuffle = shuffle;
  options.seed = seed;
  options.epoch = epoch;
  StepPlan result;
  {
    py::gil_scoped_release release;
    result = plan_steps(weights.data(), weights.shape(0), options);
  }
  py::dict out;
  out["micro_steps"] = to_numpy(std::move(result.micro_steps));
  out["offsets"] = to_numpy(std::move(result.offsets));
  out["totals"] = to_numpy(std::move(result.totals));
  return out;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "dynbatch_ext compiled core: budgeted length bucketing (and torch ops)";
  m.def("plan_batches", &plan, py::arg("lengths"), py::arg("budget"), py::arg("cost"),
        py::arg("pad_multiple"), py::arg("max_batch_size"), py::arg("oversize"),
        py::arg("shuffle"), py::arg("seed"), py::arg("epoch"), py::arg("padding_noise"),
        py::arg("batch_overhead"), py::arg("num_replicas"), py::arg("drop_last"),
        "Plans batches in step order; see dynbatch_ext.plan_batches.");
  m.def("describe_batches", &describe, py::arg("lengths"), py::arg("indices"),
        py::arg("offsets"), py::arg("cost"), py::arg("pad_multiple"),
        "Per-batch sizes, padded shapes, tokens and costs; see dynbatch_ext.padding_stats.");
  m.def("plan_steps", &steps, py::arg("weights"), py::arg("target"),
        py::arg("max_micro_batches"), py::arg("num_replicas"), py::arg("shuffle"),
        py::arg("seed"), py::arg("epoch"),
        "Groups micro-batches into steps of about equal weight; see dynbatch_ext.plan_steps.");
  m.def("with_cuda", []() { return DYNBATCH_WITH_CUDA != 0; },
        "Whether this build holds the CUDA kernels.");
  m.attr("__version__") = DYNBATCH_VERSION;
}
