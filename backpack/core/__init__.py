"""The C++ core (``_core``) and the in-memory state it owns.

Bags, timestamps, item kinds, descriptions, dense top-k, progress, atomic files. Only this
subpackage and ``backpack.algorithms`` import the extension module.
"""
