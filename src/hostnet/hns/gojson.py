"""Go's encoding/json rules for hostnet's HNS models: the base class, parsing, error text.

Field names and casing are hcsshim's (``hcn/*.go``, ``internal/hns/*.go``); the Python
attributes are snake_case with hcsshim's name as the alias. Input follows Go's
``encoding/json`` where a client can tell: keys match without regard to case (an exact
match wins; a later duplicate overwrites an earlier one), ``null`` sets nothing, and a
value of the wrong JSON type is an error (strict: ``"80"`` is not a port, ``1`` is not a
bool, ``80.0`` is not a whole number). Output follows ``omitempty``: a zero scalar or an
empty list is left out, a struct-valued field is always written (``"Dns": {}``,
``"Health": {"Extra": {}}``), and a raw field (Go's ``json.RawMessage``/``interface{}``)
is left out only when absent.

Unknown keys (decision): Go ignores them; hostnet refuses them, naming the key. Every
field hcsshim defines is in these models, so nothing hcsshim sends is refused here; a key
hcsshim does not have is a typo or a feature hostnet cannot know, and principle 5 says
such an option is an error, never silently dropped. Whether a *value* is supported (a
network Type, a flag, a policy) is decided elsewhere (``policies``, the service).
Enum values (a network Type, a RequestType) are matched without regard to case too and
answered in hcsshim's spelling.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)

from hostnet.errors import InvalidRequest

U8 = Annotated[int, Field(ge=0, le=2**8 - 1)]
U16 = Annotated[int, Field(ge=0, le=2**16 - 1)]
U32 = Annotated[int, Field(ge=0, le=2**32 - 1)]
U64 = Annotated[int, Field(ge=0, le=2**64 - 1)]


def fold_keys(model: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    """Map each key onto the model's field name as Go does: exact first, then any case."""
    names = {f.alias or n for n, f in model.model_fields.items()}
    folded = {k.lower(): k for k in names}
    out: dict[str, Any] = {}
    for key, value in data.items():
        target = key if key in names else folded.get(str(key).lower(), key)
        if value is not None:  # Go: null leaves the field as it was
            out[target] = value
    return out


def canon(values: tuple[str, ...]) -> BeforeValidator:
    """Enum values matched without regard to case, answered in hcsshim's spelling."""
    by_lower = {v.lower(): v for v in values}

    def fold(value: Any) -> Any:
        return by_lower.get(value.lower(), value) if isinstance(value, str) else value

    return BeforeValidator(fold)


def _empty(value: Any, raw: bool) -> bool:
    """Go's isEmptyValue for what these models hold (structs are never empty)."""
    if raw or value is None:
        return value is None
    if isinstance(value, BaseModel):
        return False
    return value in ("", 0, False) or (isinstance(value, list | dict) and not value)


class GoModel(BaseModel):
    """A Go struct's JSON: case-insensitive keys in, hcsshim's names and omitempty out."""

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )
    #: fields written even when zero (no ``omitempty`` in their tag)
    always: ClassVar[frozenset[str]] = frozenset()
    #: raw JSON fields: kept exactly as given, left out only when absent
    raw: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _go_keys(cls, data: Any) -> Any:
        return fold_keys(cls, data) if isinstance(data, dict) else data

    @model_serializer(mode="wrap")
    def _omitempty(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name, field in type(self).model_fields.items():
            if name not in self.always and _empty(getattr(self, name), name in self.raw):
                data.pop(field.alias or name, None)
                data.pop(name, None)
        return data

    def to_json(self) -> dict[str, Any]:
        """The object as hcsshim would marshal it."""
        return self.model_dump(by_alias=True)


def parse(model: type[GoModel], data: Any, what: str = "") -> Any:
    """``model`` from JSON data, or an InvalidRequest naming every bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise explain(exc, what or model.__name__) from None


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_WANT = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}


def explain(exc: ValidationError, what: str) -> InvalidRequest:
    """One InvalidRequest for a pydantic error: each bad field by its path, what it must be."""
    parts = []
    for err in exc.errors():
        where = _path(tuple(err["loc"])) or "(the object)"
        kind = err["type"]
        if kind == "extra_forbidden":
            parts.append(f"{where}: unknown field (hcsshim's {what} has no such field)")
        elif kind in _WANT:
            parts.append(f"{where}: must be {_WANT[kind]}, not {err['input']!r}")
        elif kind == "value_error":
            parts.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
        elif kind == "missing":
            parts.append(f"{where}: missing (hcsshim's {what} needs it)")
        else:
            parts.append(f"{where}: {err['msg']} (got {err['input']!r})")
    return InvalidRequest(
        f"invalid {what}: " + "; ".join(parts),
        "send the fields hcsshim defines for it, with the JSON types it uses",
        fields=[_path(tuple(e["loc"])) for e in exc.errors()],
    )
