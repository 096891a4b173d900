"""Godot's side of the GDExtension C ABI, played from Python with ctypes.

No Godot binary exists on the build machines, so the bridge is tested by
loading the library into this host: it hands the entry symbol a
``get_proc_address`` that answers with working implementations of the
interface functions the bridge uses, over a small model of Godot's values:

* String, StringName, PackedStringArray, PackedFloat32Array and Dictionary
  storage holds one 8-byte handle into ``Host.values``;
* a Variant is 24 bytes: the type (int64) then an int64/double payload or a
  handle.

Every value constructed gets a fresh handle and every destruction removes
one, so using a destroyed value, destroying one twice or leaking one shows up
in ``Host.errors`` / ``Host.values``. Packed arrays are copied on conversion
(Godot's copy-on-write, seen from outside); dictionaries are shared, as in
Godot, and free their slots with the last handle. A name the bridge asks for
that the host does not offer is recorded in ``Host.unknown``.

A host plays one Godot version (``Host(version="4.2")``, default 4.5): it
offers the functions it implements that this version's interface header
declares, each with the signature that header gives it (``godot_header.py``),
so a bridge calling one with another signature fails here as it would in
Godot. Without the headers (a checkout lacking ``../shared``) it falls back to
``FALLBACK_PROTOTYPES``, which ``test_godot_host_signatures.py`` holds equal
to the headers' wherever they are present.
"""

from __future__ import annotations

import ctypes as C
import functools
from collections import Counter
from dataclasses import dataclass, field

import godot_header

NIL, BOOL, INT, FLOAT, STRING = 0, 1, 2, 3, 4
STRING_NAME, DICTIONARY, ARRAY, PACKED_FLOAT32_ARRAY, PACKED_STRING_ARRAY = 21, 27, 28, 32, 34
CALL_OK, CALL_INVALID_METHOD, CALL_INVALID_ARGUMENT, CALL_TOO_MANY, CALL_TOO_FEW = 0, 1, 2, 3, 4
LEVELS = (0, 1, 2, 3)  # core, servers, scene, editor
VARIANT_SIZE = 24
vp = C.c_void_p


class CallError(C.Structure):
    _fields_ = [("error", C.c_int32), ("argument", C.c_int32), ("expected", C.c_int32)]


class PropertyInfo(C.Structure):
    _fields_ = [
        ("type", C.c_int32),
        ("name", vp),
        ("class_name", vp),
        ("hint", C.c_uint32),
        ("hint_string", vp),
        ("usage", C.c_uint32),
    ]


class MethodInfo(C.Structure):
    _fields_ = [
        ("name", vp),
        ("method_userdata", vp),
        ("call", vp),
        ("ptrcall", vp),
        ("flags", C.c_uint32),
        ("has_return_value", C.c_uint8),
        ("return_value_info", C.POINTER(PropertyInfo)),
        ("return_value_metadata", C.c_int32),
        ("argument_count", C.c_uint32),
        ("arguments_info", C.POINTER(PropertyInfo)),
        ("arguments_metadata", C.POINTER(C.c_int32)),
        ("default_argument_count", C.c_uint32),
        ("default_arguments", vp),
    ]


_CLASS_FUNCS = (
    "set_func",
    "get_func",
    "get_property_list_func",
    "free_property_list_func",
    "property_can_revert_func",
    "property_get_revert_func",
    "validate_property_func",
    "notification_func",
    "to_string_func",
    "reference_func",
    "unreference_func",
    "create_instance_func",
    "free_instance_func",
    "recreate_instance_func",
    "get_virtual_func",
    "get_virtual_call_data_func",
    "call_virtual_with_data_func",
    "get_rid_func",
    "class_userdata",
)


class ClassCreationInfo2(C.Structure):
    _fields_ = [("is_virtual", C.c_uint8), ("is_abstract", C.c_uint8), ("is_exposed", C.c_uint8)] + [
        (name, vp) for name in _CLASS_FUNCS
    ]


class ClassCreationInfo4(C.Structure):
    """What 4.5's classdb_register_extension_class5 takes (GDExtensionClassCreationInfo5 = Info4)."""

    _fields_ = [
        ("is_virtual", C.c_uint8),
        ("is_abstract", C.c_uint8),
        ("is_exposed", C.c_uint8),
        ("is_runtime", C.c_uint8),
        ("icon_path", vp),
    ] + [(name, vp) for name in _CLASS_FUNCS if name != "get_rid_func"]


class Initialization(C.Structure):
    _fields_ = [("minimum_initialization_level", C.c_int32), ("userdata", vp), ("initialize", vp), ("deinitialize", vp)]


GET_PROC_ADDRESS = C.CFUNCTYPE(vp, C.c_char_p)
LEVEL_FUNC = C.CFUNCTYPE(None, vp, C.c_int32)
CREATE_INSTANCE = C.CFUNCTYPE(vp, vp)
CREATE_INSTANCE2 = C.CFUNCTYPE(vp, vp, C.c_uint8)  # (class userdata, notify_postinitialize)
FREE_INSTANCE = C.CFUNCTYPE(None, vp, vp)
METHOD_CALL = C.CFUNCTYPE(None, vp, vp, C.POINTER(vp), C.c_int64, vp, C.POINTER(CallError))
METHOD_PTRCALL = C.CFUNCTYPE(None, vp, vp, C.POINTER(vp), vp)
CONVERT = C.CFUNCTYPE(None, vp, vp)  # (uninitialised destination, source)
PTR_CONSTRUCTOR = C.CFUNCTYPE(None, vp, C.POINTER(vp))
PTR_DESTRUCTOR = C.CFUNCTYPE(None, vp)


@dataclass
class Method:
    """A method as registered: name, (argument name, type) pairs, return type, entry points."""

    name: str
    arguments: list[tuple[str, int]]
    returns: int | None
    defaults: list  # values of the trailing parameters' defaults
    flags: int
    userdata: int
    call: object
    ptrcall: object


@dataclass
class RegisteredClass:
    name: str
    parent: str
    create: object
    free: object
    userdata: int
    info_version: int  # 2: ClassCreationInfo2 (create takes userdata), 4: Info4 (and notify_postinitialize)
    methods: dict[str, Method] = field(default_factory=dict)


class Strings:
    """PackedStringArray contents: contiguous 8-byte String slots, like Godot's."""

    def __init__(self, host: Host, values=()):
        self.host, self.slots = host, (C.c_uint64 * 0)()
        self.resize(len(values))
        for i, text in enumerate(values):
            host.replace(self.address(i), text)

    def __len__(self):
        return len(self.slots)

    def address(self, i: int) -> int:
        return C.addressof(self.slots) + 8 * i

    def resize(self, n: int) -> None:
        old = self.slots
        for i in range(n, len(old)):
            self.host.drop(C.addressof(old) + 8 * i)
        self.slots = (C.c_uint64 * n)(*old[:n])
        for i in range(len(old), n):
            self.host.put(self.address(i), "")

    def texts(self) -> list[str]:
        return [self.host.get(self.address(i)) for i in range(len(self))]

    def copy(self) -> Strings:
        return Strings(self.host, self.texts())

    def release(self) -> None:
        self.resize(0)


class Floats:
    """PackedFloat32Array contents."""

    def __init__(self, values=()):
        self.data = (C.c_float * len(values))(*values)

    def __len__(self):
        return len(self.data)

    def resize(self, n: int) -> None:
        self.data = (C.c_float * n)(*self.data[:n])

    def copy(self) -> Floats:
        return Floats(list(self.data))

    def release(self) -> None:
        pass


class Array:
    """Array contents: plain values (the bridge only reads Arrays given as arguments)."""

    def __init__(self, values=()):
        self.values = list(values)

    def copy(self) -> Array:
        return Array(self.values)

    def release(self) -> None:
        pass


class Dictionary:
    """Dictionary contents: key -> a 24-byte Variant slot; shared by reference, freed with its last handle."""

    def __init__(self, host: Host):
        self.host, self.slots, self.refs = host, {}, 0

    def copy(self) -> Dictionary:
        return self  # shared, as in Godot

    def release(self) -> None:
        if self.refs == 0:
            for slot in self.slots.values():
                self.host.variant_destroy_impl(C.addressof(slot))
            self.slots.clear()


class Host:
    """A fake Godot for one load of the library."""

    def __init__(self, version: str = "4.5", omit: tuple[str, ...] = ()):
        self.version = version
        self.prototypes = prototypes(version)
        self.values: dict[int, object] = {}
        self._next = 1
        self.errors: list[str] = []  # misuse of the ABI seen by the host
        self.printed: list[tuple[str, str]] = []  # print_error_with_message calls
        self.requested: list[str] = []
        self.unknown: list[str] = []
        self.classes: dict[str, RegisteredClass] = {}
        self.unregistered: list[str] = []
        self.instances: dict[int, int] = {}  # object address -> instance pointer
        self._keep: list[object] = []  # ctypes objects that must outlive the library's use of them
        self._objects: list[object] = []
        self.constructed: dict[int, str] = {}  # object address -> the construct function that made it
        self.postinitialized: Counter = Counter()  # object address -> NOTIFICATION_POSTINITIALIZE sent
        self.called: Counter = Counter()  # interface function -> calls
        self._functions = {name: getattr(self, "_" + name) for name in self.prototypes if name not in omit}
        self._pointers: dict[str, int] = {}
        self.get_proc_address = GET_PROC_ADDRESS(self._get_proc_address)

    # -- handles -----------------------------------------------------------

    def put(self, address: int, value) -> None:
        handle, self._next = self._next, self._next + 1
        if isinstance(value, Dictionary):
            value.refs += 1
        self.values[handle] = value
        C.c_uint64.from_address(address).value = handle

    def get(self, address: int):
        handle = C.c_uint64.from_address(address).value
        if handle not in self.values:
            raise RuntimeError(f"use of a destroyed or uninitialised value (handle {handle})")
        return self.values[handle]

    def drop(self, address: int) -> None:
        value = self.get(address)
        del self.values[C.c_uint64.from_address(address).value]
        C.c_uint64.from_address(address).value = 0
        if isinstance(value, Dictionary):
            value.refs -= 1
        if isinstance(value, (Strings, Floats, Dictionary, Array)):
            value.release()

    def replace(self, address: int, value) -> None:
        self.drop(address)
        self.put(address, value)

    # -- variants ----------------------------------------------------------

    def variant_type(self, address: int) -> int:
        return C.c_int64.from_address(address).value

    def variant_write(self, address: int, type_: int, value) -> None:
        C.c_int64.from_address(address).value = type_
        if type_ in (NIL, BOOL, INT):
            C.c_int64.from_address(address + 8).value = int(value or 0)
        elif type_ == FLOAT:
            C.c_double.from_address(address + 8).value = float(value)
        else:
            self.put(address + 8, value)

    def variant_read(self, address: int):
        t = self.variant_type(address)
        if t in (NIL, BOOL, INT):
            return t, C.c_int64.from_address(address + 8).value
        if t == FLOAT:
            return t, C.c_double.from_address(address + 8).value
        return t, self.get(address + 8)

    def variant_destroy_impl(self, address: int) -> None:
        t = self.variant_type(address)
        if t not in (NIL, BOOL, INT, FLOAT):
            self.drop(address + 8)
        C.c_int64.from_address(address).value = NIL

    def new_variant(self, type_: int, value):
        """A host-owned Variant holding ``value`` (Python str/int/float/list) as ``type_``."""
        buf = C.create_string_buffer(VARIANT_SIZE)
        self.variant_write(C.addressof(buf), type_, self.wrap(type_, value))
        return buf

    def wrap(self, type_: int, value):
        if type_ == ARRAY:
            return Array(value)
        if type_ == PACKED_STRING_ARRAY:
            return Strings(self, value)
        if type_ == PACKED_FLOAT32_ARRAY:
            return Floats(value)
        return value

    def to_python(self, type_: int, value):
        if isinstance(value, Strings):
            return value.texts()
        if isinstance(value, Floats):
            return list(value.data)
        if isinstance(value, Array):
            return list(value.values)
        if isinstance(value, Dictionary):
            return {k: self.to_python(*self.variant_read(C.addressof(slot))) for k, slot in value.slots.items()}
        if type_ == BOOL:
            return bool(value)
        return None if type_ == NIL else value

    def read_variant(self, buf):
        return self.to_python(*self.variant_read(C.addressof(buf)))

    # -- typed values (ptrcall arguments and returns) ------------------------

    def new_typed(self, type_: int, value=None):
        if type_ == BOOL:
            return C.c_bool(bool(value))
        if type_ == INT:
            return C.c_int64(value or 0)
        if type_ == FLOAT:
            return C.c_double(value or 0.0)
        buf = C.create_string_buffer(16)
        if type_ == DICTIONARY:
            self.put(C.addressof(buf), Dictionary(self))
        elif type_ == STRING:
            self.put(C.addressof(buf), value or "")
        else:
            self.put(C.addressof(buf), self.wrap(type_, value or []))
        return buf

    def read_typed(self, type_: int, buf):
        if type_ in (BOOL, INT, FLOAT):
            return buf.value
        return self.to_python(type_, self.get(C.addressof(buf)))

    def destroy_typed(self, type_: int, buf) -> None:
        if type_ not in (BOOL, INT, FLOAT):
            self.drop(C.addressof(buf))

    # -- get_proc_address ----------------------------------------------------

    def _get_proc_address(self, name: bytes):
        name = name.decode()
        self.requested.append(name)
        if name not in self._functions:
            self.unknown.append(name)
            return None
        if name not in self._pointers:
            fn = self.prototypes[name](self._guard(self._functions[name], counted=name))
            self._keep.append(fn)
            self._pointers[name] = C.cast(fn, vp).value
        return self._pointers[name]

    def _guard(self, fn, counted: str | None = None):
        """Errors inside a callback cannot cross back into C: record them instead."""

        @functools.wraps(fn)
        def guarded(*args):
            if counted:
                self.called[counted] += 1
            try:
                return fn(*args)
            except Exception as exc:  # noqa: BLE001 - reported through self.errors
                self.errors.append(f"{fn.__name__}: {exc!r}")
                return None

        return guarded

    def _callback(self, ctype, fn) -> int:
        f = ctype(self._guard(fn))
        self._keep.append(f)
        return C.cast(f, vp).value

    # -- the interface functions ---------------------------------------------

    def _print_error_with_message(self, description, message, function, file, line, notify):
        self.printed.append((C.string_at(description).decode(), C.string_at(message).decode()))

    def _classdb_register_extension_class2(self, library, name, parent, info):
        info = C.cast(info, C.POINTER(ClassCreationInfo2)).contents
        name = self.get(name)
        self.classes[name] = RegisteredClass(
            name,
            self.get(parent),
            CREATE_INSTANCE(info.create_instance_func),
            FREE_INSTANCE(info.free_instance_func),
            info.class_userdata,
            2,
        )

    def _classdb_register_extension_class5(self, library, name, parent, info):
        info = C.cast(info, C.POINTER(ClassCreationInfo4)).contents
        if info.icon_path:
            self.get(info.icon_path)  # Godot reads it as a String
        name = self.get(name)
        self.classes[name] = RegisteredClass(
            name,
            self.get(parent),
            CREATE_INSTANCE2(info.create_instance_func),
            FREE_INSTANCE(info.free_instance_func),
            info.class_userdata,
            4,
        )

    def _classdb_register_extension_class_method(self, library, class_name, info):
        info = C.cast(info, C.POINTER(MethodInfo)).contents
        arguments = [
            (self.get(info.arguments_info[i].name), info.arguments_info[i].type) for i in range(info.argument_count)
        ]
        returns = info.return_value_info.contents.type if info.has_return_value else None
        # Godot copies the default Variants when a method is registered: so does the host
        pointers = C.cast(info.default_arguments, C.POINTER(vp))
        defaults = [self.to_python(*self.variant_read(pointers[i])) for i in range(info.default_argument_count)]
        name = self.get(info.name)
        self.classes[self.get(class_name)].methods[name] = Method(
            name,
            arguments,
            returns,
            defaults,
            info.flags,
            info.method_userdata,
            METHOD_CALL(info.call),
            METHOD_PTRCALL(info.ptrcall),
        )

    def _classdb_unregister_extension_class(self, library, name):
        self.unregistered.append(self.get(name))

    def _construct(self, class_name, how: str, postinitialize: bool):
        if self.get(class_name) != "RefCounted":
            raise RuntimeError("the bridge should build on RefCounted")
        obj = C.create_string_buffer(64)
        self._objects.append(obj)
        self.constructed[C.addressof(obj)] = how
        if postinitialize:
            self.postinitialized[C.addressof(obj)] += 1
        return C.addressof(obj)

    def _classdb_construct_object(self, class_name):
        return self._construct(class_name, "classdb_construct_object", postinitialize=True)

    def _classdb_construct_object2(self, class_name):
        # 4.4's: no NOTIFICATION_POSTINITIALIZE; whoever asked for the object sends it
        return self._construct(class_name, "classdb_construct_object2", postinitialize=False)

    def _object_set_instance(self, obj, class_name, instance):
        self.instances[obj] = instance

    def _string_name_new_with_latin1_chars(self, dest, text, is_static):
        self.put(dest, C.string_at(text).decode("latin-1"))

    def _string_new_with_utf8_chars_and_len(self, dest, text, size):
        self.put(dest, C.string_at(text, size).decode("utf-8") if size else "")

    def _string_new_with_utf8_chars_and_len2(self, dest, text, size):
        self._string_new_with_utf8_chars_and_len(dest, text, size)
        return 0  # OK

    def _string_to_utf8_chars(self, string, out, max_length):
        data = self.get(string).encode("utf-8")
        if out:
            C.memmove(out, data, min(len(data), max_length))
        return len(data)

    def _variant_get_type(self, variant):
        return self.variant_type(variant)

    def _variant_destroy(self, variant):
        self.variant_destroy_impl(variant)

    def _variant_call(self, variant, method, args, argc, r_return, r_error):
        method, (t, value) = self.get(method), self.variant_read(variant)
        result = None
        if isinstance(value, (Strings, Floats)) and method == "size" and argc == 0:
            result = len(value)
        elif isinstance(value, (Strings, Floats)) and method == "resize" and argc == 1:
            n = self.variant_read(args[0])[1]
            value.resize(n)
            result = 0
        if result is None:
            r_error.contents.error = CALL_INVALID_METHOD
            self.variant_write(r_return, NIL, None)
            raise RuntimeError(f"variant_call of {method} on type {t} is not modelled")
        r_error.contents.error = CALL_OK
        self.variant_write(r_return, INT, result)

    def _get_variant_from_type_constructor(self, type_):
        def from_type(dest, source):
            if type_ == BOOL:
                self.variant_write(dest, BOOL, C.c_bool.from_address(source).value)
            elif type_ == INT:
                self.variant_write(dest, INT, C.c_int64.from_address(source).value)
            elif type_ == FLOAT:
                self.variant_write(dest, FLOAT, C.c_double.from_address(source).value)
            else:
                self.variant_write(dest, type_, self._copy(self.get(source)))

        return self._callback(CONVERT, from_type)

    def _get_variant_to_type_constructor(self, type_):
        def to_type(dest, variant):
            t, value = self.variant_read(variant)
            if t != type_:
                raise RuntimeError(f"conversion of a type-{t} Variant as type {type_}")
            if type_ == BOOL:
                C.c_bool.from_address(dest).value = bool(value)
            elif type_ == INT:
                C.c_int64.from_address(dest).value = value
            elif type_ == FLOAT:
                C.c_double.from_address(dest).value = value
            else:
                self.put(dest, self._copy(value))

        return self._callback(CONVERT, to_type)

    def _copy(self, value):
        return value.copy() if isinstance(value, (Strings, Floats, Dictionary, Array)) else value

    def _variant_get_ptr_constructor(self, type_, index):
        empty = {
            STRING: lambda: "",
            PACKED_STRING_ARRAY: lambda: Strings(self),
            PACKED_FLOAT32_ARRAY: lambda: Floats(),
            DICTIONARY: lambda: Dictionary(self),
        }
        # constructor 2, as in Godot: String(StringName), PackedStringArray(Array), PackedFloat32Array(Array)
        converted = {
            STRING: str,
            PACKED_STRING_ARRAY: lambda a: Strings(self, [str(v) for v in a.values]),
            PACKED_FLOAT32_ARRAY: lambda a: Floats([float(v) for v in a.values]),
        }
        if type_ not in empty or index not in (0, 1, 2) or (index == 2 and type_ not in converted):
            raise RuntimeError(f"constructor {index} of type {type_} is not modelled")

        def construct(dest, args):
            if index == 0:
                self.put(dest, empty[type_]())
            elif index == 1:
                self.put(dest, self._copy(self.get(args[0])))
            else:
                self.put(dest, converted[type_](self.get(args[0])))

        return self._callback(PTR_CONSTRUCTOR, construct)

    def _variant_get_ptr_destructor(self, type_):
        if type_ not in (STRING, STRING_NAME, PACKED_STRING_ARRAY, PACKED_FLOAT32_ARRAY, DICTIONARY, ARRAY):
            raise RuntimeError(f"destructor of type {type_} is not modelled")
        return self._callback(PTR_DESTRUCTOR, self.drop)

    def _packed_string_array_operator_index(self, array, index):
        strings = self.get(array)
        return strings.address(index) if 0 <= index < len(strings) else None

    _packed_string_array_operator_index_const = _packed_string_array_operator_index

    def _packed_float32_array_operator_index(self, array, index):
        floats = self.get(array)
        return C.addressof(floats.data) + 4 * index if 0 <= index < len(floats) else None

    _packed_float32_array_operator_index_const = _packed_float32_array_operator_index

    def _dictionary_operator_index(self, dictionary, key):
        d = self.get(dictionary)
        t, value = self.variant_read(key)
        k = self.to_python(t, value)
        if k not in d.slots:
            d.slots[k] = C.create_string_buffer(VARIANT_SIZE)  # a Nil Variant
        return C.addressof(d.slots[k])


# Every function the host implements -> its ctypes prototype, for checkouts without
# Godot's headers; test_godot_host_signatures.py holds it equal to the headers'.
_ptr_ptr = C.POINTER(vp)
FALLBACK_PROTOTYPES = {
    "print_error_with_message": C.CFUNCTYPE(None, vp, vp, vp, vp, C.c_int32, C.c_uint8),
    "classdb_register_extension_class2": C.CFUNCTYPE(None, vp, vp, vp, vp),
    "classdb_register_extension_class5": C.CFUNCTYPE(None, vp, vp, vp, vp),
    "classdb_register_extension_class_method": C.CFUNCTYPE(None, vp, vp, vp),
    "classdb_unregister_extension_class": C.CFUNCTYPE(None, vp, vp),
    "classdb_construct_object": C.CFUNCTYPE(vp, vp),
    "classdb_construct_object2": C.CFUNCTYPE(vp, vp),
    "object_set_instance": C.CFUNCTYPE(None, vp, vp, vp),
    "string_name_new_with_latin1_chars": C.CFUNCTYPE(None, vp, vp, C.c_uint8),
    "string_new_with_utf8_chars_and_len": C.CFUNCTYPE(None, vp, vp, C.c_int64),
    "string_new_with_utf8_chars_and_len2": C.CFUNCTYPE(C.c_int64, vp, vp, C.c_int64),
    "string_to_utf8_chars": C.CFUNCTYPE(C.c_int64, vp, vp, C.c_int64),
    "variant_get_type": C.CFUNCTYPE(C.c_int32, vp),
    "variant_destroy": C.CFUNCTYPE(None, vp),
    "variant_call": C.CFUNCTYPE(None, vp, vp, _ptr_ptr, C.c_int64, vp, C.POINTER(CallError)),
    "get_variant_from_type_constructor": C.CFUNCTYPE(vp, C.c_int32),
    "get_variant_to_type_constructor": C.CFUNCTYPE(vp, C.c_int32),
    "variant_get_ptr_constructor": C.CFUNCTYPE(vp, C.c_int32, C.c_int32),
    "variant_get_ptr_destructor": C.CFUNCTYPE(vp, C.c_int32),
    "packed_string_array_operator_index": C.CFUNCTYPE(vp, vp, C.c_int64),
    "packed_string_array_operator_index_const": C.CFUNCTYPE(vp, vp, C.c_int64),
    "packed_float32_array_operator_index": C.CFUNCTYPE(vp, vp, C.c_int64),
    "packed_float32_array_operator_index_const": C.CFUNCTYPE(vp, vp, C.c_int64),
    "dictionary_operator_index": C.CFUNCTYPE(vp, vp, vp),
}
# The version that added each function newer than 4.2 (the fallback's @since).
FALLBACK_SINCE = {
    "classdb_register_extension_class5": "4.5",
    "classdb_construct_object2": "4.4",
    "string_new_with_utf8_chars_and_len2": "4.3",
}
IMPLEMENTED = tuple(FALLBACK_PROTOTYPES)
STRUCTS = {"GDExtensionCallError": CallError}  # pointed to in signatures and modelled by the host


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def prototypes(version: str) -> dict:
    """What a Godot of ``version`` offers of the functions the host implements, with its ctypes prototype."""
    if godot_header.headers_available():
        declared = godot_header.functions(version)
        return {name: godot_header.prototype(version, name, STRUCTS) for name in IMPLEMENTED if name in declared}
    return {
        name: proto
        for name, proto in FALLBACK_PROTOTYPES.items()
        if _version(FALLBACK_SINCE.get(name, "4.1")) <= _version(version)
    }


class Instance:
    """A BackpackEngine object created through the registered create function."""

    def __init__(self, host: Host, cls: RegisteredClass, notify_postinitialize: bool = True):
        """As ClassDB::instantiate does; ``notify_postinitialize=False`` as instantiate_without_postinitialization
        (4.4+), after which Godot sends NOTIFICATION_POSTINITIALIZE itself."""
        self.host, self.cls = host, cls
        if cls.info_version == 2:
            self.object = cls.create(cls.userdata)
        else:
            self.object = cls.create(cls.userdata, notify_postinitialize)
        assert self.object, "create_instance returned null"
        if cls.info_version == 4 and not notify_postinitialize:
            host.postinitialized[self.object] += 1
        self.pointer = host.instances[self.object]

    def call(self, name: str, *args, types=None):
        """Through the Variant `call` entry: returns (result, CallError)."""
        method = self.cls.methods[name]
        types = types or [t for _, t in method.arguments]
        variants = [self.host.new_variant(t, a) for t, a in zip(types, args)]
        argv = (vp * max(1, len(variants)))(*[C.addressof(v) for v in variants])
        ret, error = C.create_string_buffer(VARIANT_SIZE), CallError(-1, -1, -1)
        method.call(method.userdata, self.pointer, argv, len(variants), C.addressof(ret), C.byref(error))
        result = self.host.read_variant(ret)
        for v in variants + [ret]:
            self.host.variant_destroy_impl(C.addressof(v))
        return result, error

    def ptrcall(self, name: str, *args):
        """Through the typed `ptrcall` entry, the return initialised as Godot does."""
        method = self.cls.methods[name]
        values = [self.host.new_typed(t, a) for (_, t), a in zip(method.arguments, args)]
        argv = (vp * max(1, len(values)))(*[C.addressof(v) for v in values])
        ret = self.host.new_typed(method.returns) if method.returns is not None else None
        method.ptrcall(method.userdata, self.pointer, argv, C.addressof(ret) if ret is not None else None)
        result = self.host.read_typed(method.returns, ret) if ret is not None else None
        for (_, t), v in zip(method.arguments, values):
            self.host.destroy_typed(t, v)
        if ret is not None:
            self.host.destroy_typed(method.returns, ret)
        return result

    def free(self) -> None:
        self.cls.free(self.cls.userdata, self.pointer)
