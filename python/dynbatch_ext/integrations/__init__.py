"""dynbatch_ext where people train: one module per framework, each importing that framework
only when it is imported itself (`import dynbatch_ext` imports none of them).

    hf         the HF Trainer (transformers 5.x, accelerate, datasets): BudgetTrainer,
               dataset_lengths; pip install 'dynbatch_ext[hf]'
"""
