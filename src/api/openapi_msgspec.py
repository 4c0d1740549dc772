"""Schemas of msgspec types as msgspec itself states them, for the OpenAPI document.

Litestar writes its own schema of a Struct and loses some of what msgspec enforces: patterns
on list items, bounds under ``Optional`` (``ge=0`` read as "no bound", ``gt``/``lt`` dropped),
bounds of a list body. The request schemas were then looser than the server, and clients and
fuzzers sent requests the decoder refused. ``MsgspecSchemas`` hands the types it covers to
``msgspec.json.schema_components`` instead, so the document says what the decoder checks: the
request bodies (Structs that refuse unknown fields) and every annotation carrying a
``msgspec.Meta``. The types they name (nested Structs, enums) are still registered through
Litestar, so each keeps one component under Litestar's name.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import TYPE_CHECKING, Any

import msgspec
import msgspec.inspect as mi
from litestar.openapi.spec import Discriminator, Reference, Schema
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType
from litestar.plugins import OpenAPISchemaPlugin
from litestar.typing import FieldDefinition

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator

# msgspec writes bytes as base64 text; the pattern lets clients (and fuzzers) know which strings decode.
BASE64 = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
# What msgspec decodes as a datetime (year 0 and hour 24 refused; the calendar is the format's).
RFC3339 = (
    r"^(?!0000)[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):?[0-5][0-9])?$"
)
_COMPONENT_TYPES = (mi.StructType, mi.DataclassType, mi.TypedDictType, mi.NamedTupleType)


def _keyword(field: dataclasses.Field[Any]) -> str:
    """The JSON Schema keyword a Schema field is written as (its alias, else camelCase)."""
    head, *rest = field.name.split("_")
    return str(field.metadata.get("alias") or head + "".join(part.title() for part in rest))


_FIELDS = {_keyword(field): field.name for field in dataclasses.fields(Schema)}  # keyword -> Schema field
_ONE_SCHEMA = frozenset({"items", "not", "if", "then", "else", "contains", "propertyNames", "contentSchema"})
_ONE_SCHEMA |= {"unevaluatedItems", "unevaluatedProperties"}
_SCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "dependentSchemas"})


class MsgspecSchemas(OpenAPISchemaPlugin):
    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        if field_definition.is_union:
            return False  # Litestar splits unions; each branch comes back here
        if any(isinstance(m, msgspec.Meta) for m in field_definition.metadata):
            return True
        return field_definition.is_subclass_of(msgspec.Struct) and bool(
            getattr(mi.type_info(field_definition.type_), "forbid_unknown_fields", False)
        )

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        raw = field_definition.raw if field_definition.metadata else field_definition.type_
        reachable: dict[Any, mi.Type] = {}
        root_info = mi.type_info(raw)
        _collect(root_info, reachable)
        kinds = list(reachable)
        top = raw if isinstance(root_info, _COMPONENT_TYPES) else None
        refs, components = msgspec.json.schema_components([raw, *kinds], ref_template="{name}")
        for ref, info in zip(refs, [root_info, *reachable.values()], strict=True):
            _state_datetimes(info, components.get(ref.get("$ref", ""), ref))
        names = {ref["$ref"]: kind for ref, kind in zip(refs[1:], kinds, strict=True)}

        def reference(name: str) -> Schema | Reference:
            return schema_creator.for_field_definition(FieldDefinition.from_annotation(names[name]))

        if top is None:  # an annotated list, number or string: inline
            inline = _to_schema(refs[0], reference)
            return inline if isinstance(inline, Schema) else Schema(all_of=[inline])
        # A Struct is a component: registered first (so it may name itself), then filled from msgspec's.
        schema = schema_creator.schema_registry.get_schema_for_field_definition(field_definition)
        stated = _to_schema(components[refs[0]["$ref"]], reference)
        for field in dataclasses.fields(Schema):
            if (value := getattr(stated, field.name)) is not None:
                setattr(schema, field.name, value)
        return schema


def _state_datetimes(info: mi.Type, schema: dict[str, Any]) -> None:
    """msgspec writes a datetime as a bare ``string``; its fields get the format and the pattern
    of what the decoder takes (RFC 3339, ``T``/``t``/space, optional fraction and offset), so
    an empty or free-form string is invalid in the document as it is at the server."""
    if not isinstance(info, mi.StructType | mi.DataclassType | mi.TypedDictType):
        return
    properties = schema.get("properties", {})
    for field in info.fields:
        if _is_datetime(field.type) and field.encode_name in properties:
            _pattern_strings(properties[field.encode_name])


def _is_datetime(t: mi.Type) -> bool:
    if isinstance(t, mi.Metadata):
        return _is_datetime(t.type)
    if isinstance(t, mi.UnionType):
        return any(_is_datetime(item) for item in t.types)
    return isinstance(t, mi.DateTimeType)


def _pattern_strings(schema: dict[str, Any]) -> None:
    for branch in schema.get("anyOf", []):
        _pattern_strings(branch)
    if schema.get("type") == "string" and "pattern" not in schema:
        schema["format"] = "date-time"
        schema["pattern"] = RFC3339


def _collect(t: mi.Type, found: dict[Any, mi.Type]) -> None:
    """The types msgspec makes components of, reachable from ``t``."""
    if isinstance(t, _COMPONENT_TYPES):
        if t.cls not in found:
            found[t.cls] = t
            for field in t.fields:
                _collect(field.type, found)
    elif isinstance(t, mi.EnumType):
        found[t.cls] = t
    elif isinstance(t, mi.Metadata):
        _collect(t.type, found)
    elif isinstance(t, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
        _collect(t.item_type, found)
    elif isinstance(t, mi.TupleType):
        for item in t.item_types:
            _collect(item, found)
    elif isinstance(t, mi.DictType):
        _collect(t.key_type, found)
        _collect(t.value_type, found)
    elif isinstance(t, mi.UnionType):
        for item in t.types:
            _collect(item, found)


def _to_schema(value: dict[str, Any], reference: Any) -> Schema | Reference:
    """msgspec's JSON Schema as Litestar's spec objects; ``$ref`` (a msgspec component name) through ``reference``."""
    if "$ref" in value:
        found: Schema | Reference = reference(value["$ref"])
        return found
    out = Schema()
    for key, item in value.items():
        name = _FIELDS.get(key)
        if name is None:
            continue
        if key in _ONE_SCHEMA or (key == "additionalProperties" and isinstance(item, dict)):
            item = _to_schema(item, reference)
        elif key in _SCHEMA_LISTS:
            item = [_to_schema(i, reference) for i in item]
        elif key in _SCHEMA_MAPS:
            item = {k: _to_schema(v, reference) for k, v in item.items()}
        elif key == "type":
            item = [OpenAPIType(t) for t in item] if isinstance(item, list) else OpenAPIType(item)
        elif key == "format":
            item = _enum_or_text(OpenAPIFormat, item)
        elif key == "discriminator":
            mapping = {tag: _ref_text(reference(ref)) for tag, ref in item.get("mapping", {}).items()}
            item = Discriminator(property_name=item["propertyName"], mapping=mapping or None)
        setattr(out, name, item)
    if value.get("contentEncoding") == "base64" and out.pattern is None:
        out.pattern = BASE64
    return out


def _enum_or_text(kind: type[enum.Enum], text: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        return text


def _ref_text(found: Schema | Reference) -> str:
    return found.ref if isinstance(found, Reference) else ""
