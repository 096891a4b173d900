"""`backpack serve` argument handling (its serving is tested through a subprocess in test_server_kill)."""

from __future__ import annotations

from backpack.cli.main import main


def test_serve_refuses_a_remote_address_without_allow_remote(tmp_path, capsys):
    assert main(["--data-dir", str(tmp_path), "serve", "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "--allow-remote" in capsys.readouterr().err


def test_serve_starts_from_what_the_cli_imported_and_fitted(tmp_path, capsys):
    """`backpack import` + `backpack fit` then `backpack serve`: the server answers from that state."""
    import numpy as np

    from backpack import Engine
    from backpack.serving.client import Client
    from backpack.serving.loop import ServerThread
    from backpack.serving.server import open_server
    from backpack.store.base import default_store_path, open_store

    data = tmp_path / "data"
    rng = np.random.default_rng(0)
    rows = [(f"u{rng.integers(40)}", f"https://ex.org/item/{rng.integers(30)}") for _ in range(400)]
    (tmp_path / "log.csv").write_text("user,item\n" + "\n".join(f"{u},{i}" for u, i in rows) + "\n")
    assert main(["import", str(tmp_path / "log.csv"), "--data-dir", str(data), "--no-progress"]) == 0
    assert main(["fit", "itemknn", "--data-dir", str(data), "--no-progress"]) == 0
    capsys.readouterr()
    expected = Engine.open(data).recommend("u3", 5)
    with open_store("sqlite", path=default_store_path(data)) as store:
        _, secret = store.create_token("admin")
    with ServerThread(open_server(data, port=0)) as running:
        with Client(running.server.address, token=secret) as client:
            assert client.recommend("u3", 5) == expected
            assert client.stats()["interactions"] == len(set(rows))
