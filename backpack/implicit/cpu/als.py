"""implicit's ``implicit.cpu.als``: the CPU ALS model and its training loss."""

from backpack.implicit.als import AlternatingLeastSquares, calculate_loss

__all__ = ["AlternatingLeastSquares", "calculate_loss"]
