"""Is a new schema of an event still safe for consumers of the old one?

Rules (the same for a consumer reading new messages and a new consumer replaying old ones):
breaking = a field removed; a field's type changed or narrowed (an enum value removed, a
format, pattern or tighter bound added, null no longer accepted); an optional field made
required; a new required field; the subject changed. Adding optional fields or enum
values, and widening a type, are compatible. Titles, descriptions and defaults are ignored.
"""

from typing import Any

Schema = dict[str, Any]

# keyword -> True when a larger value is stricter
_BOUNDS = {
    "minimum": True, "exclusiveMinimum": True, "minLength": True, "minItems": True,
    "minProperties": True,
    "maximum": False, "exclusiveMaximum": False, "maxLength": False, "maxItems": False,
    "maxProperties": False,
}


def breaking_changes(old_schema: Schema, new_schema: Schema) -> list[str]:
    """Every way in which `new_schema` breaks a consumer built for `old_schema`."""
    found: list[str] = []
    if old_schema.get("x-subject") != new_schema.get("x-subject"):
        found.append(f"subject changed: {old_schema.get('x-subject')} -> {new_schema.get('x-subject')}")
    _Comparison(old_schema, new_schema, found).compare("", old_schema, new_schema)
    return found


class _Comparison:
    def __init__(self, old_root: Schema, new_root: Schema, found: list[str]):
        self.roots = (old_root, new_root)
        self.found = found
        self.open: set[tuple[int, int]] = set()  # object pairs being compared (recursive models)

    def compare(self, path: str, old: Schema, new: Schema) -> None:
        olds = _variants(_deref(old, self.roots[0]), self.roots[0])
        news = _variants(_deref(new, self.roots[1]), self.roots[1])
        for variant in olds:
            kind = _kind(variant)
            if any(_kind(n) == "any" for n in news):
                continue
            candidates = [n for n in news if _kind(n) == kind or _accepts(_kind(n), kind)]
            if not candidates:
                wanted = " | ".join(_kind(n) for n in news)
                self.report(path, "null no longer accepted" if kind == "null"
                            else f"type changed: {kind} -> {wanted}")
                continue
            self.compare_best(path, variant, candidates)

    def compare_best(self, path: str, old: Schema, candidates: list[Schema]) -> None:
        """Keep the candidate that accepts `old` with the fewest complaints."""
        outcomes = []
        for candidate in candidates:
            saved, self.found = self.found, []
            self.compare_variant(path, old, candidate)
            outcomes.append(self.found)
            self.found = saved
        self.found.extend(min(outcomes, key=len))

    def compare_variant(self, path: str, old: Schema, new: Schema) -> None:
        old_enum, new_enum = _enum(old), _enum(new)
        if new_enum is not None:
            if old_enum is None:
                self.report(path, "narrowed to an enum")
            elif removed := [v for v in old_enum if v not in new_enum]:
                self.report(path, f"enum values removed: {removed}")
        for keyword in ("format", "pattern"):
            if keyword in new and old.get(keyword) != new[keyword]:
                self.report(path, _tightened(keyword, old.get(keyword), new[keyword]))
        for keyword, larger_is_stricter in _BOUNDS.items():
            if keyword not in new:
                continue
            before, after = old.get(keyword), new[keyword]
            if before is None or (after > before if larger_is_stricter else after < before):
                self.report(path, _tightened(keyword, before, after))
        if _kind(old) == "object":
            self.compare_object(path, old, new)
        elif _kind(old) == "array" and "items" in old:
            self.compare(f"{path}[]", old["items"], new.get("items", {}))

    def compare_object(self, path: str, old: Schema, new: Schema) -> None:
        pair = (id(old), id(new))
        if pair in self.open:
            return
        self.open.add(pair)
        try:
            self._compare_fields(path, old, new)
        finally:
            self.open.discard(pair)

    def _compare_fields(self, path: str, old: Schema, new: Schema) -> None:
        old_fields, new_fields = old.get("properties", {}), new.get("properties", {})
        old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
        prefix = f"{path}." if path else ""
        for name, field in old_fields.items():
            if name not in new_fields:
                self.report(f"{prefix}{name}", "field removed")
                continue
            if name in new_required and name not in old_required:
                self.report(f"{prefix}{name}", "optional field made required")
            self.compare(f"{prefix}{name}", field, new_fields[name])
        for name in sorted(new_fields.keys() - old_fields.keys()):
            if name in new_required:
                self.report(f"{prefix}{name}", "new required field without a default")
        old_extra, new_extra = old.get("additionalProperties", True), new.get("additionalProperties", True)
        if new_extra is False and old_extra is not False:
            self.report(path, "no longer accepts extra keys")
        elif isinstance(old_extra, dict) and isinstance(new_extra, dict):
            self.compare(f"{prefix}*", old_extra, new_extra)

    def report(self, path: str, what: str) -> None:
        self.found.append(f"{path or '(event)'}: {what}")


def _tightened(keyword: str, before: Any, after: Any) -> str:
    if before is None:
        return f"{keyword} added: {after!r}"
    return f"{keyword} changed: {before!r} -> {after!r}"


def _lookup(root: Schema, ref: str) -> Schema:
    if not ref.startswith("#/"):
        raise ValueError(f"only local $refs are supported, got {ref!r}")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _variants(schema: Schema, root: Schema) -> list[Schema]:
    """The alternatives a schema allows (anyOf/oneOf flattened, type lists split, $refs resolved)."""
    for keyword in ("anyOf", "oneOf"):
        if keyword in schema:
            return [v for option in schema[keyword] for v in _variants(_deref(option, root), root)]
    if isinstance(schema.get("type"), list):
        return [{**schema, "type": t} for t in schema["type"]]
    return [schema]


def _deref(schema: Schema, root: Schema) -> Schema:
    while "$ref" in schema:
        schema = _lookup(root, schema["$ref"])
    return schema


def _enum(schema: Schema) -> list | None:
    if "const" in schema:
        return [schema["const"]]
    return schema.get("enum")


def _kind(schema: Schema) -> str:
    if "type" in schema:
        return schema["type"]
    values = _enum(schema)
    if values:
        kinds = {_json_kind(v) for v in values}
        return kinds.pop() if len(kinds) == 1 else "any"
    if "properties" in schema:
        return "object"
    return "any"


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return {float: "number", str: "string", list: "array", dict: "object"}.get(type(value), "any")


def _accepts(new_kind: str, old_kind: str) -> bool:
    """Whether every value of `old_kind` is a value of `new_kind` (a widening)."""
    return new_kind == "any" or (new_kind == "number" and old_kind == "integer")
