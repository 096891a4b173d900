"""The plugin system: discovery, isolation of broken plugins, conflicts, events, commands."""

import importlib.metadata as metadata

import numpy as np
import pytest
from plugin_samples import observer

from backpack import Engine, InvalidInputError, Plugins, get_plugins
from backpack.cli import main as cli
from backpack.errors import PluginConflictError, PluginError


def entry_points(*modules):
    return [metadata.EntryPoint(name=m, value=f"plugin_samples.{m}", group="backpack") for m in modules]


def loaded(*modules) -> Plugins:
    plugins = Plugins(load_entry_points=False)
    plugins.load_entry_points(entry_points(*modules))
    return plugins


def small_engine(plugins) -> Engine:
    engine = Engine(plugins=plugins)
    engine.add_interactions(["a", "a", "b", "b", "c"], ["x", "y", "y", "z", "x"])
    return engine


def test_the_builtins_are_found_through_their_entry_points_one_per_hook_kind():
    described = {p["name"]: p for p in get_plugins().describe()}
    builtins = {name: p for name, p in described.items() if p["distribution"] == "backpack-engine"}
    assert set(builtins) == {"algorithms", "model_backends", "model_tasks", "vocabularies", "stores"}
    algorithms = builtins["algorithms"]
    assert algorithms["source"] == "entry point" and algorithms["version"] and not algorithms["errors"]
    assert algorithms["registered"] == {
        "algorithms": ["itemknn", "rp3beta", "userknn", "als", "bpr", "ease", "popularity", "embeddings", "hybrid"]
    }
    assert builtins["model_backends"]["registered"] == {"model_backends": ["onnx", "iree"]}
    assert builtins["model_tasks"]["registered"] == {"model_tasks": ["text-embedding", "object-detection"]}
    assert builtins["stores"]["registered"] == {"stores": ["sqlite", "postgres"]}


def test_a_plugin_that_fails_to_import_is_reported_and_skipped():
    plugins = loaded("broken_import", "jaccard_a")
    info = {p["name"]: p for p in plugins.describe()}
    assert "import failed: ModuleNotFoundError" in info["broken_import"]["errors"][0]
    assert plugins.algorithm("jaccard-knn").plugin == "jaccard_a"


def test_a_plugin_raising_in_a_hook_is_reported_and_its_registrations_dropped():
    plugins = loaded("raises_in_hook", "jaccard_a")
    info = {p["name"]: p for p in plugins.describe()}
    assert "register_algorithms raised RuntimeError: boom while registering" in info["raises_in_hook"]["errors"]
    with pytest.raises(InvalidInputError):
        plugins.algorithm("half-registered")
    assert "jaccard-knn" in plugins.registry("algorithms")


def test_a_plugin_with_an_unknown_hook_is_rejected_by_name():
    plugins = loaded("unknown_hook")
    (info,) = plugins.describe()
    assert info["name"] == "unknown_hook" and "register_teleporters" in info["errors"][0]


def test_two_plugins_claiming_one_name_is_an_error_naming_both():
    plugins = loaded("jaccard_a", "jaccard_b")
    with pytest.raises(PluginConflictError) as err:
        plugins.algorithm("shared")
    assert "'jaccard_a'" in str(err.value) and "'jaccard_b'" in str(err.value)
    assert err.value.code == "plugin_conflict"
    assert plugins.algorithm("jaccard-knn").plugin == "jaccard_a"  # the rest still works


def test_engine_fits_and_serves_a_plugin_algorithm_by_name():
    plugins = loaded("jaccard_a")
    engine = small_engine(plugins)
    model = engine.fit("jaccard-knn", k=5)
    assert model.similarity_kind == "jaccard"
    assert [r.item for r in engine.recommend("c", n=2)][0] == "y"
    with pytest.raises(InvalidInputError) as err:
        engine.fit("itemknn")  # this manager has no built-ins loaded
    assert "jaccard-knn" in str(err.value)


def test_a_crashing_algorithm_gives_a_typed_error_and_the_old_model_stays():
    plugins = loaded("jaccard_a", "crashing_algorithm")
    engine = small_engine(plugins)
    engine.fit("jaccard-knn", k=5)
    before = engine.recommend("c", n=2)
    with pytest.raises(PluginError) as err:
        engine.fit("crashing")
    assert "crashing_algorithm" in str(err.value) and "ZeroDivisionError" in str(err.value)
    with pytest.raises(InvalidInputError):
        engine.fit("not-a-recommender")
    assert engine.recommend("c", n=2) == before


def test_events_reach_observers_and_a_raising_observer_breaks_nothing():
    observer.EVENTS.clear()
    plugins = loaded("observer", "raising_observer", "jaccard_a")
    engine = small_engine(plugins)
    engine.add_interaction("d", "z", kind="like")
    engine.fit("jaccard-knn", k=3)
    recorded = [e for e in observer.EVENTS if e[0] == "recorded"]
    assert recorded[0][1:] == (["a", "a", "b", "b", "c"], ["x", "y", "y", "z", "x"], [1.0] * 5)
    assert recorded[1][1:] == (["d"], ["z"], [3.0])
    fits = [e for e in observer.EVENTS if e[0] == "fit"]
    assert fits[0][1] == "jaccard-knn" and fits[0][2] >= 0
    info = {p["name"]: p for p in plugins.describe()}
    assert "interactions_recorded raised ValueError: observer exploded" in info["raising_observer"]["errors"]
    assert engine.bags.bag("d") == {"z": 3.0}


def test_cli_lists_plugins_and_runs_plugin_commands(capsys):
    plugins = loaded("command", "broken_import")
    assert cli.main(["hello", "--name", "godot"], plugins=plugins) == 3
    assert "hello godot" in capsys.readouterr().out
    assert cli.main(["plugins"], plugins=plugins) == 1  # a broken plugin makes the listing fail
    out = capsys.readouterr().out
    assert "commands: hello" in out and "ERROR: import failed" in out


def test_cli_plugins_json_lists_the_builtins(capsys):
    assert cli.main(["plugins", "--json"]) == 0
    import json

    listed = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert "itemknn" in listed["algorithms"]["registered"]["algorithms"]
    assert listed["algorithms"]["distribution"] == "backpack-engine"


def test_registry_kinds_are_checked():
    with pytest.raises(InvalidInputError):
        Plugins(load_entry_points=False).registry("teleporters")
    assert Plugins(load_entry_points=False).registry("model_backends") == {}


def test_engine_asks_the_model_which_results_are_fill():
    from backpack import ItemKNN, hookimpl

    class ScoresEverything(ItemKNN):  # stands in for a factor model: negative scores are its own
        def is_fill(self, scores):
            return np.zeros(np.shape(scores), bool)

    class Plugin:
        @hookimpl
        def register_algorithms(self, register):
            register("scores-everything", ScoresEverything)

    plugins = Plugins(load_entry_points=False)
    plugins.register(Plugin(), name="test-plugin")
    engine = small_engine(plugins)
    engine.fit("scores-everything", k=3)
    recs = engine.recommend("stranger", n=2)
    assert all(r.score < 0 for r in recs) and {r.source for r in recs} == {"personal"}


def test_a_second_plugin_with_a_taken_name_is_reported():
    plugins = Plugins(load_entry_points=False)
    plugins.load_entry_points(
        [
            metadata.EntryPoint(name="same", value="plugin_samples.jaccard_a", group="backpack"),
            metadata.EntryPoint(name="same", value="plugin_samples.command", group="backpack"),
        ]
    )
    (info,) = plugins.describe()
    assert "a second plugin named 'same' (plugin_samples.command) was skipped" in info["errors"]
    assert plugins.algorithm("jaccard-knn").plugin == "same"


def test_a_command_whose_configure_raises_is_reported_and_the_rest_still_run(capsys):
    plugins = loaded("command", "configure_raises")
    assert cli.main(["hello"], plugins=plugins) == 3
    assert cli.main(["plugins"], plugins=plugins) == 1
    out = capsys.readouterr().out
    assert "commands: broken" in out and "ArgumentError" in out
    errors = {p["name"]: p["errors"] for p in plugins.describe()}
    assert len(errors["configure_raises"]) == 1 and "'broken'" in errors["configure_raises"][0]
    assert errors["command"] == []
    with pytest.raises(SystemExit):
        cli.main(["broken"], plugins=plugins)  # not offered: argparse says it is no choice
    assert "invalid choice: 'broken'" in capsys.readouterr().err


def test_a_command_returning_something_other_than_an_exit_code_is_a_plugin_error(capsys):
    plugins = loaded("odd_exit_codes")
    assert cli.main(["says-nothing"], plugins=plugins) == 0
    assert cli.main(["says-four"], plugins=plugins) == 4
    capsys.readouterr()
    assert cli.main(["says-done"], plugins=plugins) == 4  # a plugin failed
    err = capsys.readouterr().err
    assert "[plugin_failed]" in err and "'odd_exit_codes'" in err and "'done'" in err


def test_a_conflict_in_any_kind_is_an_error_on_both_plugins_and_the_name_unusable(capsys):
    plugins = loaded("command", "command_twin", "backend")
    assert set(plugins.registry("model_backends")) == {"iree"}
    assert "hello" not in plugins.registry("commands")
    for kind, name, owners in [
        ("model_backends", "onnx", ("command_twin", "backend")),
        ("commands", "hello", ("command", "command_twin")),
    ]:
        with pytest.raises(PluginConflictError) as err:
            plugins.lookup(kind, name)
        assert all(f"'{owner}'" in str(err.value) for owner in owners)
    errors = {p["name"]: p["errors"] for p in plugins.describe()}
    assert errors["command"] == ["command 'hello' is also registered by 'command_twin': neither is used"]
    assert errors["backend"] == ["model backend 'onnx' is also registered by 'command_twin': neither is used"]
    assert sorted(errors["command_twin"]) == [
        "command 'hello' is also registered by 'command': neither is used",
        "model backend 'onnx' is also registered by 'backend': neither is used",
    ]
    assert cli.main(["plugins"], plugins=plugins) == 1
    assert "ERROR: command 'hello' is also registered by" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["hello"], plugins=plugins)  # neither plugin's command is offered


def test_sys_exit_in_plugin_code_is_reported_but_ctrl_c_gets_through():
    plugins = loaded("exits_on_import", "exits_in_hooks", "jaccard_a")
    engine = small_engine(plugins)  # the observer exits here
    assert engine.fit("jaccard-knn", k=3).similarity_kind == "jaccard"
    errors = {p["name"]: p["errors"] for p in plugins.describe()}
    assert errors["exits_on_import"] == ["import failed: SystemExit: plugin wants out"]
    assert sorted(errors["exits_in_hooks"]) == [
        "interactions_recorded raised SystemExit: observer quits",
        "register_algorithms raised SystemExit: 4",
    ]
    with pytest.raises(KeyboardInterrupt):
        loaded("interrupted").registry("algorithms")


def test_a_plugin_registering_one_name_twice_keeps_the_first_and_is_told():
    plugins = loaded("registers_twice")
    assert plugins.algorithm("twice").description == "the first"
    (info,) = plugins.describe()
    assert info["registered"] == {"algorithms": ["twice"]}
    assert info["errors"] == ["algorithm 'twice' registered more than once: the first registration is used"]


def test_errors_are_listed_once_however_often_the_registries_are_rebuilt():
    plugins = loaded("raises_in_hook", "jaccard_a", "jaccard_b", "registers_twice")
    first = {p["name"]: p["errors"] for p in plugins.describe()}
    for module in ("observer", "command"):  # each new plugin makes the registries rebuild
        plugins.load_entry_points(entry_points(module))
        assert plugins.registry("algorithms")
    again = {p["name"]: p["errors"] for p in plugins.describe()}
    assert again == {**first, "observer": [], "command": []}
    assert all(len(errors) == 1 for errors in first.values())
