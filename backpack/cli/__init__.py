"""The `backpack` command: its sub-commands, one module per group."""
