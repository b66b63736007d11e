"""Modules built on the fused ops (or, with fused=False, on the pure PyTorch references)."""
from .esim import ESIM
from .layers import EnhancedProjection, MaskedPooling, SoftAlignment

__all__ = ["ESIM", "EnhancedProjection", "MaskedPooling", "SoftAlignment"]
