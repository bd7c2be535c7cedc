"""Mapping documents: ``MappingRules`` written as YAML or CSV, read back with line-numbered
errors, and the difference between two versions.

Everything here is generic over the fields of ``MappingRules``: a field added to the rules
(or to a rule) appears in the YAML, as a CSV column and in the diff without any change here.
How each top-level field is laid out in CSV follows from its type:

- ``dict[str, Rule]`` (clients, tasks, ...): one row per key, one column per rule field;
- ``Rule | None`` (default_task, ...): one row, empty key;
- ``list[Rule]``: one row per item, key = its position (1, 2, ...);
- ``dict[str, scalar]``: one row per key, in the ``value`` column;
- anything else: one row, empty key, in the ``value`` column.

A rule field that is not a scalar (a list, a nested model) goes in its cell as compact JSON.
"""

from __future__ import annotations

import csv
import io
import json
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Any, Literal, TypeVar, Union, get_args, get_origin
from uuid import UUID

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from mapping.rules import MappingRules

M = TypeVar("M", bound=BaseModel)
Format = Literal["yaml", "csv"]
FORMATS: tuple[Format, ...] = ("yaml", "csv")
SectionKind = Literal["keyed_models", "model", "model_list", "keyed_values", "value"]
FIXED_COLUMNS = ("section", "key", "value")
_SCALARS = (str, int, float, bool, Decimal, UUID, date, datetime, time)


class DocumentError(ValueError):
    """A mapping document that can't be read or doesn't validate: file, line and field."""

    def __init__(self, where: str, line: int | None, field: str | None, message: str) -> None:
        self.where, self.line, self.field, self.message = where, line, field, message
        parts = [where]
        if line is not None:
            parts.append(f"line {line}")
        if field:
            parts.append(field)
        super().__init__(": ".join([*parts, message]))


# -- the shape of MappingRules ------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    name: str
    kind: SectionKind
    model: type[BaseModel] | None  # the rule model of the section's rows, if any
    value_type: Any = None  # the type of the `value` cell, for value sections

    @property
    def keyed(self) -> bool:
        return self.kind in ("keyed_models", "keyed_values")


def _strip_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def is_scalar(annotation: Any) -> bool:
    """Whether a field's values are written as plain text (else as compact JSON)."""
    bare = _strip_optional(annotation)
    if get_origin(bare) is Literal:
        return True
    return isinstance(bare, type) and (issubclass(bare, _SCALARS) or issubclass(bare, Enum))


def fields_of(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """A model's fields by the name documents use: the field's alias if it has one (a rule
    field ``valid_from`` written ``from``, say), else its name."""
    return {info.alias or name: info for name, info in model.model_fields.items()}


def sections(model: type[BaseModel] = MappingRules) -> list[Section]:
    """Each top-level field of the rules, with how it is laid out in CSV."""
    found: list[Section] = []
    for name, info in fields_of(model).items():
        ann = _strip_optional(info.annotation)
        origin, args = get_origin(ann), get_args(ann)
        if origin is dict and len(args) == 2 and _is_model(_strip_optional(args[1])):
            found.append(Section(name, "keyed_models", _strip_optional(args[1])))
        elif _is_model(ann):
            found.append(Section(name, "model", ann))
        elif origin is list and args and _is_model(_strip_optional(args[0])):
            found.append(Section(name, "model_list", _strip_optional(args[0])))
        elif origin is dict and len(args) == 2:
            found.append(Section(name, "keyed_values", None, args[1]))
        else:
            found.append(Section(name, "value", None, ann))
    return found


def csv_columns(model: type[BaseModel] = MappingRules) -> list[str]:
    """section, key, value, then every rule field once, in the order the rules define them."""
    columns = list(FIXED_COLUMNS)
    for section in sections(model):
        for name in fields_of(section.model) if section.model else ():
            if name not in columns:
                columns.append(name)
    return columns


def dump(rules: BaseModel) -> dict[str, Any]:
    """The rules as plain JSON-able data, defaults left out (so it reads back equal)."""
    return rules.model_dump(mode="json", exclude_defaults=True, by_alias=True)


# -- YAML -----------------------------------------------------------------------------------


def to_yaml(rules: BaseModel, header: str = "") -> str:
    data = dump(rules)
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100) if data else "{}\n"
    comments = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comments + body


def from_yaml(text: str, where: str) -> MappingRules:
    """Parse and validate a YAML mapping document. Raises DocumentError naming the line."""
    return read_yaml(text, where, MappingRules)


def read_yaml(text: str, where: str, model: type[M]) -> M:
    """``from_yaml`` for any rules model."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _no_duplicate_keys(node, where)
        data = loader.construct_document(node) if node is not None else {}
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise DocumentError(where, line, None, exc.problem or "invalid YAML") from None
    except yaml.YAMLError as exc:
        raise DocumentError(where, None, None, f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        line = node.start_mark.line + 1 if node is not None else 1
        raise DocumentError(where, line, None, "the document must be a mapping of sections")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        line = _yaml_line(node, loc) if node is not None else 1
        raise DocumentError(where, line, _path(loc), _message(first, exc.error_count())) from None


def _no_duplicate_keys(node: Node, where: str) -> None:
    """PyYAML keeps the last of two equal keys silently; in a mapping that hides a rule."""
    if isinstance(node, MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            if isinstance(key, ScalarNode):
                line = key.start_mark.line + 1
                if key.value in seen:
                    raise DocumentError(
                        where, line, key.value, f"duplicate key (first on line {seen[key.value]})"
                    )
                seen[key.value] = line
            _no_duplicate_keys(value, where)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            _no_duplicate_keys(item, where)


def _yaml_line(node: Node, loc: tuple[int | str, ...]) -> int:
    """The line of the deepest node the error's location reaches."""
    line = node.start_mark.line + 1
    current: Node = node
    for part in loc:
        if isinstance(current, MappingNode):
            match = next(
                (
                    (k, v)
                    for k, v in current.value
                    if isinstance(k, ScalarNode) and k.value == str(part)
                ),
                None,
            )
            if match is None:
                break
            line, current = match[0].start_mark.line + 1, match[1]
        elif isinstance(current, SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(current.value):
                break
            current = current.value[part]
            line = current.start_mark.line + 1
        else:
            break
    return line


def _path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(document)"


def _message(first: Mapping[str, Any], count: int) -> str:
    msg = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    return msg + (f" (and {count - 1} more)" if count > 1 else "")


# -- CSV ------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _rows(rules: BaseModel) -> Iterator[tuple[str, str, Any, Mapping[str, Any]]]:
    """(section, key, value, rule fields) for every row of the CSV."""
    data = dump(rules)
    for section in sections(type(rules)):
        if section.name not in data:
            continue
        content = data[section.name]
        if section.kind == "keyed_models":
            for key, rule in content.items():
                yield section.name, key, None, rule
        elif section.kind == "model":
            yield section.name, "", None, content
        elif section.kind == "model_list":
            for i, rule in enumerate(content, start=1):
                yield section.name, str(i), None, rule
        elif section.kind == "keyed_values":
            for key, value in content.items():
                yield section.name, key, value, {}
        else:
            yield section.name, "", content, {}


def to_csv(rules: BaseModel) -> str:
    columns = csv_columns(type(rules))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for section, key, value, fields in _rows(rules):
        cells = {"section": section, "key": key, "value": _cell(value)}
        cells.update({name: _cell(v) for name, v in fields.items()})
        writer.writerow([cells.get(c, "") for c in columns])
    return buffer.getvalue()


@dataclass
class _CsvReader:
    where: str
    model: type[BaseModel]
    data: dict[str, Any] = field(default_factory=dict)
    lines: dict[tuple[str, ...], int] = field(default_factory=dict)
    by_name: dict[str, Section] = field(init=False)

    def __post_init__(self) -> None:
        self.by_name = {s.name: s for s in sections(self.model)}

    def fail(self, line: int | None, column: str | None, message: str) -> DocumentError:
        return DocumentError(self.where, line, column, message)

    def parse(self, raw: str, line: int, column: str, annotation: Any) -> Any:
        if is_scalar(annotation):
            return raw
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise self.fail(line, column, f"expected compact JSON here: {exc.msg}") from None

    def row(self, line: int, cells: dict[str, str]) -> None:
        name = cells.pop("section").strip()
        key = cells.pop("key").strip()
        raw_value = cells.pop("value", "")
        section = self.by_name.get(name)
        if section is None:
            known = ", ".join(self.by_name)
            raise self.fail(line, "section", f"unknown section {name!r}; use one of: {known}")
        if section.keyed and not key:
            raise self.fail(line, "key", f"section {name} needs a key (the source id)")
        if section.kind in ("model", "value") and key:
            raise self.fail(line, "key", f"section {name} takes no key")
        fields: dict[str, Any] = {}
        own = fields_of(section.model) if section.model is not None else {}
        for column, raw in cells.items():
            if raw == "":
                continue
            if column not in own:
                raise self.fail(line, column, f"not a field of section {name}")
            annotation = own[column].annotation
            fields[column] = self.parse(raw, line, column, annotation)
        value: Any = None
        if section.model is None:
            if raw_value == "":
                raise self.fail(line, "value", f"section {name} needs a value")
            value = self.parse(raw_value, line, "value", section.value_type)
        elif raw_value != "":
            raise self.fail(line, "value", f"section {name} has no value column; use its fields")
        self.place(section, key, line, fields, value)

    def place(
        self, section: Section, key: str, line: int, fields: dict[str, Any], value: Any
    ) -> None:
        name = section.name
        if section.kind == "model_list":
            items = self.data.setdefault(name, [])
            self.lines[(name, str(len(items)))] = line
            items.append(fields)
            return
        slot = (name, key) if section.keyed else (name,)
        if slot in self.lines:
            what = f"{name} {key}" if key else name
            raise self.fail(line, "key", f"{what} given twice (first on line {self.lines[slot]})")
        self.lines[slot] = line
        content = fields if section.model is not None else value
        if section.keyed:
            self.data.setdefault(name, {})[key] = content
        else:
            self.data[name] = content

    def line_of(self, loc: tuple[int | str, ...], default: int) -> int:
        for n in (2, 1):
            if len(loc) >= n:
                found = self.lines.get(tuple(str(p) for p in loc[:n]))
                if found is not None:
                    return found
        return default


def from_csv(text: str, where: str) -> MappingRules:
    """Parse and validate a CSV mapping document. Raises DocumentError naming line and column."""
    return read_csv(text, where, MappingRules)


def read_csv(text: str, where: str, model: type[M]) -> M:
    """``from_csv`` for any rules model."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    state = _CsvReader(where, model)
    try:
        header = [h.strip() for h in next(reader, [])]
        if not header:
            raise state.fail(1, None, "empty file: expected a header row (section,key,...)")
        known = csv_columns(model)
        for column in header:
            if column not in known:
                raise state.fail(reader.line_num, column, "unknown column")
        for required in ("section", "key"):
            if required not in header:
                raise state.fail(reader.line_num, required, "missing column")
        if len(set(header)) != len(header):
            raise state.fail(reader.line_num, None, "a column is named twice")
        header_line = reader.line_num
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise state.fail(
                    reader.line_num, None, f"expected {len(header)} cells, got {len(row)}"
                )
            state.row(reader.line_num, dict(zip(header, row, strict=True)))
    except csv.Error as exc:
        raise state.fail(reader.line_num, None, f"unreadable CSV: {exc}") from None
    try:
        return model.model_validate(state.data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        line = state.line_of(loc, header_line)
        column = str(loc[2]) if len(loc) > 2 else _path(loc)
        raise state.fail(line, column, _message(first, exc.error_count())) from None


# -- both -----------------------------------------------------------------------------------


def render(rules: MappingRules, fmt: Format, header: str = "") -> str:
    return to_yaml(rules, header) if fmt == "yaml" else to_csv(rules)


def parse(text: str, fmt: Format, where: str) -> MappingRules:
    return from_yaml(text, where) if fmt == "yaml" else from_csv(text, where)


def format_of(filename: str, given: str | None) -> Format:
    """The format named by ``given``, else by the file's extension."""
    if given is not None:
        if given not in FORMATS:
            raise ValueError(f"--format: expected yaml or csv, got {given!r}")
        return "yaml" if given == "yaml" else "csv"
    lower = filename.lower()
    if lower.endswith((".yaml", ".yml")):
        return "yaml"
    if lower.endswith(".csv"):
        return "csv"
    raise ValueError(f"{filename}: cannot tell the format from its name; give --format yaml|csv")


# -- diff -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MappingDiff:
    """Keys added, changed and removed between two versions, as "section key" (or "section")."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed)

    def summary(self, limit: int = 8) -> str:
        def part(label: str, items: tuple[str, ...]) -> str:
            shown = ", ".join(items[:limit]) + (
                f", … {len(items) - limit} more" if len(items) > limit else ""
            )
            return f"{label} {len(items)}" + (f" ({shown})" if items else "")

        return "; ".join(
            [
                part("added", self.added),
                part("changed", self.changed),
                part("removed", self.removed),
            ]
        )


def diff(old: BaseModel | None, new: BaseModel) -> MappingDiff:
    before = dump(old) if old is not None else {}
    after = dump(new)
    added: list[str] = []
    changed: list[str] = []
    removed: list[str] = []
    for section in sections(type(new)):
        a, b = before.get(section.name), after.get(section.name)
        if section.keyed:
            a_map, b_map = a or {}, b or {}
            for key in sorted(set(a_map) | set(b_map)):
                label = f"{section.name} {key}"
                if key not in a_map:
                    added.append(label)
                elif key not in b_map:
                    removed.append(label)
                elif a_map[key] != b_map[key]:
                    changed.append(label)
        elif a is None and b is not None:
            added.append(section.name)
        elif a is not None and b is None:
            removed.append(section.name)
        elif a != b:
            changed.append(section.name)
    return MappingDiff(tuple(added), tuple(changed), tuple(removed))
