"""Reading interactions (CSV, TSV, JSON Lines) and item descriptions (JSON-LD) from files.

Files are streamed: interactions come out in chunks of ``chunk_size`` rows,
so an import never holds a whole file. Every malformed row is an
:class:`~backpack.errors.InvalidInputError` naming the file and line; the CLI
then stores nothing from that import (an import is all or nothing).

Interaction columns (CSV header or JSON keys): ``user`` and ``item``
(required; ``user_id`` / ``item_id`` also accepted), then optionally
``weight``, ``kind`` (view, like, ...: mapped to a weight by the engine) and
``timestamp`` (seconds since the epoch, or ISO 8601; ``time`` / ``ts`` also
accepted). Other columns are ignored.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from backpack.core.arrays import finite_number
from backpack.core.timestamps import parse_timestamp
from backpack.errors import InvalidInputError

_ALIASES = {
    "user": ("user", "user_id", "userid"),
    "item": ("item", "item_id", "itemid"),
    "weight": ("weight", "value"),
    "kind": ("kind", "type", "action"),
    "timestamp": ("timestamp", "time", "ts"),
}
INTERACTION_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
ITEM_FORMATS = {".jsonld": "jsonld", ".json": "jsonld"}


@dataclass
class InteractionChunk:
    """Up to ``chunk_size`` interactions; optional columns are None when the file has none."""

    users: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    weights: list[float] | None = None
    kinds: list[str] | None = None
    timestamps: list[float] | None = None

    def __len__(self) -> int:
        return len(self.users)


def file_format(path: Path, forced: str | None = None) -> str:
    """``csv``, ``tsv``, ``jsonl`` or ``jsonld``, from ``forced`` or the file's suffix."""
    if forced:
        return forced
    suffix = path.suffix.lower()
    found = INTERACTION_FORMATS.get(suffix) or ITEM_FORMATS.get(suffix)
    if found is None:
        raise InvalidInputError(
            f"{path}: cannot tell the format from the suffix {suffix!r}; use .csv, .tsv, "
            ".jsonl (interactions) or .jsonld (items), or pass --format"
        )
    return found


def _ident(value, name: str, where: str) -> str:
    if isinstance(value, (int,)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"{where}: {name} must be a non-empty string, got {value!r}")
    return value


class _Columns:
    """Which source field is which interaction column (found once, from the header or first object)."""

    def __init__(self, names, path: Path):
        lowered = {str(n).strip().lower(): n for n in names}
        self.fields = {}
        for column, aliases in _ALIASES.items():
            found = next((lowered[a] for a in aliases if a in lowered), None)
            if found is not None:
                self.fields[column] = found
        missing = [c for c in ("user", "item") if c not in self.fields]
        if missing:
            raise InvalidInputError(
                f"{path}: no {' or '.join(missing)} column; the header has "
                f"{', '.join(map(str, names)) or 'nothing'} (need user and item)"
            )

    def new_chunk(self) -> InteractionChunk:
        return InteractionChunk(
            weights=[] if "weight" in self.fields else None,
            kinds=[] if "kind" in self.fields else None,
            timestamps=[] if "timestamp" in self.fields else None,
        )

    def add(self, chunk: InteractionChunk, row, where: str) -> None:
        get = row.get
        chunk.users.append(_ident(get(self.fields["user"]), "user", where))
        chunk.items.append(_ident(get(self.fields["item"]), "item", where))
        if chunk.weights is not None:
            chunk.weights.append(finite_number(get(self.fields["weight"]), f"{where}: weight"))
        if chunk.kinds is not None:
            chunk.kinds.append(_ident(get(self.fields["kind"]), "kind", where))
        if chunk.timestamps is not None:
            chunk.timestamps.append(parse_timestamp(get(self.fields["timestamp"]), where))


def read_interactions(
    path, *, fmt: str | None = None, chunk_size: int = 100_000, progress=None
) -> Iterator[InteractionChunk]:
    """Interactions of a CSV / TSV / JSON Lines file, ``chunk_size`` rows at a time.

    ``progress`` (e.g. a tqdm bar) is advanced by the bytes read.
    """
    path = Path(path)
    fmt = file_format(path, fmt)
    if fmt not in ("csv", "tsv", "jsonl"):
        raise InvalidInputError(f"{path}: {fmt} files hold items, not interactions")
    with open(path, "rb") as raw:
        text = io.TextIOWrapper(_Counting(raw, progress), encoding="utf-8", newline="")
        try:
            if fmt == "jsonl":
                yield from _jsonl_rows(text, path, chunk_size)
            else:
                yield from _csv_rows(text, path, chunk_size, "\t" if fmt == "tsv" else ",")
        except UnicodeDecodeError as exc:
            raise InvalidInputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start} of a block)") from None


def _csv_rows(text, path: Path, chunk_size: int, delimiter: str) -> Iterator[InteractionChunk]:
    reader = csv.reader(text, delimiter=delimiter, strict=True)
    try:
        fieldnames = next(reader, None) or []
    except csv.Error as exc:
        raise InvalidInputError(f"{path}:1: malformed header ({exc})") from None
    columns = _Columns(fieldnames, path)
    # Column positions, the last of repeated names winning (as a dict of the row would).
    position = {name: i for i, name in enumerate(fieldnames)}
    wanted = {column: position[name] for column, name in columns.fields.items()}
    width = len(fieldnames)
    try:
        while True:
            # Rows are pulled and checked a chunk at a time: the per-row work is
            # the csv module's and a few C-level passes over each column, which
            # is what lets a 25M-row file import in minutes rather than an hour.
            rows, lines = [], []
            add_row, add_line = rows.append, lines.append
            for row in itertools.islice(reader, chunk_size):
                if row:  # a blank line is no row (as csv.DictReader has it)
                    add_row(row)
                    add_line(reader.line_num)
            if not rows:
                return
            chunk = _fast_chunk(rows, width, wanted, columns)
            if chunk is None:  # something is wrong in this chunk: find it, row by row, with its line
                chunk = columns.new_chunk()
                for row, line in zip(rows, lines):
                    where = f"{path}:{line}"
                    if len(row) != width:
                        raise InvalidInputError(f"{where}: expected {width} fields like the header")
                    columns.add(chunk, dict(zip(fieldnames, row)), where)
            yield chunk
    except csv.Error as exc:
        raise InvalidInputError(f"{path}:{reader.line_num}: malformed CSV ({exc})") from None


def _fast_chunk(rows: list, width: int, wanted: dict, columns: _Columns) -> InteractionChunk | None:
    """The chunk of ``rows`` when every row is well-formed; None if any is not (the caller then
    checks row by row, for the error with its line)."""
    if any(len(row) != width for row in rows):
        return None
    fields = list(zip(*rows))
    chunk = InteractionChunk(users=list(fields[wanted["user"]]), items=list(fields[wanted["item"]]))
    if not (all(chunk.users) and all(chunk.items)):  # empty ids
        return None
    try:
        if "weight" in wanted:
            chunk.weights = list(map(float, fields[wanted["weight"]]))
            if not all(map(math.isfinite, chunk.weights)):
                return None
        if "kind" in wanted:
            chunk.kinds = list(fields[wanted["kind"]])
            if not all(chunk.kinds):
                return None
        if "timestamp" in wanted:  # seconds since the epoch; ISO dates take the row-by-row path
            chunk.timestamps = list(map(float, fields[wanted["timestamp"]]))
            if not all(map(math.isfinite, chunk.timestamps)):
                return None
    except ValueError:
        return None
    return chunk


def _jsonl_rows(text, path: Path, chunk_size: int) -> Iterator[InteractionChunk]:
    columns = None
    chunk = None
    for number, line in enumerate(text, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise InvalidInputError(f"{where}: not JSON ({exc})") from None
        if not isinstance(row, dict):
            raise InvalidInputError(f"{where}: each line must be a JSON object, got {type(row).__name__}")
        if columns is None:
            columns = _Columns(list(row), path)
            chunk = columns.new_chunk()
        missing = [name for name in columns.fields.values() if name not in row]
        if missing:
            raise InvalidInputError(f"{where}: missing {', '.join(map(repr, missing))} (the first line had them)")
        columns.add(chunk, row, where)
        if len(chunk) >= chunk_size:
            yield chunk
            chunk = columns.new_chunk()
    if chunk is not None and len(chunk):
        yield chunk


class _Counting(io.RawIOBase):
    """A binary reader that reports the bytes it hands out to a progress bar."""

    def __init__(self, raw, progress):
        self._raw, self._progress = raw, progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._raw.readinto(buffer)
        if self._progress is not None and n:
            self._progress.update(n)
        return n


def read_json(path):
    """The parsed JSON of a file (a JSON-LD document), with errors that name the file and the place."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except ValueError as exc:
        raise InvalidInputError(f"{path}: not JSON ({exc})") from None
