@tool
class_name BackpackError
extends RefCounted
## An error from a Backpack server or from the client itself: a stable [member code]
## (match on it) and a [member message] for people.
##
## Server codes are those of docs/protocol.md ("Error codes"); the client adds
## [constant TIMEOUT], [constant CONNECTION_REFUSED], [constant CONNECTION_LOST] and
## [constant NOT_CONNECTED], listed there too under "Codes a client reports itself".
## [code]@tool[/code] because the editor dock creates these: without it the editor makes a
## placeholder whose [member code] and [method describe] cannot be used.

const BAD_FRAME := "bad_frame"
const FRAME_TOO_LARGE := "frame_too_large"
const BAD_REQUEST := "bad_request"
const UNKNOWN_OP := "unknown_op"
const UNAUTHORIZED := "unauthorized"
const FORBIDDEN := "forbidden"
const INVALID_INPUT := "invalid_input"
const UNKNOWN_ITEM := "unknown_item"
const UNKNOWN_USER := "unknown_user"
const NOT_FITTED := "not_fitted"
const BATCH_TOO_LARGE := "batch_too_large"
const TOO_MANY_RESULTS := "too_many_results"
const TOO_DEEP := "too_deep"
const AUTH_TIMEOUT := "auth_timeout"
const RATE_LIMITED := "rate_limited"
const TOO_MANY_CONNECTIONS := "too_many_connections"
const IDLE_TIMEOUT := "idle_timeout"
const UNKNOWN_JOB := "unknown_job"
const READ_ONLY := "read_only"
const INTERNAL := "internal"
const TIMEOUT := "timeout"
const CONNECTION_REFUSED := "connection_refused"
const CONNECTION_LOST := "connection_lost"
const NOT_CONNECTED := "not_connected"

## Plain sentences for a game developer, by code.
const ADVICE := {
	UNAUTHORIZED:
	"The server did not accept the token. Create one with `backpack token create --role admin`"
	+ " and paste its secret into the Token field.",
	FORBIDDEN: "This token's role may not do that. Use an admin (or service) token.",
	NOT_FITTED: "No model has been trained yet. Record some picks, press Fit, then ask again.",
	UNKNOWN_ITEM:
	"The model has never seen that item. Record picks that use it and fit again.",
	UNKNOWN_USER: "The server has never seen that player.",
	UNKNOWN_JOB: "There is no training job with that number.",
	READ_ONLY:
	"This endpoint serves a read-only copy of the model: send picks and training to the main"
	+ " `backpack serve`.",
	INVALID_INPUT: "An argument was missing or had the wrong type or value.",
	BATCH_TOO_LARGE: "Too much in one request (more than the server's max_batch): ask for less.",
	TOO_MANY_RESULTS:
	"Too many results in one request (players x n over the server's max_results): ask for fewer.",
	RATE_LIMITED: "Too many requests per second: slow down and retry.",
	TOO_MANY_CONNECTIONS: "The server is full (max_connections): close other clients.",
	IDLE_TIMEOUT: "The server closed an idle connection; the client reconnects by itself.",
	INTERNAL: "The server failed on this request (a bug; see its log). It keeps running.",
	TIMEOUT: "The server did not answer in time. Is it busy or stopped?",
	CONNECTION_REFUSED:
	"Could not reach the Backpack server. Start it (the dock's Start button, or"
	+ " `backpack serve`) and check the host and port.",
	CONNECTION_LOST:
	"The connection to the server broke before the answer came; the request may or may not"
	+ " have run.",
	NOT_CONNECTED: "The client is not connected: call connect_to_server() first.",
}

## The stable code, e.g. [code]"not_fitted"[/code].
var code: String
## The server's (or client's) explanation; may change between versions.
var message: String


func _init(error_code: String = "", error_message: String = "") -> void:
	code = error_code
	message = error_message


## The error a reply carries, or [code]null[/code] when the reply holds a result.
static func from_reply(reply: Dictionary) -> BackpackError:
	if not reply.has("error"):
		return null
	var error: Dictionary = reply["error"]
	return BackpackError.new(str(error.get("code", INTERNAL)), str(error.get("message", "")))


## What went wrong and what to do, in words a game developer understands.
func describe() -> String:
	var advice: String = ADVICE.get(code, "The server answered with an error.")
	if message.is_empty():
		return "%s (%s)" % [advice, code]
	return "%s (%s: %s)" % [advice, code, message]
