"""The bench's results as text tables, one per section, printed as each section ends."""
from __future__ import annotations

from . import long_sequences


def target_line(name: str, t: dict, digits: int = 3, unit: str = "") -> str:
    verdict = "met" if t["met"] else "MISSED"
    return f"  target {name} {t['op']} {t['value']}{unit}: {t['measured']:.{digits}f}{unit} ({verdict})"


def batching_table(batching: dict) -> str:
    planning = batching["planning"]
    spread = planning["ratio_per_repeat"]
    noise = (" (the repeats straddle 1.00: within this machine's run-to-run noise)"
             if spread["min"] <= 1.0 <= spread["max"] else "")  # fmt: skip
    lines = [
        f"Planning {planning['num_lengths']:,} lengths (quadratic cost, shuffled): "
        f"plan_batches {planning['plan_seconds']:.3f} s vs numpy stable argsort "
        f"{planning['argsort_seconds']:.3f} s -> {planning['plan_over_argsort']:.2f}x the sort, median of "
        f"{planning['repeats']} alternating repeats (each repeat {spread['min']:.2f}-{spread['max']:.2f}x) "
        f"(target <= 1.00: {'met' if planning['target']['met'] else 'MISSED'}){noise}",
        "",
        "  efficiency: real / padded tokens; batches: how many; cost max/med and max/min: the",
        "  costliest batch over the median one and over the cheapest (1 = every batch costs the same);",
        "  over budget: batches costing more than the budget.",
        "",
    ]
    header = f"  {'strategy':<28}{'efficiency':>11}{'batches':>9}{'cost max/med':>14}{'max/min':>9}{'over budget':>13}"
    for case in batching["cases"]:
        title = f"{case['case']}: {case['num_samples']:,} samples, budget {case['budget']:,.0f} ({case['cost']})"
        if case["samples_left_out"]:
            title += f", {case['samples_left_out']} left out (alone over budget)"
        lines += [title, header]
        for name, s in case["strategies"].items():
            spread = "-" if s["cost_max_over_min"] is None else f"{s['cost_max_over_min']:.1f}"
            lines.append(
                f"  {name:<28}{s['efficiency']:>11.3f}{s['num_batches']:>9}"
                f"{s['cost_max_over_median']:>14.2f}{spread:>9}{s['batches_over_budget']:>13}"
            )
        lines += [target_line(metric, t) for metric, t in case["targets"].items()]
        if case["note"]:
            lines.append(f"  ({case['note']})")
        lines.append("")
    lines += [f"note: {n}" for n in batching["notes"]]
    return "\n".join(lines)


def ops_table(ops: dict) -> str:
    lines = []
    if ops["copy_bandwidth_bytes_per_second"]:
        lines.append(f"Device copy bandwidth: {ops['copy_bandwidth_bytes_per_second'] / 1e12:.2f} TB/s "
                     "(read + write); floor = every op's inputs read once, outputs written once")  # fmt: skip
    for section in ops["sections"]:
        first = section["batches"][0]
        lines += [
            f"Ops: soft_align + masked_pool, forward + backward, d={ops['dim']}, "
            f"{section['dtype'].split('.')[-1]}, {ops['device']} (lengths from {first['lengths_from']})",
            f"  {'B':>5} {'padded La x Lb':>15}" + "".join(f"{name:>20}" for name in first["paths"])
            + (f"{'x floor':>10}" if "fused_over_floor" in first else ""),
        ]
        for r in section["batches"]:
            shape = f"{r['padded_shape_a'][1]} x {r['padded_shape_b'][1]}"
            cells = []
            for name, path in r["paths"].items():
                ratio = "" if name == "fused" else f" ({r['speedup_of_fused'][name]:.1f}x)"
                cells.append(f"{path['seconds'] * 1e3:.2f} ms{ratio}")
            floor = f"{r['fused_over_floor']:>10.1f}" if "fused_over_floor" in r else ""
            lines.append(f"  {r['batch']:>5} {shape:>15}" + "".join(f"{c:>20}" for c in cells) + floor)
            peaks = "".join(f"{path['peak_bytes'] / 2**20:>16.1f} MiB" for path in r["paths"].values())
            lines.append(f"  {'':>5} {'peak memory':>15}{peaks}")
        lines.append("  (x) = how many times longer than fused")
        lines += [target_line(f"fused {name}", t, 2, "x") for name, t in section["targets"].items()]
        lines.append("")
    if "long_sequences" in ops:
        lines.append(long_sequences.table(ops["long_sequences"]))
    return "\n".join(lines)


def training_table(section: dict) -> str:
    lines = ["ESIM training: samples/s of training steps, validation accuracy after the same epochs"]
    for case in section["cases"]:
        lines += [
            f"{case['case']}: {case['train_pairs']:,} training / {case['valid_pairs']:,} validation "
            f"pairs, d={case['dims']}, {case['epochs']} epoch(s), {section['device']}",
            f"  {'configuration':<42}{'samples/s':>10}{'accuracy':>10}{'steps':>7}"
            f"{'samples/step min-med-max':>27}{'loss noise':>12}{'real/padded':>13}",
        ]
        for name, r in case["runs"].items():
            per = r["samples_per_step"]
            spread = f"{per['min']}-{per['median']:.0f}-{per['max']}"
            lines.append(f"  {name:<42}{r['samples_per_second']:>10.0f}{r['valid_accuracy']:>10.3f}"
                         f"{r['steps']:>7}{spread:>27}{r['loss_noise']:>12.3f}"
                         f"{r['padding_efficiency']:>13.2f}")  # fmt: skip
        lines += [target_line(name, t, 2) for name, t in case["targets"].items()]
        # Where time follows padded tokens, removing padding gives this much and no more.
        lines.append(f"  ceiling from padding alone: {case['padded_tokens_a_over_b']:.2f}x "
                     "((a)'s padded tokens per sample over (b)'s)")  # fmt: skip
        lines.append("")
    lines += [f"note: {n}" for n in section["notes"]]
    return "\n".join(lines) + "\n"


def calibration_table(section: dict) -> str:
    lines = ["Calibrated budgets: peak memory of every step of one epoch, as a fraction of the limit "
             f"({section['device']})"]  # fmt: skip
    for case in section["cases"]:
        fit = case["fit"]
        lines += [
            f"{case['case']}: {case['num_samples']:,} samples, limit "
            f"{case['memory_limit'] / 2**20:.0f} MiB; the fit misses the budget's own batches by "
            f"{fit['verification_error']:.1%} of the limit (its small probes by up to "
            f"{fit['max_relative_error']:.0%} of their peaks)",
            f"  {'strategy':<22}{'steps':>7}{'max':>8}{'median':>8}{'min':>8}{'max/min':>9}{'over limit':>12}",
        ]
        for name, r in case["strategies"].items():
            lines.append(f"  {name:<22}{r['steps']:>7}{r['max']:>8.2f}{r['median']:>8.2f}"
                         f"{r['min']:>8.2f}{r['max'] / r['min']:>9.1f}{r['over_limit']:>12}")  # fmt: skip
        lines += [target_line(name, t, 2) for name, t in case["targets"].items()]
        lines.append("")
    return "\n".join(lines)


def transformer_table(section: dict) -> str:
    model = section["model"]
    lines = [
        f"Transformer training (the seed experiment): {section['data']}, "
        f"{section['train_reviews']:,} training / {section['held_out_reviews']:,} held-out reviews, "
        f"BERT {model['layers']} layers x {model['hidden']}, cut at {model['max_tokens']} tokens, "
        f"{section['epochs']} epoch(s), budget {section['budget']:,} (B*L**2)",
        f"  {'way of training':<42}{'samples/s':>10}{'accuracy':>10}{'steps':>7}"
        f"{'samples/step min-med-max':>26}{'over budget':>13}{'peak MiB max/med/min':>23}",
    ]
    for name, r in section["runs"].items():
        per, peak = r["samples_per_step"], r["peak_memory_bytes"]
        spread = f"{per['min']}-{per['median']:.0f}-{per['max']}"
        peaks = "/".join(f"{peak[k] / 2**20:.0f}" for k in ("max", "median", "min"))
        over = f"{r['over_budget']}/{r['micro_batches']}"
        lines.append(f"  {name:<42}{r['samples_per_second']:>10.0f}{r['accuracy']:>10.3f}"
                     f"{r['steps']:>7}{spread:>26}{over:>13}{peaks:>23}")  # fmt: skip
    lines += [target_line(name, t, 2) for name, t in section["targets"].items()]
    lines += [f"note: {n}" for n in section["notes"]]
    return "\n".join(lines) + "\n"


def streaming_table(section: dict) -> str:
    lines = [f"Batches from a stream (bucket_stream, buffer {section['buffer']:,} samples unless "
             "said): padding efficiency against the in-memory plan at the same budget"]  # fmt: skip
    header = (f"  {'strategy':<36}{'efficiency':>11}{'/ in-memory':>13}{'batches':>9}"
              f"{'over budget':>13}{'missing/repeated':>18}")  # fmt: skip
    for case in section["cases"]:
        lines += [f"{case['case']}: {case['num_samples']:,} samples, budget {case['budget']:,}", header]
        for name, r in case["rows"].items():
            lines.append(f"  {name:<36}{r['efficiency']:>11.3f}{r['efficiency_over_ceiling']:>13.3f}"
                         f"{r['num_batches']:>9}{r['batches_over_budget']:>13}"
                         f"{str(r['samples_missing']) + '/' + str(r['samples_repeated']):>18}")  # fmt: skip
        lines += [target_line(name, t, 3) for name, t in case["targets"].items()]
        lines.append("")
    speed = section["throughput"]
    peaks = ", ".join(f"{int(n):,}: {b / 2**20:.1f} MiB" for n, b in speed["stream_memory_bytes"].items())
    lines += [f"Streaming {speed['num_lengths']:,} synthetic lengths (chunks of {speed['chunk']:,}, "
              f"lengths only): {speed['samples_per_second'] / 1e6:.2f} M samples/s; resident "
              f"memory the stream takes, by its length: {peaks}"]  # fmt: skip
    lines += [target_line(name, t, 2) for name, t in speed["targets"].items()]
    lines += [f"note: {n}" for n in section["notes"]]
    return "\n".join(lines) + "\n"


# The table of each section of `bench --sections`.
TABLES = {"batching": batching_table, "streaming": streaming_table, "ops": ops_table,
          "training": training_table, "transformer": transformer_table,
          "calibration": calibration_table}  # fmt: skip
