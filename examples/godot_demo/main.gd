extends Control
## Backpack demo: the player picks items; "For you" and "More like this" follow.
##
## In-process (BackpackEngine, the GDExtension) when the library is loaded, else over
## a socket to `backpack serve` (BackpackClient) at [member port] with [member token]
## (or the BACKPACK_TOKEN environment variable).

const PLAYER := "player"
const ITEMS: Array[String] = ["hat", "scarf", "boots", "cape", "wand", "lute"]
## What other players picked, so there is something to learn from at the start.
const HISTORY := {
	"ana": ["hat", "scarf"],
	"ben": ["hat", "boots", "cape"],
	"cy": ["scarf", "boots"],
	"dee": ["hat", "scarf", "cape"],
	"eve": ["wand", "lute", "cape"],
	"fay": ["wand", "lute"],
}
const RESULTS := 3
const FIT_POLL_SECONDS := 0.1

@export var host: String = "127.0.0.1"
@export var port: int = 8765
@export var token: String = ""

var _engine: RefCounted  # BackpackEngine, when the GDExtension is loaded
var _client: BackpackClient
var _last_pick: String = ""

@onready var _mode_label: Label = %ModeLabel
@onready var _picks: HBoxContainer = %Picks
@onready var _for_you: ItemList = %ForYou
@onready var _like_this: ItemList = %LikeThis
@onready var _status: Label = %Status


func _ready() -> void:
	for item: String in ITEMS:
		var button := Button.new()
		button.text = item
		button.pressed.connect(_pick.bind(item))
		_picks.add_child(button)
	if ClassDB.class_exists("BackpackEngine"):
		_engine = ClassDB.instantiate("BackpackEngine")
		_mode_label.text = "Mode: in-process (BackpackEngine)"
	else:
		_client = BackpackClient.new()
		add_child(_client)
		_client.error_received.connect(_on_error)
		if token.is_empty():
			token = OS.get_environment("BACKPACK_TOKEN")
		_client.connect_to_server(host, port, token)
		_mode_label.text = "Mode: socket (backpack serve on port %d)" % port
	await _record_history()
	await _refresh()


func _record_history() -> void:
	var users := PackedStringArray()
	var items := PackedStringArray()
	for user: String in HISTORY:
		for item: String in HISTORY[user]:
			users.append(user)
			items.append(item)
	if _engine != null:
		_engine.call("add_interactions", users, items, PackedFloat32Array())
	else:
		await _client.add_interactions(users, items)
	await _fit()


func _pick(item: String) -> void:
	_last_pick = item
	if _engine != null:
		_engine.call("add_interaction", PLAYER, item, 1.0)
	else:
		await _client.add_interaction(PLAYER, item)
	await _fit()
	await _refresh()


## Refits on everything recorded: fast at this size. A real game fits less often,
## in a Thread (in-process) or in the server's background job (socket).
func _fit() -> void:
	if _engine != null:
		_engine.call("fit_item_knn", "cosine", 100)
		return
	var reply: Dictionary = await _client.fit("itemknn")
	if not reply.has("result"):
		return
	var job: int = int(reply["result"]["job"])
	while true:
		var status: Dictionary = await _client.job_status(job)
		var state: String = str(status.get("result", {}).get("state", "discarded"))
		if state in ["completed", "discarded"]:
			return
		await get_tree().create_timer(FIT_POLL_SECONDS).timeout


func _refresh() -> void:
	_fill(_for_you, await _recommend())
	if not _last_pick.is_empty():
		_fill(_like_this, await _similar(_last_pick))
	_status.text = "Picked: %s" % (_last_pick if not _last_pick.is_empty() else "nothing yet")


func _recommend() -> PackedStringArray:
	if _engine != null:
		return BackpackClient.items_of(_engine.call("recommend", PLAYER, RESULTS))
	var reply: Dictionary = await _client.recommend(PLAYER, RESULTS)
	return BackpackClient.items_of(reply.get("result", {}))


func _similar(item: String) -> PackedStringArray:
	if _engine != null:
		return BackpackClient.items_of(_engine.call("similar_items", item, RESULTS))
	var reply: Dictionary = await _client.similar_items(item, RESULTS)
	return BackpackClient.items_of(reply.get("result", {}))


func _fill(list: ItemList, ids: PackedStringArray) -> void:
	list.clear()
	for id: String in ids:
		list.add_item(id)


func _on_error(_id: int, code: String, message: String) -> void:
	_status.text = BackpackError.new(code, message).describe()
