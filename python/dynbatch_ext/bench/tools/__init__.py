"""Commands beside `bench`, each `python -m dynbatch_ext.bench.tools.<name>`:

    markdown           the ops section of a results.json as the README's Markdown tables
    probs_choice       times csrc/bench/soft_align_probs.cu (a GPU run's `probs` step)
    profile_step       one ops step at a batch size, for Nsight Compute
    training_profile   where an ESIM or a transformer training step spends its time
"""
