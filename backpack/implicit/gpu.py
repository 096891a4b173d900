"""implicit's ``implicit.gpu`` switch: Backpack has no CUDA build, so GPU models are never available.

``use_gpu=True`` anywhere in :mod:`backpack.implicit` raises
:class:`~backpack.errors.UnsupportedOptionError` (a ``ValueError``, as implicit raises without CUDA).
"""

HAS_CUDA = False
HAS_RMM = False
