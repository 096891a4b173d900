"""Scenes as items: glTF/GLB (with XMP JSON-LD packets) and Godot .tscn files read into item descriptions."""
