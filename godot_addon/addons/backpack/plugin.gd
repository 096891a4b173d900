@tool
extends EditorPlugin
## Adds the Backpack dock to the editor; everything else lives in the dock's scene.

const DOCK_SCENE := preload("res://addons/backpack/backpack_dock.tscn")

var _dock: Control  # the dock scene's root, backpack_dock.gd


func _enter_tree() -> void:
	_dock = DOCK_SCENE.instantiate()
	add_control_to_dock(DOCK_SLOT_RIGHT_UL, _dock)


func _exit_tree() -> void:
	if _dock != null:
		_dock.call("shutdown")  # stops the server the dock started
		remove_control_from_docks(_dock)
		_dock.queue_free()
		_dock = null
