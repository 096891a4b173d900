"""Backpack's built-in plugins.

Each module here is a plugin registered through the entry-point group
``backpack`` in Backpack's ``pyproject.toml``, the same way a third-party
package registers its own: the built-ins prove the hooks are enough.
"""
