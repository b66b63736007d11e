"""Peak tensor memory of a step: see dynbatch_ext.memory (shared with calibrate)."""
from dynbatch_ext.memory import peak_bytes, peak_cpu_tensor_bytes  # noqa: F401
