"""torchkata: ten advanced PyTorch tips as exact components, recipes and an executable FAQ."""

__version__ = "0.1.0"
