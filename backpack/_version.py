"""The package version, in one place (the face and the protocol's hello both report it)."""

__version__ = "0.1.0"
