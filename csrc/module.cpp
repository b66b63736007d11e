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
#include "core/lengths.hpp"
#include "core/epoch_plan.hpp"
#include "core/stream_batcher.hpp"

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

// A dynbatch_ext.batching.PlanOptions, whose fields are checked and normalised in Python, read
// field by field into the core's PlanOptions.
PlanOptions to_plan_options(const py::handle& options, uint64_t epoch) {
  PlanOptions out;
  out.budget = options.attr("budget").cast<double>();
  out.cost = make_cost(options.attr("cost").attr("coefficients"));
  out.pad_multiple = options.attr("pad_multiple").cast<int64_t>();
  const py::object max_batch_size = options.attr("max_batch_size");
  out.max_batch_size = max_batch_size.is_none() ? 0 : max_batch_size.cast<int64_t>();
  const py::object policies =
      py::module_::import("dynbatch_ext._C").attr("Oversize").attr("__members__");
  out.oversize = policies[options.attr("oversize")].cast<OversizePolicy>();
  out.shuffle = options.attr("shuffle").cast<bool>();
  out.seed = options.attr("seed").cast<uint64_t>();
  out.epoch = epoch;
  out.padding_noise = options.attr("padding_noise").cast<double>();
  out.batch_overhead = options.attr("batch_overhead").cast<double>();
  out.num_replicas = options.attr("num_replicas").cast<int64_t>();
  out.drop_last = options.attr("drop_last").cast<bool>();
  return out;
}

py::dict plan(const Int64Array& lengths, const py::handle& options, uint64_t epoch) {
  const LengthsView view = view_lengths(lengths);
  const PlanOptions settings = to_plan_options(options, epoch);
  BatchPlan result;
  {
    py::gil_scoped_release release;
    result = plan_batches(view, settings);
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

// A dynbatch_ext.batching.steps.StepOptions, checked in Python, read field by field.
EpochStepOptions to_step_options(const py::handle& steps) {
  EpochStepOptions out;
  out.target = steps.attr("target").cast<double>();
  const std::string unit = steps.attr("unit").cast<std::string>();
  out.unit = unit == "tokens" ? StepUnit::kTokens : StepUnit::kSamples;
  const py::object room = steps.attr("max_micro_batches");
  out.max_micro_batches = room.is_none() ? 0 : room.cast<int64_t>();
  const std::string composition = steps.attr("composition").cast<std::string>();
  out.composition = composition == "random"   ? Composition::kRandom
                    : composition == "pooled" ? Composition::kPooled
                                              : Composition::kSorted;
  out.pool_steps = steps.attr("pool_steps").cast<int64_t>();
  return out;
}

py::dict plan_epoch_steps(const Int64Array& lengths, const py::handle& options,
                          const py::handle& steps, uint64_t epoch) {
  const LengthsView view = view_lengths(lengths);
  const PlanOptions settings = to_plan_options(options, epoch);
  const EpochStepOptions grouping = to_step_options(steps);
  EpochPlan result;
  {
    py::gil_scoped_release release;
    result = plan_epoch(view, settings, grouping);
  }
  py::dict out;
  out["indices"] = to_numpy(std::move(result.batches.indices));
  out["offsets"] = to_numpy(std::move(result.batches.offsets));
  out["costs"] = to_numpy(std::move(result.batches.costs));
  out["skipped"] = to_numpy(std::move(result.batches.skipped));
  out["dropped"] = to_numpy(std::move(result.batches.dropped));
  out["step_offsets"] = to_numpy(std::move(result.step_offsets));
  out["step_totals"] = to_numpy(std::move(result.step_totals));
  return out;
}

StreamOptions to_stream_options(const py::handle& options, uint64_t epoch, int64_t buffer_size,
                                double keep_below, const py::handle& steps) {
  StreamOptions out{to_plan_options(options, epoch), buffer_size, keep_below};
  if (!steps.is_none()) out.steps = to_step_options(steps);
  return out;
}

// The streaming batcher for dynbatch_ext.batching.stream, which checks the options first.
class PyStreamBatcher {
 public:
  PyStreamBatcher(int num_fields, const py::handle& options, uint64_t epoch, int64_t buffer_size,
                  double keep_below, const py::handle& steps)
      : batcher_(num_fields, to_stream_options(options, epoch, buffer_size, keep_below, steps)),
        num_fields_(num_fields) {}

  void push(const Int64Array& ids, const Int64Array& lengths) {
    const int64_t count = ids.ndim() == 1 ? ids.shape(0) : -1;
    const bool shaped = num_fields_ == 1 ? lengths.ndim() == 1 && lengths.shape(0) == count
                                         : lengths.ndim() == 2 && lengths.shape(0) == count &&
                                               lengths.shape(1) == 2;
    if (!shaped)
      throw std::invalid_argument(num_fields_ == 1
                                      ? "ids must be (n,) and lengths (n,) for single texts"
                                      : "ids must be (n,) and lengths (n, 2) for pairs");
    py::gil_scoped_release release;
    batcher_.push(ids.data(), lengths.data(), count);
  }

  void finish() {
    py::gil_scoped_release release;
    batcher_.finish();
  }

  py::dict take() {
    StreamBatches batches = batcher_.take();
    py::dict out;
    out["ids"] = to_numpy(std::move(batches.ids));
    out["offsets"] = to_numpy(std::move(batches.offsets));
    out["costs"] = to_numpy(std::move(batches.costs));
    out["skipped"] = to_numpy(std::move(batches.skipped));
    out["step_offsets"] = to_numpy(std::move(batches.step_offsets));
    return out;
  }

  int64_t buffered() const { return batcher_.buffered(); }

  py::dict state() const {
    const StreamState& state = batcher_.state();
    py::dict out;
    out["ids"] = to_numpy(std::vector<int64_t>(state.ids));
    out["lengths"] = to_numpy(std::vector<int64_t>(state.lengths));
    out["waited"] = to_numpy(std::vector<uint8_t>(state.waited));
    out["fills"] = state.fills;
    return out;
  }

  void restore(const py::dict& saved) {
    auto vector_of = [&](const char* key, auto type) {
      using T = decltype(type);
      const auto values = py::array_t<T, py::array::c_style | py::array::forcecast>(saved[key]);
      return std::vector<T>(values.data(), values.data() + values.size());
    };
    StreamState state;
    state.ids = vector_of("ids", int64_t{});
    state.lengths = vector_of("lengths", int64_t{});
    state.waited = vector_of("waited", uint8_t{});
    state.fills = saved["fills"].cast<uint64_t>();
    batcher_.restore(std::move(state));
  }

 private:
  StreamBatcher batcher_;
  int num_fields_;
};

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "dynbatch_ext compiled core: budgeted length bucketing (and torch ops)";
  py::enum_<OversizePolicy>(m, "Oversize", "What plan_batches does with a sample over budget.")
      .value("error", OversizePolicy::kError)
      .value("alone", OversizePolicy::kAlone)
      .value("skip", OversizePolicy::kSkip);
  m.def("plan_batches", &plan, py::arg("lengths"), py::arg("options"), py::arg("epoch"),
        "Plans batches in round order; see dynbatch_ext.plan_batches.");
  m.def("describe_batches", &describe, py::arg("lengths"), py::arg("indices"),
        py::arg("offsets"), py::arg("cost"), py::arg("pad_multiple"),
        "Per-batch sizes, padded shapes, tokens and costs; see dynbatch_ext.padding_stats.");
  m.def("plan_epoch", &plan_epoch_steps, py::arg("lengths"), py::arg("options"),
        py::arg("steps"), py::arg("epoch"),
        "Plans an epoch's micro-batches in optimizer-step order; see dynbatch_ext.plan_steps.");
  m.def(
      "epoch_order",
      [](int64_t count, const py::handle& options, uint64_t epoch) {
        return to_numpy(epoch_order(count, to_plan_options(options, epoch)));
      },
      py::arg("count"), py::arg("options"), py::arg("epoch"),
      "The epoch's random order of samples that random and pooled steps are cut from.");
  py::class_<PyStreamBatcher>(m, "StreamBatcher",
                              "Budgeted batches from a stream; see dynbatch_ext.batching.stream.")
      .def(py::init<int, const py::handle&, uint64_t, int64_t, double, const py::handle&>(),
           py::arg("num_fields"), py::arg("options"), py::arg("epoch"), py::arg("buffer_size"),
           py::arg("keep_below"), py::arg("steps") = py::none())
      .def("push", &PyStreamBatcher::push, py::arg("ids"), py::arg("lengths"))
      .def("finish", &PyStreamBatcher::finish)
      .def("take", &PyStreamBatcher::take)
      .def_property_readonly("buffered", &PyStreamBatcher::buffered)
      .def("state", &PyStreamBatcher::state)
      .def("restore", &PyStreamBatcher::restore, py::arg("state"));
  m.def("with_cuda", []() { return DYNBATCH_WITH_CUDA != 0; },
        "Whether this build holds the CUDA kernels.");
  m.attr("__version__") = DYNBATCH_VERSION;
  m.attr("MAX_LENGTH") = kMaxLength;
}
