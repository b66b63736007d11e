"""dynbatch_ext where people train: one module per framework, each importing that framework
only when it is imported itself (`import dynbatch_ext` imports none of them).

    hf           the HF Trainer (transformers 5.x, accelerate, datasets): BudgetTrainer,
                 dataset_lengths; pip install 'dynbatch_ext[hf]'
    lightning    Lightning 2.x: BudgetDataModule, BudgetedSteps; pip install 'dynbatch_ext[lightning]'
    accelerate   prepare_loader: a budgeted loader in a plain accelerate loop
    step_loader  one optimizer step per DataLoader item, which hf and lightning build on (no
                 framework)
"""
