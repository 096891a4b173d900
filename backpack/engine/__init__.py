"""The Engine facade (`backpack.Engine`), its results, its content side, and its data directory."""
