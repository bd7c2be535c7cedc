"""The vendored Xero Accounting OpenAPI spec (v16.1.0), loaded once per process.

``load_spec()`` parses ``specs/xero_accounting.yaml`` (about 0.4 s with
libyaml), corrects the 23 boolean properties whose ``default`` (and
``example``) is the *string* ``"false"`` -- with those strings left in,
openapi-spec-validator reports 23 errors and openapi-core's
``OpenAPI.from_dict`` refuses the document -- and marks the ``x-is-msdate``
and ``x-is-msdate-time`` string properties with a format this module checks
(Xero accepts ``YYYY-MM-DD``, ``YYYY-MM-DDThh:mm:ss`` and ``/Date(ms+zzzz)/``).

``validate_body()`` checks a decoded request body against a component schema
with openapi-schema-validator's ``OAS30Validator``, the schema validator
openapi-core itself uses. Two deliberate differences from openapi-core's
request validation, both to behave like the real API with the official SDK:

* read-only properties are *tolerated* (still type-checked): xero-python sends
  ``HasAttachments``, ``HasErrors``, ``HasValidationErrors`` on every write,
  and openapi-core's write-mode validator would reject them all;
* explicit ``null`` object members are treated as absent (the spec marks
  nothing ``nullable``, but Xero's JSON reader ignores nulls).

Anything else that breaks the schema -- wrong types, values outside an enum,
a malformed UUID, a malformed date, strings that are too long -- is reported.
"""

from __future__ import annotations

import copy
import functools
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

__all__ = [
    "SPEC_PATH",
    "FieldInfo",
    "LoadedSpec",
    "SpecProblem",
    "field_info",
    "fix_boolean_defaults",
    "load_spec",
    "parse_xero_datetime",
    "strip_nulls",
    "validate_body",
]

SPEC_PATH = Path(__file__).resolve().parent / "specs" / "xero_accounting.yaml"
_SPEC_URI = "urn:hourbridge:xero-accounting-16.1.0"

_LONG_ENUM = 12  # longer enums (currency codes, tax types) are not listed in messages
XERO_DATE_FORMAT = "xero-date"
XERO_DATETIME_FORMAT = "xero-datetime"

_MS_DATE_RE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?)?"
    r"(Z|[+-]\d{2}:\d{2})?$"
)


@dataclass(frozen=True)
class SpecProblem:
    """One schema violation: where (``Invoices[0].Contact.ContactID``) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '<body>'}: {self.message}"


@dataclass(frozen=True)
class LoadedSpec:
    document: dict[str, Any]
    fixed_defaults: tuple[str, ...]  # JSON pointers of the corrected boolean properties
    load_seconds: float  # wall time of the one load (parse + fixes)


@dataclass(frozen=True)
class FieldInfo:
    """What the spec says about a (possibly dotted) property of a schema."""

    names: tuple[str, ...]  # canonical spelling of each segment, e.g. ("Contact", "ContactID")
    kind: str  # "string" | "guid" | "date" | "number" | "integer" | "boolean" | "object" | "array"


def parse_xero_datetime(value: str) -> datetime | None:
    """Parse the date forms Xero accepts; None if ``value`` is not one of them.

    ``/Date(1414800000000+0000)/`` (epoch ms, optional offset), ``2026-10-31``
    and ``2026-10-31T09:30:00`` (optionally with fractions, ``Z`` or an
    offset). Naive values are taken as UTC. The result is always aware.
    """
    ms = _MS_DATE_RE.match(value)
    if ms:
        offset = ms.group(2)
        tz: timezone = UTC
        if offset:
            sign = -1 if offset[0] == "-" else 1
            tz = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])))
        try:
            return datetime.fromtimestamp(int(ms.group(1)) / 1000, tz=tz)
        except (OverflowError, OSError, ValueError):
            return None
    iso = _ISO_RE.match(value)
    if not iso:
        return None
    year, month, day, hour, minute, second, fraction, zone = iso.groups()
    try:
        parsed = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0").ljust(6, "0")[:6]),
            tzinfo=UTC,
        )
    except ValueError:
        return None
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
        parsed = parsed.replace(tzinfo=tz)
    return parsed


def _is_xero_date(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    return parse_xero_datetime(instance) is not None


def _walk(node: Any, pointer: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield pointer, node
        for key, value in node.items():
            escaped = str(key).replace("~", "~0").replace("/", "~1")
            yield from _walk(value, f"{pointer}/{escaped}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{pointer}/{index}")


def fix_boolean_defaults(document: dict[str, Any]) -> list[str]:
    """Turn ``default: "false"``/``"true"`` on boolean schemas into real booleans.

    Mutates ``document``; returns the JSON pointers it corrected. The same
    string-typed ``example`` next to such a default is corrected too.
    """
    fixed: list[str] = []
    for pointer, node in _walk(document, ""):
        if node.get("type") != "boolean":
            continue
        default = node.get("default")
        if isinstance(default, str) and default.lower() in ("true", "false"):
            node["default"] = default.lower() == "true"
            fixed.append(pointer)
            example = node.get("example")
            if isinstance(example, str) and example.lower() in ("true", "false"):
                node["example"] = example.lower() == "true"
    return fixed


def _mark_date_formats(document: dict[str, Any]) -> None:
    for _pointer, node in _walk(document, ""):
        if node.get("type") == "string" and "format" not in node:
            if node.get("x-is-msdate"):
                node["format"] = XERO_DATE_FORMAT
            elif node.get("x-is-msdate-time"):
                node["format"] = XERO_DATETIME_FORMAT


@functools.cache
def load_spec() -> LoadedSpec:
    """Parse and fix the vendored spec. Cached: runs once per process."""
    started = time.perf_counter()
    with SPEC_PATH.open("rb") as fh:
        if hasattr(yaml, "CSafeLoader"):  # libyaml: about 4x faster on this 0.9 MB file
            document = yaml.load(fh, Loader=yaml.CSafeLoader)
        else:  # pragma: no cover - PyYAML built without libyaml
            document = yaml.safe_load(fh)
    if not isinstance(document, dict) or "components" not in document:
        raise ValueError(f"{SPEC_PATH} is not an OpenAPI document")
    fixed = fix_boolean_defaults(document)
    _mark_date_formats(document)
    return LoadedSpec(
        document=document,
        fixed_defaults=tuple(fixed),
        load_seconds=time.perf_counter() - started,
    )


@functools.cache
def _format_checker() -> Any:
    checker = copy.copy(oas30_format_checker)
    checker.checkers = dict(oas30_format_checker.checkers)
    checker.checks(XERO_DATE_FORMAT)(_is_xero_date)
    checker.checks(XERO_DATETIME_FORMAT)(_is_xero_date)
    return checker


@functools.cache
def _validator(schema_name: str) -> Any:
    document = load_spec().document
    if schema_name not in document["components"]["schemas"]:
        raise KeyError(f"no schema {schema_name!r} in the Xero spec")
    resource = Resource.from_contents(document, default_specification=DRAFT4)
    registry: Registry[Any] = Registry().with_resource(_SPEC_URI, resource)
    return OAS30Validator(
        {"$ref": f"{_SPEC_URI}#/components/schemas/{schema_name}"},
        registry=registry,
        format_checker=_format_checker(),
    )


def strip_nulls(value: Any) -> Any:
    """A copy of ``value`` without object members whose value is ``null``."""
    if isinstance(value, dict):
        return {k: strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_nulls(v) for v in value]
    return value


def _render_path(path: Sequence[object]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _leaf_errors(error: Any) -> Iterator[Any]:
    context = list(getattr(error, "context", None) or [])
    if not context:
        yield error
        return
    for sub in context:
        yield from _leaf_errors(sub)


def validate_body(schema_name: str, body: Any) -> list[SpecProblem]:
    """Problems of ``body`` against ``#/components/schemas/<schema_name>``.

    ``body`` must be decoded with plain floats (``json.loads`` defaults): the
    OpenAPI ``double`` format check does not accept ``Decimal``. Null members
    are dropped first; read-only members are allowed. Empty list = valid.
    """
    validator = _validator(schema_name)
    problems: list[SpecProblem] = []
    seen: set[tuple[str, str]] = set()
    for error in validator.iter_errors(strip_nulls(body)):
        for leaf in _leaf_errors(error):
            path = _render_path(list(leaf.absolute_path))
            message = str(leaf.message)
            if leaf.validator == "format" and leaf.validator_value in (
                XERO_DATE_FORMAT,
                XERO_DATETIME_FORMAT,
            ):
                message = f"{leaf.instance!r} is not a valid date (use YYYY-MM-DD)"
            elif leaf.validator == "enum" and len(leaf.validator_value) > _LONG_ENUM:
                message = f"{leaf.instance!r} is not one of the {len(leaf.validator_value)} values"
            if (path, message) not in seen:
                seen.add((path, message))
                problems.append(SpecProblem(path=path, message=message))
    problems.sort(key=lambda p: p.path)
    return problems


def _resolve(node: Mapping[str, Any]) -> Mapping[str, Any]:
    document = load_spec().document
    for _ in range(16):
        ref = node.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return node
        target: Any = document
        for part in ref[2:].split("/"):
            target = target[part]
        node = target
    return node


def field_info(schema_name: str, dotted: Sequence[str]) -> FieldInfo | None:
    """Look up a property path (case-insensitively, like Xero's ``where``).

    ``field_info("Invoice", ["contact", "contactid"])`` gives
    ``FieldInfo(("Contact", "ContactID"), "guid")``. None if the spec has no
    such property.
    """
    document = load_spec().document
    node: Mapping[str, Any] = document["components"]["schemas"][schema_name]
    names: list[str] = []
    kind = "object"
    for segment in dotted:
        node = _resolve(node)
        properties = node.get("properties") or {}
        match = next((k for k in properties if k.lower() == segment.lower()), None)
        if match is None:
            return None
        names.append(match)
        node = _resolve(properties[match])
        kind = _kind_of(node)
    return FieldInfo(names=tuple(names), kind=kind)


def _kind_of(node: Mapping[str, Any]) -> str:
    node_type = node.get("type")
    if node_type == "string":
        fmt = node.get("format")
        if fmt == "uuid":
            return "guid"
        if fmt in (XERO_DATE_FORMAT, XERO_DATETIME_FORMAT, "date", "date-time"):
            return "date"
        return "string"
    if node_type in ("number", "integer", "boolean", "array"):
        return str(node_type)
    return "object"
