"""Godot's text resource syntax (``.tscn``, ``.tres``): sections, properties and variant values.

A file is a sequence of sections: a heading ``[tag key=value ...]`` and the
``key = value`` properties under it, until the next heading. Values are
Godot variants and may span lines: strings (with escapes, raw newlines
allowed), ``&"string names"``, ``^"node paths"``, numbers (``inf``, ``nan``),
``true`` / ``false`` / ``null``, arrays ``[...]``, dictionaries ``{k: v}``,
constructors ``Vector3(1, 2, 3)``, ``Color(...)``, ``PackedStringArray(...)``,
``NodePath("..")``, ``ExtResource("id")``, ``SubResource("id")``, and typed
containers ``Array[StringName]([...])``. ``;`` starts a comment.

:func:`parse_sections` returns the sections with values as Python values
(:class:`ExtRef`, :class:`SubRef`, :class:`StringName`, :class:`NodePath`,
:class:`Call` for the other constructors); any syntax error is a
:class:`~backpack.errors.SceneFileError` with the line and column.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from backpack.errors import SceneFileError

_PUNCTUATION = set("[]{}(),:=")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_/.@]*")
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "b": "\b",
    "f": "\f",
    "a": "\a",
    "v": "\v",
    '"': '"',
    "'": "'",
    "\\": "\\",
    "/": "/",
}
_SPECIAL_FLOATS = {"inf": math.inf, "-inf": -math.inf, "inf_neg": -math.inf, "nan": math.nan}
_CONSTANTS = {"true": True, "false": False, "null": None, "nil": None}


class StringName(str):
    """A ``&"name"`` value."""


class NodePath(str):
    """A ``^"path"`` or ``NodePath("path")`` value."""


@dataclass(frozen=True)
class ExtRef:
    """``ExtResource("id")``: a reference to an ``[ext_resource]`` of the same file."""

    id: str
    line: int = field(default=0, compare=False)
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class SubRef:
    """``SubResource("id")``: a reference to a ``[sub_resource]`` of the same file."""

    id: str
    line: int = field(default=0, compare=False)
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Call:
    """Any other constructor: ``Vector3(1, 2, 3)`` is ``Call("Vector3", (1, 2, 3))``."""

    name: str
    args: tuple

    def __str__(self) -> str:
        return f"{self.name}({', '.join(map(str, self.args))})"


@dataclass
class Section:
    """One ``[tag ...]`` heading, its attributes and the properties under it, with the heading's line."""

    tag: str
    attributes: dict
    properties: dict
    line: int
    column: int


@dataclass(frozen=True)
class _Token:
    kind: str  # one of _PUNCTUATION, "string", "stringname", "nodepath", "number", "name", "end"
    value: object
    line: int
    column: int


class _Lexer:
    def __init__(self, text: str, path):
        self.text, self.path = text, path
        self.position, self.line, self.line_start = 0, 1, 0

    def fail(self, problem: str, line: int | None = None, column: int | None = None):
        raise SceneFileError(
            self.path, problem, line=line or self.line, column=column or self.position - self.line_start + 1
        )

    def column(self) -> int:
        return self.position - self.line_start + 1

    def next(self) -> _Token:
        """The next token."""
        text = self.text
        self._skip_blanks()
        line, column = self.line, self.column()
        if self.position >= len(text):
            return _Token("end", None, line, column)
        char = text[self.position]
        if char in _PUNCTUATION:
            self.position += 1
            return _Token(char, char, line, column)
        if char == '"':
            return _Token("string", self._string(), line, column)
        if char in "&^" and text.startswith('"', self.position + 1):
            self.position += 1
            return _Token("stringname" if char == "&" else "nodepath", self._string(), line, column)
        if (number := _NUMBER.match(text, self.position)) is not None:
            self.position = number.end()
            raw = number.group()
            return _Token("number", float(raw) if any(c in raw for c in ".eE") else int(raw), line, column)
        if text.startswith("-inf", self.position):
            self.position += 4
            return _Token("number", -math.inf, line, column)
        if (name := _NAME.match(text, self.position)) is not None:
            self.position = name.end()
            return _Token("name", name.group(), line, column)
        self.fail(f"unexpected character {char!r}")

    def next_char(self) -> str:
        """The next character that is not blank or comment ("" at the end), left unread."""
        self._skip_blanks()
        return self.text[self.position : self.position + 1]

    def key(self) -> _Token:
        """A property name and its '=': anything up to '=' on one line (``0:0/0/terrain``), or a string."""
        self._skip_blanks()
        line, column = self.line, self.column()
        if self.text.startswith('"', self.position):
            name = self._string()
            self._skip_blanks()
            if not self.text.startswith("=", self.position):
                self.fail(f"expected '=' after the property name {name!r}")
            self.position += 1
            return _Token("name", name, line, column)
        end = self.text.find("\n", self.position)
        end = len(self.text) if end < 0 else end
        equals = self.text.find("=", self.position, end)
        if equals < 0:
            self.fail(f"expected 'name = value', found {self.text[self.position : end].strip()[:40]!r}")
        name = self.text[self.position : equals].strip()
        if not name or any(c in name for c in ' \t"[]{}(),'):
            self.fail(f"{name!r} is not a property name")
        self.position = equals + 1
        return _Token("name", name, line, column)

    def _skip_blanks(self) -> None:
        text = self.text
        while self.position < len(text):
            char = text[self.position]
            if char == "\n":
                self.position += 1
                self.line, self.line_start = self.line + 1, self.position
            elif char in " \t\r\ufeff":
                self.position += 1
            elif char == ";":
                end = text.find("\n", self.position)
                self.position = len(text) if end < 0 else end
            else:
                return

    def _string(self) -> str:
        text = self.text
        start_line, start_column = self.line, self.position - self.line_start + 1
        self.position += 1
        out = []
        while True:
            if self.position >= len(text):
                self.fail("unterminated string (it starts here)", start_line, start_column)
            char = text[self.position]
            if char == '"':
                self.position += 1
                return "".join(out)
            if char == "\n":
                self.line, self.line_start = self.line + 1, self.position + 1
            if char == "\\":
                out.append(self._escape())
                continue
            out.append(char)
            self.position += 1

    def _escape(self) -> str:
        text = self.text
        code = text[self.position + 1 : self.position + 2]
        if code in _ESCAPES:
            self.position += 2
            return _ESCAPES[code]
        if code in ("u", "U"):
            digits = 4 if code == "u" else 6
            hex_digits = text[self.position + 2 : self.position + 2 + digits]
            if len(hex_digits) == digits and all(c in "0123456789abcdefABCDEF" for c in hex_digits):
                value = int(hex_digits, 16)
                if value <= 0x10FFFF:
                    self.position += 2 + digits
                    return chr(value)
        self.fail(f"invalid escape sequence {text[self.position : self.position + 2]!r} in a string")


class _Parser:
    def __init__(self, text: str, path):
        self.path = path
        self.lexer = _Lexer(text, path)
        self._token: _Token | None = None

    @property
    def token(self) -> _Token:
        """The current token, read on demand (so a property name can be read raw after a value)."""
        if self._token is None:
            self._token = self.lexer.next()
        return self._token

    def fail(self, problem: str, token: _Token | None = None):
        token = token or self.token
        raise SceneFileError(self.path, problem, line=token.line, column=token.column)

    def advance(self) -> _Token:
        token, self._token = self.token, None
        return token

    def expect(self, kind: str, what: str) -> _Token:
        if self.token.kind != kind:
            self.fail(f"expected {what}, found {self._describe(self.token)}")
        return self.advance()

    @staticmethod
    def _describe(token: _Token) -> str:
        if token.kind == "end":
            return "the end of the file"
        if token.kind in ("string", "stringname", "nodepath"):
            return f"the string {token.value!r}"
        return f"{token.value!r}"

    # -- sections -----------------------------------------------------------------------

    def sections(self) -> list[Section]:
        sections: list[Section] = []
        while (char := self.lexer.next_char()) != "":
            if char == "[":
                sections.append(self.heading())
                continue
            key = self.lexer.key()
            if not sections:
                self.fail("a property before the first [heading]", key)
            sections[-1].properties[key.value] = self.value()
        return sections

    def heading(self) -> Section:
        opening = self.advance()
        tag = self.expect("name", "a section tag after '['")
        attributes = {}
        while self.token.kind != "]":
            if self.token.kind != "name":
                self.fail(
                    f"expected an attribute name or ']' in the [{tag.value}] heading, found "
                    f"{self._describe(self.token)}"
                )
            key = self.advance()
            self.expect("=", f"'=' after {key.value!r}")
            attributes[key.value] = self.value()
        self.advance()
        return Section(tag.value, attributes, {}, opening.line, opening.column)

    # -- values ---------------------------------------------------------------------------

    def value(self):
        token = self.token
        kind = token.kind
        if kind == "string":
            return self.advance().value
        if kind == "stringname":
            return StringName(self.advance().value)
        if kind == "nodepath":
            return NodePath(self.advance().value)
        if kind == "number":
            return self.advance().value
        if kind == "[":
            return self.array()
        if kind == "{":
            return self.dictionary()
        if kind == "name":
            name = token.value
            if name in _CONSTANTS:
                self.advance()
                return _CONSTANTS[name]
            if name in _SPECIAL_FLOATS:
                self.advance()
                return _SPECIAL_FLOATS[name]
            self.advance()
            if self.token.kind == "[" and name in ("Array", "Dictionary"):
                self.type_arguments()
                self.expect("(", f"'(' after the typed {name}")
                inner = self.value()
                self.expect(")", f"')' closing the typed {name}")
                return inner
            if self.token.kind == "(":
                return self.call(token)
            self.fail(f"unexpected name {name!r} where a value belongs", token)
        self.fail(f"expected a value, found {self._describe(token)}")

    def next_element(self, closing: str, where: str) -> None:
        """After an element of ``where``: a ',' (taken) or the closing bracket (left to the caller)."""
        if self.token.kind == ",":
            self.advance()
        elif self.token.kind != closing:
            self.fail(f"expected ',' or {closing!r} in {where}, found {self._describe(self.token)}")

    def array(self) -> list:
        self.advance()
        items = []
        while self.token.kind != "]":
            items.append(self.value())
            self.next_element("]", "an array")
        self.advance()
        return items

    def dictionary(self) -> dict:
        self.advance()
        items = {}
        while self.token.kind != "}":
            key_token = self.token
            key = self.value()
            self.expect(":", "':' after a dictionary key")
            try:
                items[key] = self.value()
            except TypeError:
                self.fail("a dictionary key that cannot be a key here (an array or dictionary)", key_token)
            self.next_element("}", "a dictionary")
        self.advance()
        return items

    def type_arguments(self) -> None:
        """Skip ``[Type]`` / ``[Key, Value]`` of a typed container (the elements carry their own types)."""
        self.advance()
        depth = 1
        while depth:
            token = self.advance()
            if token.kind == "end":
                self.fail("the typed container's '[' is never closed", token)
            depth += {"[": 1, "]": -1}.get(token.kind, 0)

    def call(self, name_token: _Token):
        name = name_token.value
        self.advance()
        args = []
        while self.token.kind != ")":
            if name == "Object" and not args and self.token.kind == "name":
                args.append(self.advance().value)  # Object(ClassName, "property": value, ...)
            else:
                arg = self.value()
                if self.token.kind == ":":
                    self.advance()
                    arg = (arg, self.value())
                args.append(arg)
            self.next_element(")", f"{name}(...)")
        self.advance()
        if name in ("ExtResource", "SubResource"):
            if len(args) != 1 or not isinstance(args[0], (str, int)) or isinstance(args[0], bool):
                self.fail(f"{name}(...) takes one id", name_token)
            ref = ExtRef if name == "ExtResource" else SubRef
            return ref(str(args[0]), name_token.line, name_token.column)
        if name == "NodePath" or name == "StringName":
            if len(args) != 1 or not isinstance(args[0], str):
                self.fail(f"{name}(...) takes one string", name_token)
            return (NodePath if name == "NodePath" else StringName)(args[0])
        if name.startswith("Packed") and name.endswith("Array"):
            return list(args)
        return Call(name, tuple(args))


def parse_sections(text: str, path) -> list[Section]:
    """The sections of a Godot text resource, values parsed (see the module docstring)."""
    return _Parser(text, path).sections()
