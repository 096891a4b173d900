"""`backpack serve` argument handling (its serving is tested through a subprocess in test_server_kill)."""

from __future__ import annotations

from backpack.cli import main


def test_serve_refuses_a_remote_address_without_allow_remote(tmp_path, capsys):
    assert main(["--data-dir", str(tmp_path), "serve", "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "--allow-remote" in capsys.readouterr().err
