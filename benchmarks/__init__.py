"""The benchmark harness of dynbatch_ext (installed as `dynbatch_ext.benchmarks`).

Each module measures one thing against the pure numpy/PyTorch way in the same run and returns
plain dicts; `dynbatch_ext.bench` runs them, prints the table and writes results.json and plots.
"""
