"""`python -m dynbatch_ext bench`: what the package buys, measured against the plain way in the
same run, with the machine and versions recorded beside every figure.

    command             the command line: options, the sections in order, results.json
    context             what a section is (Section) and is given (RunContext); --quick/--tiny
    sections/           one module per section, registered in sections/__init__.py
    tools/              commands beside it: markdown, probs_choice, profile_step, training_profile
    step_composition    `python -m dynbatch_ext.bench.step_composition`: the study of step
                        compositions over paired seeds (hours; not in the default run)
    length_cases        the batching cases (Case) and the user's --data
    long_sequences      the ops section's grid of batch sizes under one quadratic budget
    pair_paths          the ops section's step, computed each way
    reviews, seed_experiment_loader
                        the transformer section's data, and the seed experiment's own loader
    figures             plots, with matplotlib (the plot extra)
    environment, timing, targets: what every section records, how it times, how a target reads

A section returns a plain dict; `command` prints its table and writes results.json and plots.
"""
