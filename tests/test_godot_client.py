"""The GDScript side of the Godot addon, checked without Godot.

The scripts must parse and lint (gdtoolkit); the requests BackpackClient
builds must have the shapes docs/protocol.md documents; every error code it
names must be documented; and the exchange docs/godot.md says the client has
with a server ("What the GDScript client sends") is replayed here, frame by
frame, against a real `backpack serve` subprocess.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from test_protocol import documented_examples, matches

from backpack.serving.client import Client
from backpack.serving.protocol import decode_body, encode_frame, recv_frame

REPO = Path(__file__).resolve().parents[1]
ADDON = REPO / "godot_addon" / "addons" / "backpack"
DEMO = REPO / "examples" / "godot_demo"
CLIENT = ADDON / "backpack_client.gd"
ERRORS = ADDON / "backpack_error.gd"
PROTOCOL = REPO / "docs" / "protocol.md"
GODOT_DOC = REPO / "docs" / "godot.md"

# One request per line: `_request("op", {...})`, the args as a Dictionary literal.
REQUEST = re.compile(r'_request\("(?P<op>\w+)", (?P<args>\{.*?\})(?:, \w+)?\)\s*$', re.MULTILINE)
KEY = re.compile(r'"(\w+)":')
SEQUENCE = re.compile(r"<!-- sequence: godot-client -->\s*```json\n(?P<body>.*?)```", re.DOTALL)
PYTHON_CLIENT_METHODS = [
    "hello",
    "add_interactions",
    "add_interaction",
    "remove_interactions",
    "put_items",
    "ingest",
    "recommend",
    "recommend_batch",
    "recommend_bag",
    "similar_items",
    "fit",
    "job_status",
    "stats",
    "snapshot",
]


def gd_tool(name: str) -> str:
    exe = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert exe, f"{name} (gdtoolkit) is not installed"
    return exe


def client_requests() -> list[tuple[str, set[str]]]:
    """(op, argument keys) of every request literal in backpack_client.gd."""
    return [(m["op"], set(KEY.findall(m["args"]))) for m in REQUEST.finditer(CLIENT.read_text())]


def documented_keys() -> dict[str, list[set[str]]]:
    """op -> the argument key sets of its documented example requests (without a request-level token)."""
    found: dict[str, list[set[str]]] = {}
    for _, example in documented_examples():
        request = example["request"]
        if "args" in request:
            found.setdefault(request["op"], []).append(set(request["args"]))
    return found


def table_keys() -> dict[str, set[str]]:
    """op -> every argument the Operations table names for it (optional ones end in ? there)."""
    text = PROTOCOL.read_text()
    table = text[text.index("| op | args | result |") : text.index("Writes are durable")]
    keys = {}
    for row in table.splitlines()[2:]:
        cells = row.split("|")
        if len(cells) > 3:
            for op in re.findall(r"`(\w+)`", cells[1]):
                keys[op] = {k.rstrip("?") for k in re.findall(r"`([\w@]+\??)`", cells[2])}
    return keys


def documented_sequence() -> list[dict]:
    match = SEQUENCE.search(GODOT_DOC.read_text())
    assert match, "docs/godot.md lost its <!-- sequence: godot-client --> block"
    return json.loads(match["body"])


# -- the scripts -------------------------------------------------------------------


def test_addon_and_demo_scripts_exist_parse_and_lint():
    files = sorted(ADDON.rglob("*.gd")) + sorted(DEMO.rglob("*.gd"))
    names = {p.name for p in files}
    assert {"plugin.gd", "backpack_client.gd", "backpack_error.gd", "backpack_dock.gd", "main.gd"} <= names
    for path in files:
        for tool in ("gdparse", "gdlint"):
            done = subprocess.run([gd_tool(tool), str(path)], check=False, capture_output=True, text=True)
            assert done.returncode == 0, f"{tool} {path}:\n{done.stdout}{done.stderr}"


def test_gdlint_would_catch_a_broken_script(tmp_path):
    bad = tmp_path / "bad.gd"
    bad.write_text("extends Node\nfunc BadName():\n\tpass\n")
    assert subprocess.run([gd_tool("gdlint"), str(bad)], capture_output=True).returncode != 0


def test_plugin_wires_the_dock_scene_and_scripts_are_typed_where_public():
    cfg = (ADDON / "plugin.cfg").read_text()
    assert 'script="plugin.gd"' in cfg
    plugin = (ADDON / "plugin.gd").read_text()
    assert plugin.startswith("@tool\nextends EditorPlugin")
    assert "backpack_dock.tscn" in plugin and (ADDON / "backpack_dock.tscn").is_file()
    dock_scene = (ADDON / "backpack_dock.tscn").read_text()
    assert 'path="res://addons/backpack/backpack_dock.gd"' in dock_scene
    # every %Name the dock script uses is a unique node of its scene
    used = set(re.findall(r"%([A-Z]\w*)", (ADDON / "backpack_dock.gd").read_text()))
    unique = set(re.findall(r'\[node name="(\w+)"[^\]]*\]\nunique_name_in_owner = true', dock_scene))
    assert used and used <= unique, f"missing from the scene: {used - unique}"
    # the dock (a @tool script) creates a BackpackClient and BackpackErrors in the editor, where
    # a script without @tool gets a placeholder instance whose methods cannot be called; @tool
    # adds running in the editor, it does not take running in a game away
    for name in ("backpack_client.gd", "backpack_error.gd", "backpack_dock.gd", "plugin.gd"):
        assert (ADDON / name).read_text().startswith("@tool\n"), name
    client = CLIENT.read_text()
    for method in PYTHON_CLIENT_METHODS:
        match = re.search(
            rf"^## .*\n(?:## .*\n)*func {method}\((?P<params>(?:(?!\nfunc )[\s\S])*?)\) -> Dictionary:",
            client,
            re.MULTILINE,
        )
        assert match, f"BackpackClient.{method} is missing, untyped or has no ## docstring"


# -- message shapes pinned to docs/protocol.md -------------------------------------


def test_every_request_the_client_builds_has_the_documented_shape():
    examples, table = documented_keys(), table_keys()
    requests = client_requests()
    ops = {op for op, _ in requests}
    expected_ops = {
        "hello",
        "add_interactions",
        "remove_interactions",
        "put_items",
        "ingest",
        "recommend",
        "recommend_batch",
        "recommend_bag",
        "similar_items",
        "fit",
        "job_status",
        "stats",
        "snapshot",
    }
    assert ops == expected_ops
    for op, keys in requests:
        assert op in examples, f"{op}: no documented example request"
        assert keys <= table[op] | set().union(*examples[op]), f"{op}: undocumented arguments {keys}"
        assert any(example <= keys for example in examples[op]), (
            f"{op} sends {sorted(keys)}, which lacks some key of every documented example {examples[op]}"
        )


def test_the_shape_check_would_catch_a_misspelt_argument():
    examples, table = documented_keys(), table_keys()
    keys = {"usr", "n"}
    assert not (keys <= table["recommend"] | set().union(*examples["recommend"]))


def test_every_error_code_the_client_names_is_documented_and_every_documented_code_is_named():
    codes = set(re.findall(r'^const [A-Z_]+ := "(\w+)"$', ERRORS.read_text(), re.MULTILINE))
    text = PROTOCOL.read_text()
    documented = set(
        re.findall(r"^\| `(\w+)` \|", text[text.index("## Error codes") : text.index("## Limits")], re.MULTILINE)
    )
    assert "not_fitted" in documented and "timeout" in documented
    assert codes == documented
    client = CLIENT.read_text() + (ADDON / "backpack_dock.gd").read_text()
    for name in re.findall(r"BackpackError\.([A-Z_]+)", client):
        assert re.search(rf"^const {name} := ", ERRORS.read_text(), re.MULTILINE), name


def test_the_documented_sequence_uses_the_clients_request_shapes():
    shapes: dict[str, list[set[str]]] = {}
    for op, keys in client_requests():
        shapes.setdefault(op, []).append(keys)
    sent = [step["send"] for step in documented_sequence() if "send" in step]
    assert {m["op"] for m in sent} >= {"hello", "recommend", "similar_items", "add_interactions"}
    for message in sent:
        assert set(message["args"]) in shapes[message["op"]], message


# -- the documented exchange against a real server ---------------------------------

PAIRS = {
    "ana": ["hat", "scarf"],
    "ben": ["hat", "boots", "cape"],
    "cy": ["scarf", "boots"],
    "dee": ["hat", "scarf", "cape"],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("godot-server")
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "backpack.cli.main",
            "token",
            "create",
            "--role",
            "admin",
            "--json",
            "--data-dir",
            str(data),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=data,
    )
    admin = json.loads(made.stdout)["secret"]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "backpack.cli.main",
            "serve",
            "--data-dir",
            str(data),
            "--port",
            "0",
            "--batch-window",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=data,
    )
    line = proc.stdout.readline()
    match = re.search(r"listening on (\S+):(\d+)", line)
    if match is None:
        proc.kill()
        pytest.fail(f"the server did not start: {line!r} {proc.stderr.read()}")
    address = (match[1], int(match[2]))
    try:
        with Client(f"{address[0]}:{address[1]}", token=admin) as client:
            users = [u for u, items in PAIRS.items() for _ in items]
            client.add_interactions(users, [i for items in PAIRS.values() for i in items])
            client.fit("itemknn", wait=True, timeout=60)
        yield address, admin
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def substitute(value, admin: str):
    if value == "$ADMIN":
        return admin
    if isinstance(value, dict):
        return {k: substitute(v, admin) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, admin) for v in value]
    return value


def replay(address, admin: str, steps: list[dict]) -> list[str]:
    """Run the documented steps; a list of what did not match (empty when all did)."""
    problems, sock, waiting = [], None, []
    for step in steps + [{"end": True}]:
        if "expect" in step:
            waiting.append(step["expect"])
            continue
        if waiting:  # replies to pipelined requests, matched by id whatever their order
            replies = {}
            for _ in waiting:
                reply = decode_body(recv_frame(sock))
                replies[reply["id"]] = reply
            for expected in waiting:
                if not matches(expected, replies.get(expected["id"])):
                    problems.append(f"expected {expected}\n     got {replies.get(expected['id'])}")
            waiting = []
        if "connect" in step:
            sock = socket.create_connection(address, timeout=10)
        elif "send" in step:
            sock.sendall(encode_frame(substitute(step["send"], admin)))
        elif "close" in step or "end" in step:
            sock.close()
    return problems


def test_the_documented_exchange_runs_against_a_real_server(server):
    steps = documented_sequence()
    sends_before_reading = max(
        len(run) for run in re.findall(r"s+", "".join("s" if "send" in step else "x" for step in steps))
    )
    assert sends_before_reading >= 3, "the sequence should pipeline several requests"
    assert sum("connect" in step for step in steps) >= 2, "the sequence should reconnect"
    problems = replay(*server, steps)
    assert not problems, "\n".join(problems)


def test_the_replay_notices_a_wrong_reply(server):
    steps = documented_sequence()[:3]
    steps[2] = {"expect": {**steps[2]["expect"], "result": {"role": "service"}}}
    assert replay(*server, steps) != []
