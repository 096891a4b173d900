@tool
class_name BackpackClient
extends Node
## A client for `backpack serve` over TCP, for games and the editor alike.
##
## Add it to the scene tree (it polls the socket in [method _process]), call
## [method connect_to_server], then [code]await[/code] any call:
## [codeblock]
## var reply: Dictionary = await client.recommend("ana", 10)
## if reply.has("error"):
##     print(BackpackError.from_reply(reply).describe())
## else:
##     print(BackpackClient.items_of(reply["result"]))
## [/codeblock]
## Every call returns the server's reply Dictionary: [code]{"id", "result"}[/code] or
## [code]{"id", "error": {"code", "message"}}[/code] (codes in [BackpackError]). Calls made
## before the hello reply wait in a queue; many calls may be in flight at once (pipelining),
## replies are matched by id.
##
## [code]@tool[/code] so the editor dock can use it: in the editor a script without it gets a
## placeholder instance whose methods cannot be called. It does nothing until
## [method connect_to_server] is called.

## The hello reply arrived: the connection is authenticated and calls go out.
signal connected(hello: Dictionary)
## The connection closed or could not be opened; a reconnect follows if [member auto_reconnect].
signal disconnected
## Any reply, success or error, for request [param id].
signal reply_received(id: int, reply: Dictionary)
## An error reply (or a client-side failure such as a timeout) for request [param id].
signal error_received(id: int, code: String, message: String)

enum State { DISCONNECTED, CONNECTING, GREETING, READY }

const HEADER_BYTES := 4

## The server's address (loopback unless it runs with --allow-remote).
@export var host: String = "127.0.0.1"
@export var port: int = 8765
## A token secret from `backpack token create`; sent with hello.
@export var token: String = ""
## A name the server logs for this connection.
@export var client_name: String = "godot"
## Seconds a request may wait for its reply before it fails with "timeout".
@export var request_timeout: float = 10.0
## Seconds to wait for the TCP connection to open before counting it refused.
@export var connect_timeout: float = 5.0
## Reconnect after the connection breaks, waiting longer after each failure.
@export var auto_reconnect: bool = true
@export var reconnect_min_delay: float = 0.5
@export var reconnect_max_delay: float = 30.0
## Bodies above this many bytes are refused when reading (the server's default max_frame).
@export var max_frame: int = 4194304

var state: State = State.DISCONNECTED
## The last hello result (server, protocol, role, user, limits).
var server_info: Dictionary = {}

var _peer: StreamPeerTCP = StreamPeerTCP.new()
var _buffer: PackedByteArray = PackedByteArray()
var _next_id: int = 1
var _pending: Dictionary = {}  # id -> _Pending, sent and waiting for a reply
var _queue: Array[_Pending] = []  # built while not yet greeted, sent in order after hello
var _attempts: int = 0
var _reconnect_at: float = -1.0
var _connect_deadline: float = 0.0
var _wanted: bool = false


class _Pending:
	extends RefCounted
	signal done(reply: Dictionary)
	var id: int
	var frame: PackedByteArray
	var deadline: float
	## Set (with [member reply]) before [signal done] is emitted, so a caller that reaches
	## its [code]await[/code] after a synchronous failure still gets its reply.
	var finished: bool = false
	var reply: Dictionary = {}


func _init() -> void:
	# A network client keeps polling while the game is paused (a pause menu would
	# otherwise make every call in flight time out).
	process_mode = Node.PROCESS_MODE_ALWAYS


func _process(_delta: float) -> void:
	poll()


## Open the connection and say hello with [member token]; [signal connected] follows.
func connect_to_server(
	server_host: String = host, server_port: int = port, server_token: String = token
) -> void:
	host = server_host
	port = server_port
	token = server_token
	_wanted = true
	_attempts = 0
	if state != State.DISCONNECTED:
		# Calls sent on the old connection fail now instead of waiting for their timeout.
		_drop(BackpackError.CONNECTION_LOST, "connect_to_server() was called again")
	_open()


## Close the connection and stop reconnecting; waiting calls fail with "connection_lost".
func disconnect_from_server() -> void:
	_wanted = false
	_reconnect_at = -1.0
	_drop(BackpackError.CONNECTION_LOST, "closed by the client")


## Whether hello succeeded and calls go out at once.
func is_ready() -> bool:
	return state == State.READY


## Authenticate this connection (sent by [method connect_to_server] already).
func hello() -> Dictionary:
	return await _request("hello", {"client": client_name, "token": token}, true)


## Record interactions (parallel lists); [param weights] empty means 1 each.
func add_interactions(
	users: PackedStringArray, items: PackedStringArray, weights := PackedFloat32Array()
) -> Dictionary:
	if weights.is_empty():
		return await _request("add_interactions", {"users": users, "items": items})
	return await _request("add_interactions", {"users": users, "items": items, "weights": weights})


## Record one interaction of [param weight] (> 0).
func add_interaction(user: String, item: String, weight: float = 1.0) -> Dictionary:
	return await _request("add_interactions", {"users": [user], "items": [item], "weights": [weight]})


## Remove (user, item) pairs; the result's "removed" counts those that were there.
func remove_interactions(users: PackedStringArray, items: PackedStringArray) -> Dictionary:
	return await _request("remove_interactions", {"users": users, "items": items})


## Store item descriptions: one JSON-LD node, a list of them or a @graph document.
func put_items(documents: Variant) -> Dictionary:
	return await _request("put_items", {"items": documents})


## Take ActivityStreams activities, objects and actors (JSON-LD).
func ingest(documents: Variant) -> Dictionary:
	return await _request("ingest", {"documents": documents})


## The [param n] best items for [param user]:
## result [code]{"items": [{item, score, source}]}[/code].
func recommend(user: String, n: int = 10) -> Dictionary:
	return await _request("recommend", {"user": user, "n": n})


## Top [param n] for each user, never any of [param exclude]:
## result [code]{"results": [[...], ...]}[/code].
func recommend_batch(
	users: PackedStringArray, n: int = 10, exclude := PackedStringArray()
) -> Dictionary:
	return await _request("recommend_batch", {"users": users, "n": n, "exclude": exclude})


## The [param n] best items for an ad-hoc bag of items; [param weights] empty means 1 each.
func recommend_bag(
	items: PackedStringArray, n: int = 10, weights := PackedFloat32Array()
) -> Dictionary:
	if weights.is_empty():
		return await _request("recommend_bag", {"items": items, "n": n})
	return await _request("recommend_bag", {"items": items, "n": n, "weights": weights})


## The [param n] items most like [param item].
func similar_items(item: String, n: int = 10) -> Dictionary:
	return await _request("similar_items", {"item": item, "n": n})


## Start fitting [param algorithm] in the background; result [code]{"job": id}[/code].
func fit(algorithm: String = "itemknn", params: Dictionary = {}) -> Dictionary:
	return await _request("fit", {"algorithm": algorithm, "params": params})


## A background job: its "state" becomes "completed" (or "discarded" with an "error").
func job_status(job: int) -> Dictionary:
	return await _request("job_status", {"job": job})


## Counts, the model in service, uptime.
func stats() -> Dictionary:
	return await _request("stats", {})


## Have the server write a snapshot now (admin).
func snapshot() -> Dictionary:
	return await _request("snapshot", {})


## The item ids of a recommendation result, from the server ([code]{"items": [{item, ...}]}[/code])
## or from BackpackEngine ([code]{"items": PackedStringArray}[/code]), best first.
static func items_of(result: Dictionary) -> PackedStringArray:
	var ids := PackedStringArray()
	for entry: Variant in result.get("items", []):
		ids.append(str(entry["item"]) if entry is Dictionary else str(entry))
	return ids


## Read what arrived, match replies, expire timeouts, reconnect when due (called every frame).
func poll() -> void:
	var now: float = Time.get_ticks_msec() / 1000.0
	if state == State.DISCONNECTED:
		if _wanted and _reconnect_at >= 0.0 and now >= _reconnect_at:
			_open()
		_expire(now)
		return
	_peer.poll()
	var status: StreamPeerTCP.Status = _peer.get_status()
	if status == StreamPeerTCP.STATUS_CONNECTING:
		if now >= _connect_deadline:
			_drop(BackpackError.CONNECTION_REFUSED, "%s:%d did not answer in time" % [host, port])
			_schedule_reconnect(now)
			return
		_expire(now)
		return
	if status != StreamPeerTCP.STATUS_CONNECTED:
		var refused: bool = state == State.CONNECTING
		_drop(
			BackpackError.CONNECTION_REFUSED if refused else BackpackError.CONNECTION_LOST,
			"%s:%d" % [host, port]
		)
		_schedule_reconnect(now)
		return
	if state == State.CONNECTING:
		_peer.set_no_delay(true)  # small pipelined frames: do not wait for Nagle's algorithm
		state = State.GREETING
		_greet()
	_read_frames()
	_expire(now)


func _open() -> void:
	_peer = StreamPeerTCP.new()
	_buffer = PackedByteArray()
	_reconnect_at = -1.0
	var err: Error = _peer.connect_to_host(host, port)
	if err != OK:
		state = State.DISCONNECTED
		_fail_queue(BackpackError.CONNECTION_REFUSED, error_string(err))
		_schedule_reconnect(Time.get_ticks_msec() / 1000.0)
		return
	_connect_deadline = Time.get_ticks_msec() / 1000.0 + connect_timeout
	state = State.CONNECTING


func _greet() -> void:
	var reply: Dictionary = await hello()
	if reply.has("result"):
		server_info = reply["result"]
		_attempts = 0
		state = State.READY
		# A failed send drops the connection; what is left stays queued for the reconnect.
		while not _queue.is_empty() and state == State.READY:
			_send(_queue.pop_front())
		if state == State.READY:
			connected.emit(server_info)
	elif state != State.DISCONNECTED:
		var error: BackpackError = BackpackError.from_reply(reply)
		if error.code == BackpackError.UNAUTHORIZED:
			_wanted = false  # a wrong token stays wrong: do not hammer the server
		_drop(error.code, error.message)
		_schedule_reconnect(Time.get_ticks_msec() / 1000.0)


func _request(op: String, args: Dictionary, greeting: bool = false) -> Dictionary:
	var pending := _Pending.new()
	pending.id = _next_id
	_next_id += 1
	var message := {"id": pending.id, "op": op, "args": args}
	pending.frame = encode_frame(message)
	pending.deadline = Time.get_ticks_msec() / 1000.0 + request_timeout
	if state == State.READY or (greeting and state == State.GREETING):
		_send(pending)
	elif _wanted:
		_queue.append(pending)
	else:
		return _client_error(pending.id, BackpackError.NOT_CONNECTED, "call connect_to_server()")
	# _send may have failed and finished the call already: done was emitted before this await.
	if not pending.finished:
		await pending.done
	return pending.reply


## One frame: the 4-byte big-endian length, then the UTF-8 JSON body.
static func encode_frame(message: Dictionary) -> PackedByteArray:
	var body: PackedByteArray = JSON.stringify(message).to_utf8_buffer()
	var size: int = body.size()
	var frame := PackedByteArray(
		[(size >> 24) & 0xFF, (size >> 16) & 0xFF, (size >> 8) & 0xFF, size & 0xFF]
	)
	frame.append_array(body)
	return frame


func _send(pending: _Pending) -> void:
	_pending[pending.id] = pending
	var err: Error = _peer.put_data(pending.frame)
	if err != OK:
		_drop(BackpackError.CONNECTION_LOST, error_string(err))
		_schedule_reconnect(Time.get_ticks_msec() / 1000.0)


func _read_frames() -> void:
	var available: int = _peer.get_available_bytes()
	if available > 0:
		var got: Array = _peer.get_partial_data(available)
		if got[0] == OK:
			_buffer.append_array(got[1])
	while _buffer.size() >= HEADER_BYTES and state != State.DISCONNECTED:
		var size: int = (_buffer[0] << 24) | (_buffer[1] << 16) | (_buffer[2] << 8) | _buffer[3]
		if size > max_frame:
			_drop(BackpackError.FRAME_TOO_LARGE, "a reply of %d bytes" % size)
			_schedule_reconnect(Time.get_ticks_msec() / 1000.0)
			return
		if _buffer.size() < HEADER_BYTES + size:
			return
		var body: PackedByteArray = _buffer.slice(HEADER_BYTES, HEADER_BYTES + size)
		_buffer = _buffer.slice(HEADER_BYTES + size)
		var reply: Variant = JSON.parse_string(body.get_string_from_utf8())
		if not reply is Dictionary:
			# Not this protocol (another program on the port?): nothing after it can be trusted.
			_drop(BackpackError.BAD_FRAME, "the server sent a frame that is not a JSON object")
			_schedule_reconnect(Time.get_ticks_msec() / 1000.0)
			return
		_deliver(reply)


func _deliver(reply: Dictionary) -> void:
	# JSON numbers arrive as floats in Godot; ids are ints on the wire. A null id is
	# about the connection (idle_timeout, too_many_connections): the server closes it next.
	if reply.get("id") == null:
		var error: BackpackError = BackpackError.from_reply(reply)
		if error != null:
			error_received.emit(-1, error.code, error.message)
		return
	var id: int = int(reply["id"])
	if not _pending.has(id):
		return  # timed out already
	var pending: _Pending = _pending[id]
	_pending.erase(id)
	_finish(pending, reply)


func _finish(pending: _Pending, reply: Dictionary) -> void:
	if pending.finished:
		return
	pending.finished = true
	pending.reply = reply
	reply_received.emit(pending.id, reply)
	var error: BackpackError = BackpackError.from_reply(reply)
	if error != null:
		error_received.emit(pending.id, error.code, error.message)
	pending.done.emit(reply)


func _client_error(id: int, code: String, message: String) -> Dictionary:
	var reply := {"id": id, "error": {"code": code, "message": message}}
	error_received.emit(id, code, message)
	return reply


func _expire(now: float) -> void:
	# Collect first, finish after: finishing resumes callers, which may make new calls
	# (added to _pending or _queue) while we would still be iterating.
	var late: Array[_Pending] = []
	for id: int in _pending.keys():
		var pending: _Pending = _pending[id]
		if now >= pending.deadline:
			_pending.erase(id)
			late.append(pending)
	var unsent: Array[_Pending] = []
	var kept: Array[_Pending] = []
	for pending: _Pending in _queue:
		if now >= pending.deadline:
			unsent.append(pending)
		else:
			kept.append(pending)
	_queue = kept
	for pending: _Pending in late:
		_finish(pending, _error_reply(pending.id, BackpackError.TIMEOUT, "no reply in time"))
	for pending: _Pending in unsent:
		_finish(pending, _error_reply(pending.id, BackpackError.TIMEOUT, "never connected"))


func _error_reply(id: int, code: String, message: String) -> Dictionary:
	return {"id": id, "error": {"code": code, "message": message}}


func _drop(code: String, message: String) -> void:
	var was_open: bool = state != State.DISCONNECTED
	_peer.disconnect_from_host()
	state = State.DISCONNECTED
	# Requests already sent may or may not have run: fail them rather than send a write twice.
	var sent: Array = _pending.values()
	_pending.clear()
	for pending: _Pending in sent:
		_finish(pending, _error_reply(pending.id, code, message))
	if code != BackpackError.CONNECTION_LOST or not _wanted:
		_fail_queue(code, message)
	if was_open:
		disconnected.emit()


func _fail_queue(code: String, message: String) -> void:
	var waiting: Array[_Pending] = _queue
	_queue = []
	for pending: _Pending in waiting:
		_finish(pending, _error_reply(pending.id, code, message))


func _schedule_reconnect(now: float) -> void:
	if not (_wanted and auto_reconnect):
		_wanted = false
		return
	var delay: float = minf(reconnect_max_delay, reconnect_min_delay * pow(2.0, _attempts))
	_attempts += 1
	_reconnect_at = now + delay
