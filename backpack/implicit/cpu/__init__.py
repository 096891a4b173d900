"""implicit's ``implicit.cpu`` namespace (ported code calls ``implicit.cpu.als.calculate_loss``)."""

from backpack.implicit.cpu import als

__all__ = ["als"]
