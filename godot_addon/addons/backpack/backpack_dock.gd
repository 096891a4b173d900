@tool
extends VBoxContainer
## The Backpack editor dock: run a local `backpack serve`, try recommendations,
## import a folder of scenes. Settings are kept in the EditorSettings under "backpack/".

const SETTINGS := {
	"backpack/python": "python3",
	"backpack/data_dir": "user://backpack",
	"backpack/port": 8765,
	"backpack/token": "",
}
const MODE_SOCKET := 0
const MODE_IN_PROCESS := 1
const ENGINE_CLASS := "BackpackEngine"
const RESULTS := 10
## Seconds Stop waits for the server to exit after asking it to (SIGTERM) before killing it.
const STOP_GRACE_SECONDS := 3.0

var _server_pid: int = -1
var _client: BackpackClient
var _engine: RefCounted  # a BackpackEngine when the GDExtension is loaded
var _engine_fitted: bool = false

@onready var _mode: OptionButton = %Mode
@onready var _python: LineEdit = %Python
@onready var _data_dir: LineEdit = %DataDir
@onready var _port: SpinBox = %Port
@onready var _token: LineEdit = %Token
@onready var _status: Label = %Status
@onready var _user: LineEdit = %User
@onready var _item: LineEdit = %Item
@onready var _folder: LineEdit = %Folder
@onready var _output: Label = %Output


func _ready() -> void:
	_client = BackpackClient.new()
	add_child(_client)
	_client.connected.connect(func(_hello: Dictionary) -> void: _say("Connected."))
	_client.disconnected.connect(func() -> void: _status.text = "Not connected.")
	_mode.set_item_disabled(MODE_IN_PROCESS, not ClassDB.class_exists(ENGINE_CLASS))
	_load_settings()
	%Start.pressed.connect(_start_server)
	%Stop.pressed.connect(_stop_server)
	%Connect.pressed.connect(_connect_client)
	%CreateToken.pressed.connect(_create_token)
	%Record.pressed.connect(_record)
	%Fit.pressed.connect(_fit)
	%ForYou.pressed.connect(_for_you)
	%Similar.pressed.connect(_similar)
	%Import.pressed.connect(_import)
	_mode.item_selected.connect(_mode_changed)
	for edit: LineEdit in [_python, _data_dir, _token]:
		edit.text_changed.connect(func(_text: String) -> void: _save_settings())
	_port.value_changed.connect(func(_value: float) -> void: _save_settings())


func _process(_delta: float) -> void:
	# The client (a @tool script) polls its socket in its own _process.
	if _server_pid != -1 and not OS.is_process_running(_server_pid):
		_server_pid = -1
		_say(
			(
				"The server stopped. Is port %d already in use, or the data directory not"
				+ " writable? Run `backpack serve --data-dir DIR --port %d` in a terminal to see why."
			)
			% [int(_port.value), int(_port.value)]
		)


## Called by the plugin when it is disabled or the editor closes. Not _exit_tree: the
## editor also takes a dock out of the tree when it is moved to another dock slot.
func shutdown() -> void:
	_stop_server()


func _notification(what: int) -> void:
	if what == NOTIFICATION_PREDELETE and _server_pid != -1:
		OS.kill(_server_pid)  # last resort: never leave a server running behind the editor
		_server_pid = -1


func _settings() -> EditorSettings:
	return EditorInterface.get_editor_settings()


func _load_settings() -> void:
	var settings: EditorSettings = _settings()
	for key: String in SETTINGS:
		if not settings.has_setting(key):
			settings.set_setting(key, SETTINGS[key])
	_python.text = str(settings.get_setting("backpack/python"))
	_data_dir.text = str(settings.get_setting("backpack/data_dir"))
	_port.value = int(settings.get_setting("backpack/port"))
	_token.text = str(settings.get_setting("backpack/token"))


func _save_settings() -> void:
	var settings: EditorSettings = _settings()
	settings.set_setting("backpack/python", _python.text)
	settings.set_setting("backpack/data_dir", _data_dir.text)
	settings.set_setting("backpack/port", int(_port.value))
	settings.set_setting("backpack/token", _token.text)


func _data_path() -> String:
	return ProjectSettings.globalize_path(_data_dir.text)


func _say(text: String) -> void:
	_status.text = text


func _show(text: String) -> void:
	_output.text = text


## Runs `python -m backpack.cli.main ARGS`; the exit code and the printed text.
func _backpack(args: PackedStringArray) -> Array:
	var output: Array = []
	var full := PackedStringArray(["-m", "backpack.cli.main"])
	full.append_array(args)
	var code: int = OS.execute(_python.text, full, output, true)
	return [code, "".join(PackedStringArray(output))]


## The JSON document a `--json` command printed. Its stderr is read too (for error text), so
## warnings Python prints there may come first: fall back to the outermost {...}.
func _json_in(text: String) -> Variant:
	var parsed: Variant = JSON.parse_string(text)
	if parsed == null:
		var start: int = text.find("{")
		var end: int = text.rfind("}")
		if start != -1 and end > start:
			parsed = JSON.parse_string(text.substr(start, end - start + 1))
	return parsed


func _python_problem() -> String:
	var output: Array = []
	var code: int = OS.execute(_python.text, ["-c", "import backpack"], output, true)
	# -1: could not start it (Windows); 127: the shell OS.execute uses on Linux/macOS found no
	# such command; 126: found but not executable.
	if code == -1 or code == 127 or code == 126:
		return "Python was not found at '%s'. Set the Python executable field." % _python.text
	if code != 0:
		return (
			"'%s' runs, but Backpack is not installed in it: `pip install backpack-engine` there."
			% _python.text
		)
	return ""


func _start_server() -> void:
	if _server_pid != -1:
		_say("The server is already running.")
		return
	var problem: String = _python_problem()
	if not problem.is_empty():
		_say(problem)
		return
	DirAccess.make_dir_recursive_absolute(_data_path())
	var args := PackedStringArray(
		["-m", "backpack.cli.main", "serve", "--data-dir", _data_path(), "--port", str(int(_port.value))]
	)
	_server_pid = OS.create_process(_python.text, args)
	if _server_pid == -1:
		_say("Could not start '%s'. Check the Python executable field." % _python.text)
		return
	_say("Server starting on port %d (pid %d). Press Connect." % [int(_port.value), _server_pid])


func _stop_server() -> void:
	if _client != null:
		_client.disconnect_from_server()
	if _server_pid != -1:
		_end_process(_server_pid)
		_server_pid = -1
		_say("Server stopped.")


## Asks the server to stop (SIGTERM: it closes its store cleanly) and kills it if it does not.
## OS.kill alone is SIGKILL on Linux/macOS; on Windows it is the only way.
func _end_process(pid: int) -> void:
	if OS.get_name() != "Windows":
		OS.execute("kill", PackedStringArray(["-TERM", str(pid)]))
		var give_up: int = Time.get_ticks_msec() + int(STOP_GRACE_SECONDS * 1000.0)
		while OS.is_process_running(pid) and Time.get_ticks_msec() < give_up:
			OS.delay_msec(50)
	if OS.is_process_running(pid):
		OS.kill(pid)


func _create_token() -> void:
	var done: Array = _backpack(
		["token", "create", "--role", "admin", "--json", "--data-dir", _data_path()]
	)
	var parsed: Variant = _json_in(done[1])
	if done[0] != 0 or not parsed is Dictionary:
		_say("Could not create a token: %s" % done[1].strip_edges())
		return
	_token.text = str(parsed["secret"])
	_save_settings()
	_say("Created an admin token (saved in the editor settings, not in the project).")


func _connect_client() -> void:
	if _token.text.is_empty():
		_say("No token yet: press Create token (or paste one), then Connect.")
		return
	_say("Connecting to 127.0.0.1:%d ..." % int(_port.value))
	_client.connect_to_server("127.0.0.1", int(_port.value), _token.text)


func _mode_changed(index: int) -> void:
	if index == MODE_IN_PROCESS and _engine == null:
		_engine = ClassDB.instantiate(ENGINE_CLASS)
	_say("In-process: BackpackEngine, no server." if index == MODE_IN_PROCESS else "Socket mode.")


func _in_process() -> bool:
	return _mode.selected == MODE_IN_PROCESS and _engine != null


func _record() -> void:
	if _user.text.is_empty() or _item.text.is_empty():
		_say("Fill in both a user id and an item id.")
		return
	if _in_process():
		_engine.call("add_interaction", _user.text, _item.text, 1.0)
		_say("Recorded %s -> %s in process." % [_user.text, _item.text])
		return
	_report(await _client.add_interaction(_user.text, _item.text), "Recorded.")


func _fit() -> void:
	if _in_process():
		_engine.call("fit_item_knn", "cosine", 100)
		_engine_fitted = true
		_say("Fitted in process.")
		return
	var reply: Dictionary = await _client.fit("itemknn")
	_report(reply, "Fitting in the background (job %s)." % str(reply.get("result", {}).get("job")))


func _for_you() -> void:
	if _in_process():
		if _engine_fitted:
			_list(_engine.call("recommend", _user.text, RESULTS), "For " + _user.text)
		else:
			_say(BackpackError.new(BackpackError.NOT_FITTED).describe())
		return
	var reply: Dictionary = await _client.recommend(_user.text, RESULTS)
	if _report(reply, ""):
		_list(reply["result"], "For " + _user.text)


func _similar() -> void:
	if _in_process():
		if _engine_fitted:
			_list(_engine.call("similar_items", _item.text, RESULTS), "Like " + _item.text)
		else:
			_say(BackpackError.new(BackpackError.NOT_FITTED).describe())
		return
	var reply: Dictionary = await _client.similar_items(_item.text, RESULTS)
	if _report(reply, ""):
		_list(reply["result"], "Like " + _item.text)


func _import() -> void:
	var folder: String = ProjectSettings.globalize_path(_folder.text)
	if not DirAccess.dir_exists_absolute(folder):
		_say("No folder at '%s'." % _folder.text)
		return
	_say("Importing %s ..." % _folder.text)
	var done: Array = _backpack(["import", folder, "--json", "--data-dir", _data_path()])
	var parsed: Variant = _json_in(done[1])
	if done[0] != 0 or parsed == null:
		_say("The import failed.")
		_show(str(done[1]).strip_edges())
		return
	_say("Imported. Press Fit to train on it.")
	_show(JSON.stringify(parsed, "  "))


## Shows an error reply in plain words; true when the reply holds a result.
func _report(reply: Dictionary, success: String) -> bool:
	var error: BackpackError = BackpackError.from_reply(reply)
	if error != null:
		_say(error.describe())
		return false
	if not success.is_empty():
		_say(success)
	return true


func _list(result: Variant, title: String) -> void:
	if not result is Dictionary:
		_say("No answer: see the Output panel for the engine's error.")
		return
	var ids: PackedStringArray = BackpackClient.items_of(result)
	_show("%s:\n%s" % [title, "\n".join(ids) if not ids.is_empty() else "(nothing yet)"])
	_say("%d results." % ids.size())
