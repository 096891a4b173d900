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
