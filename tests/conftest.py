import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).parent))


def random_user_items(n_users: int, n_items: int, density: float, seed: int, *, integer: bool = False) -> sp.csr_matrix:
    """A random users x items matrix with positive weights."""
    rng = np.random.default_rng(seed)
    m = sp.random(n_users, n_items, density=density, format="csr", dtype=np.float32, random_state=rng)
    m.data = (np.floor(m.data * 4) + 1 if integer else m.data * 5 + 0.1).astype(np.float32)
    return m


@pytest.fixture
def user_items() -> sp.csr_matrix:
    return random_user_items(120, 60, 0.08, seed=7)


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test that made it (JSON-LD must stay offline)."""

    def refuse(*args, **kwargs):
        pytest.fail(f"tried to use the network: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def vocabulary_plugins(*sample_modules):
    """A plugin manager with the built-in vocabularies plugin and ``plugin_samples`` modules, via entry points."""
    import importlib.metadata as metadata

    from backpack import Plugins

    plugins = Plugins(load_entry_points=False)
    eps = [metadata.EntryPoint("vocabularies", "backpack_plugins.vocabularies", "backpack")]
    eps += [metadata.EntryPoint(m, f"plugin_samples.{m}", "backpack") for m in sample_modules]
    plugins.load_entry_points(eps)
    return plugins


@pytest.fixture(scope="module")
def jsonld_loader():
    """A context loader over the bundled vocabularies only."""
    from backpack.jsonld.loader import ContextLoader

    return ContextLoader(vocabulary_plugins())
