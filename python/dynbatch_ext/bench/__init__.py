"""`python -m dynbatch_ext bench`: what the package buys, measured against the plain way in the
same run, with the machine and versions recorded beside every figure.

    command             the command line: options, the sections in order, results.json
    tables              each section's results as a text table
    batch_quality       "batching": planning speed and batch quality against fixed batches
    op_speed            "ops": the fused ops against eager, compiled and SDPA PyTorch
    esim_training       "training": ESIM trained on budgeted steps against the common baseline
    transformer_training  "transformer": the seed experiment, a small BERT on long-tailed
                        reviews through the HF Trainer (reviews, seed_loader: its data and loader)
    calibrated_budgets  "calibration": peak memory per step at calibrated budgets
    streaming           "streaming": batches of a stream against the in-memory plan
    long_sequences      the ops section's grid of batch sizes under one quadratic budget
    pair_paths          the ops section's step, computed each way
    step_composition    `python -m dynbatch_ext.bench.step_composition`: the study of step
                        compositions over paired seeds (hours; not in the default run)
    figures             plots, with matplotlib (the plot extra)
    environment, timing, targets: what every section records and how it times
    markdown            `python -m dynbatch_ext.bench.markdown RESULTS.json`: README tables
    probs_choice        times csrc/bench/soft_align_probs.cu (a GPU run's `probs` step)
    profile_step        one ops step at a batch size, for Nsight Compute
    training_profile    where an ESIM training step spends its time

Each section module returns plain dicts; `command` prints them and writes results.json and plots.
"""
