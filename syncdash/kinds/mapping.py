"""Turn source records into typed target rows, fast.

A 1M-row load spends most of its Python time here, so the fast path is one generated function per
source (no per-field loop, no per-row dispatch). When it raises for a record, the slow path
re-maps that record field by field to say exactly which column failed and why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

import xxhash

from syncdash.common.convert import converter_for
from syncdash.config.models import FieldSpec

_xxh = xxhash.xxh3_64_intdigest


class _Missing(Exception):
    """Raised inside the fast mapper when a required value is empty; the slow path explains."""


def _raise_missing() -> Any:
    raise _Missing


def _memoize(conv: Callable[[str], Any], limit: int = 65536) -> Callable[[str], Any]:
    """Dates, booleans and formatted datetimes repeat a lot in real files; strptime costs ~5 us a call."""
    cache: dict[str, Any] = {}

    def memo(v: str) -> Any:
        r = cache.get(v)
        if r is None:
            r = conv(v)
            if len(cache) >= limit:
                cache.clear()
            cache[v] = r
        return r
    return memo


# An already-canonical "YYYY-MM-DDTHH:MM:SS" is stored as is once fromisoformat accepts it (~0.7 us instead
# of ~3 us for parse + isoformat); anything else goes through the full converter.
# [7::3] picks positions 7, 10, 13, 16: "-T::" rules out week dates (2024-W01-1T...) and UTC offsets.
_CANONICAL_DT = '({v} if len({v}) == 19 and {v}[7::3] == "-T::" and _fi({v}) else {c}({v}))'


@dataclass
class FieldProblem:
    column: str  # target column
    source: str  # source column or path, as the user wrote it
    value: Any
    reason: str
    error_type: str = "validation"


Getter = Callable[[Any], Any]


@dataclass
class Mapper:
    """Maps one record to (values..., hash). Values follow `columns`; the last item is the hash."""

    columns: list[str]
    key_index: list[int]
    fast: Callable[[Any], tuple[Any, ...]]
    getters: list[Getter]
    specs: list[FieldSpec]
    source_names: list[str]

    # (key..., hash) of a record without typing the other fields: enough to tell an unchanged row
    key_hash: Callable[[Any], tuple[Any, ...]] | None = None
    # the hash of the raw values, as fast() computes it (explain() must give the same)
    raw_hash: Callable[[Sequence[Any]], int] | None = None

    def __post_init__(self) -> None:
        # scalar keys for one-column keys, tuples otherwise: the engine-wide key representation
        self.key_of: Callable[[Sequence[Any]], Any] = itemgetter(*self.key_index)

    def explain(self, record: Any) -> tuple[tuple[Any, ...] | None, list[FieldProblem]]:
        """Slow path: map field by field, collecting every problem instead of stopping at the first."""
        out: list[Any] = []
        problems: list[FieldProblem] = []
        raws: list[Any] = []
        keys = {self.columns[i] for i in self.key_index}
        for col, get, spec, sname in zip(self.columns, self.getters, self.specs, self.source_names,
                                         strict=True):
            try:
                raw = get(record)
            except (IndexError, KeyError, TypeError):
                raw = None
            raws.append(raw)
            if raw is None or raw == "":
                if spec.required or (col in keys and spec.default is None):
                    why = "required value is missing" if spec.required else "primary key value is missing"
                    problems.append(FieldProblem(col, sname, raw, why, "missing"))
                    out.append(None)
                else:
                    out.append(None if spec.default is None else converter_for(spec.type, spec.format)(spec.default))
                continue
            try:
                out.append(converter_for(spec.type, spec.format)(raw))
            except ValueError as e:
                problems.append(FieldProblem(col, sname, raw, str(e), "type"))
                out.append(None)
        if problems:
            return None, problems
        return (*out, (self.raw_hash or self.hash_of)(raws)), []

    def try_key(self, record: Any) -> Any:
        """The primary key of a record that failed elsewhere, when its key fields themselves are fine."""
        key: list[Any] = []
        for i in self.key_index:
            spec = self.specs[i]
            try:
                raw = self.getters[i](record)
            except (IndexError, KeyError, TypeError):
                return None
            if raw is None or raw == "":
                if spec.default is None:
                    return None
                raw = spec.default
            try:
                key.append(converter_for(spec.type, spec.format)(raw))
            except ValueError:
                return None
        return key[0] if len(key) == 1 else tuple(key)

    @staticmethod
    def repr_hash(raws: Sequence[Any]) -> int:
        """JSON records: repr of the raw values (C-level, ~5x cheaper than joining them one by one)."""
        return _xxh(repr(tuple(raws)).encode("utf-8", "surrogatepass")) >> 1

    @staticmethod
    def hash_of(raws: Sequence[Any]) -> int:
        return _xxh("\x1f".join("" if r is None else r if isinstance(r, str) else repr(r)
                                for r in raws).encode()) >> 1


def path_getter(path: str) -> Getter:
    """A getter for a dotted path ("profile.name", "tags.0"): names index dicts, digits index lists;
    None when any step is absent (the mapper decides whether that is an error)."""
    steps: list[str | int] = [int(s) if s.isdigit() else s for s in path.split(".")]

    def get(r: Any) -> Any:
        cur = r
        for s in steps:
            if type(s) is int:
                if not isinstance(cur, list) or len(cur) <= s:
                    return None
            elif not isinstance(cur, dict):
                return None
            try:
                cur = cur[s]
            except (KeyError, IndexError, TypeError):
                return None
        return cur
    return get


def _dig_lines(v: str, path: str) -> list[str]:
    """Inline code walking a dotted path exactly as path_getter does (the slow path uses that one)."""
    out = []
    src = "r"
    for step in path.split("."):
        if step.isdigit():
            k = int(step)
            out.append(f"    {v} = {src}[{k}] if type({src}) is list and len({src}) > {k} else None")
        else:
            out.append(f"    {v} = {src}.get({step!r}) if type({src}) is dict else None")
        src = v
    return out


# JSON values usually already have the column's type: skip the converter call for them
_JSON_FAST = {"int": "({v} if type({v}) is int else {c}({v}))", "float": "({v} if type({v}) is float else {c}({v}))",
              "str": "({v} if type({v}) is str else {c}({v}))", "bool": "(int({v}) if type({v}) is bool else {c}({v}))",
              "datetime": '({v}[:19] + "+00:00" if type({v}) is str and len({v}) == 20 and {v}[19] == "Z" '
                          'and {v}[7:17:3] == "-T::" and _fi({v}[:19]) else {c}({v}))'}


def build_mapper(fields: Mapping[str, FieldSpec], primary_key: list[str],
                 positions: dict[str, int] | None = None,
                 getters: dict[str, Getter] | None = None,
                 source_names: dict[str, str] | None = None,
                 paths: dict[str, str] | None = None) -> Mapper:
    """positions: column -> index for list records (CSV); paths: column -> dotted path into dict records
    (JSON), walked by inline code; getters: column -> callable for anything else.

    With positions every raw value is a str, so the hash is taken over the raw strings (cheapest);
    the slow path's hash_of gives the identical value for str inputs.
    """
    columns = list(fields)
    specs = [fields[c] for c in columns]
    names = [str((source_names or {}).get(c, c)) for c in columns]
    ns: dict[str, Any] = {"_xxh": _xxh, "_J": "\x1f".join, "_req": _raise_missing, "_fi": datetime.fromisoformat}
    lines: list[str] = []
    exprs: list[str] = []
    raw_names: list[str] = []
    get_list: list[Getter] = []
    for i, (col, spec) in enumerate(zip(columns, specs, strict=True)):
        v = f"v{i}"
        if positions is not None:
            idx = positions[col]
            lines.append(f"    {v} = r[{idx}]")
            get_list.append(itemgetter(idx))
        elif paths is not None:
            lines.extend(_dig_lines(v, paths[col]))
            get_list.append(path_getter(paths[col]))
        else:
            assert getters is not None
            ns[f"g{i}"] = getters[col]
            lines.append(f"    {v} = g{i}(r)")
            get_list.append(getters[col])
        raw_names.append(v)
        default = None if spec.default is None else converter_for(spec.type, spec.format)(spec.default)
        ns[f"d{i}"] = default
        if spec.type == "int" and positions is not None:
            conv = "int"
        elif spec.type == "float" and positions is not None:
            conv = "float"
        elif spec.type == "str" and positions is not None:
            conv = ""
        elif spec.type in ("date", "bool") or (spec.type == "datetime" and spec.format):
            ns[f"c{i}"] = converter_for(spec.type, spec.format)
            if positions is not None:
                ns[f"c{i}"] = _memoize(ns[f"c{i}"])
            conv = f"c{i}"
        else:
            ns[f"c{i}"] = converter_for(spec.type, spec.format)
            conv = f"c{i}"
        # an empty key with no default is an item error: NULL in an INTEGER key column would get a fresh rowid
        # on every run, and NULL in any other key column never matches on the next run either
        empty = "_req()" if spec.required or (col in primary_key and default is None) else f"d{i}"
        if positions is not None and spec.type == "datetime" and not spec.format:
            exprs.append(f"({_CANONICAL_DT.format(v=v, c=conv)} if {v} else {empty})")
        elif positions is not None:
            exprs.append(f"({conv}({v}) if {v} else {empty})" if conv else f"({v} or {empty})")
        elif paths is not None and spec.type in _JSON_FAST and not spec.format:
            fast_conv = _JSON_FAST[spec.type].format(v=v, c=conv)
            exprs.append(f"({fast_conv} if {v} is not None and {v} != '' else {empty})")
        else:
            exprs.append(f"({conv}({v}) if {v} is not None and {v} != '' else {empty})")
    raw_hash: Callable[[Sequence[Any]], int] = Mapper.hash_of
    if positions is not None:
        hash_expr = f"_xxh(_J(({', '.join(raw_names)},)).encode()) >> 1"
    elif paths is not None:
        hash_expr = f"_xxh(repr(({', '.join(raw_names)},)).encode('utf-8', 'surrogatepass')) >> 1"
        raw_hash = Mapper.repr_hash
    else:
        ns["_hash_of"] = Mapper.hash_of
        hash_expr = f"_hash_of(({', '.join(raw_names)},))"
    body = "\n".join(lines)
    # kh: the key typed exactly as fast() types it, and the same hash, flat as (key..., hash)
    key_exprs = [exprs[columns.index(k)] for k in primary_key]
    src = (f"def fast(r):\n{body}\n    return ({', '.join(exprs)}, {hash_expr})\n"
           f"def kh(r):\n{body}\n    return ({', '.join(key_exprs)}, {hash_expr})\n")
    exec(compile(src, "<syncdash-mapper>", "exec"), ns)
    return Mapper(columns=columns, key_index=[columns.index(k) for k in primary_key], fast=ns["fast"],
                  getters=get_list, specs=specs, source_names=names, key_hash=ns["kh"], raw_hash=raw_hash)
