"""Contract rules: the compatibility checker, the committed schema files, no personal data."""

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from contracts import STREAMS, registry
from contracts.compat import breaking_changes
from contracts.export import SCHEMAS_DIR, check, expected, main, schema_of, version_of, write

ROOT = Path(__file__).resolve().parents[2]


def event(properties: dict, required: list[str] = (), subject: str = "households.x.happened.v1",
          defs: dict | None = None) -> dict:
    schema = {"type": "object", "properties": properties, "required": list(required),
              "x-subject": subject}
    if defs:
        schema["$defs"] = defs
    return schema


STRING = {"type": "string"}
INTEGER = {"type": "integer"}
STATUS = {"enum": ["none", "poor"], "type": "string"}
OLD = event({"id": {"type": "string", "format": "uuid"}, "count": {"type": "integer", "minimum": 1},
             "status": {"$ref": "#/$defs/Status"}, "note": {"anyOf": [STRING, {"type": "null"}]},
             "flags": {"$ref": "#/$defs/Flags"}, "ratio": {"type": "number"},
             "counts": {"$ref": "#/$defs/Counts"}},
            required=["id", "count", "status"],
            defs={"Status": STATUS,
                  "Flags": {"type": "object", "properties": {"elderly": INTEGER}},
                  "Counts": {"type": "object", "additionalProperties": INTEGER}})


def changed(edit) -> dict:
    new = copy.deepcopy(OLD)
    edit(new)
    return new


BREAKING = {
    "field removed": (lambda s: s["properties"].pop("count"), "count: field removed"),
    "type changed": (lambda s: s["properties"].update(count=STRING), "count: type changed"),
    "number narrowed to integer": (lambda s: s["properties"].update(ratio=INTEGER),
                                   "ratio: type changed: number -> integer"),
    "enum value removed": (lambda s: s["$defs"]["Status"].update(enum=["none"]),
                           "status: enum values removed: ['poor']"),
    "narrowed to an enum": (lambda s: s["$defs"]["Flags"]["properties"].update(
        elderly={"type": "integer", "enum": [0, 1]}), "flags.elderly: narrowed to an enum"),
    "format added": (lambda s: s["properties"]["note"]["anyOf"][0].update(format="date"),
                     "note: format added"),
    "format changed": (lambda s: s["properties"]["id"].update(format="email"), "id: format changed"),
    "pattern added": (lambda s: s["properties"]["note"]["anyOf"][0].update(pattern=r"^\d+$"),
                      "note: pattern added"),
    "bound tightened": (lambda s: s["properties"]["count"].update(minimum=2),
                        "count: minimum changed: 1 -> 2"),
    "bound added": (lambda s: s["properties"]["count"].update(maximum=99),
                    "count: maximum added: 99"),
    "null no longer accepted": (lambda s: s["properties"].update(note=STRING),
                                "note: null no longer accepted"),
    "optional made required": (lambda s: s["required"].append("note"),
                               "note: optional field made required"),
    "new required field": (lambda s: (s["properties"].update(commune=STRING), s["required"].append("commune")),
                           "commune: new required field without a default"),
    "nested field removed": (lambda s: s["$defs"]["Flags"]["properties"].clear(),
                             "flags.elderly: field removed"),
    "nested type changed": (lambda s: s["$defs"]["Flags"]["properties"].update(elderly=STRING),
                            "flags.elderly: type changed"),
    "map value type changed": (lambda s: s["$defs"]["Counts"].update(additionalProperties=STRING),
                               "counts.*: type changed: integer -> string"),
    "subject changed": (lambda s: s.update({"x-subject": "households.x.happened.v2"}),
                        "subject changed: households.x.happened.v1 -> households.x.happened.v2"),
}

COMPATIBLE = {
    "unchanged": lambda s: None,
    "optional field added": lambda s: s["properties"].update(village=STRING),
    "field with a default added": lambda s: s["properties"].update(rounds={**INTEGER, "default": 0}),
    "enum value added": lambda s: s["$defs"]["Status"].update(enum=["none", "poor", "near_poor"]),
    "integer widened to number": lambda s: s["properties"].update(count={"type": "number", "minimum": 1}),
    "null now accepted": lambda s: s["properties"].update(
        count={"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]}),
    "required made optional": lambda s: s["required"].remove("count"),
    "pattern and format dropped": lambda s: s["properties"]["id"].pop("format"),
    "bound loosened": lambda s: s["properties"]["count"].update(minimum=0),
    "type widened to anything": lambda s: s["properties"].update(count={}),
    "docs edited": lambda s: s["properties"]["count"].update(title="Members", description="how many"),
    "nested optional field added": lambda s: s["$defs"]["Flags"]["properties"].update(disabled=INTEGER),
    "$ref inlined": lambda s: s["properties"].update(status=STATUS),
}


@pytest.mark.parametrize("kind", BREAKING)
def test_each_breaking_kind_is_detected(kind):
    edit, message = BREAKING[kind]
    found = breaking_changes(OLD, changed(edit))
    assert any(f.startswith(message) for f in found), found


@pytest.mark.parametrize("kind", COMPATIBLE)
def test_each_compatible_kind_passes(kind):
    assert breaking_changes(OLD, changed(COMPATIBLE[kind])) == []


def test_recursive_models_terminate():
    node = {"type": "object", "properties": {"next": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]},
                                             "size": INTEGER}}
    old = event({"head": {"$ref": "#/$defs/Node"}}, defs={"Node": node})
    new = copy.deepcopy(old)
    new["$defs"]["Node"]["properties"]["size"] = STRING
    assert breaking_changes(old, old) == []
    assert breaking_changes(old, new) == ["head.size: type changed: integer -> string"]


# --- the committed contract -------------------------------------------------------------

def current_schemas() -> dict[str, dict]:
    return {name: json.loads(text) for name, text in expected().items()}


def committed_versions(path: Path) -> list[tuple[str, dict]]:
    """(where, schema) for the file as it is now and as every git commit recorded it, so a
    breaking change cannot slip through by regenerating the file in the same branch."""
    versions = [("working tree", json.loads(path.read_text(encoding="utf-8")))]
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        return versions
    relative = path.relative_to(ROOT).as_posix()
    commits = subprocess.run([git, "log", "--format=%H", "--", relative], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    for commit in commits:
        shown = subprocess.run([git, "show", f"{commit}:{relative}"], cwd=ROOT,
                               capture_output=True, text=True)
        if shown.returncode == 0:  # the commit that deleted it has nothing to show
            versions.append((commit[:10], json.loads(shown.stdout)))
    return versions


@pytest.mark.parametrize("path", sorted(SCHEMAS_DIR.glob("*.json")), ids=lambda p: p.name)
def test_current_code_keeps_every_committed_contract(path):
    current = current_schemas()
    assert path.name in current, (f"{path.name} is committed but no event publishes it: a consumer "
                                  "may still need it (delete the file only to retire it on purpose)")
    for where, old in committed_versions(path):
        assert breaking_changes(old, current[path.name]) == [], (
            f"{path.name} breaks consumers of the version in {where}: bump schema_version, "
            "give the event a new subject and export a new file")


def test_exported_files_are_up_to_date():
    assert check() == []
    assert {p.name for p in SCHEMAS_DIR.glob("*.json")} == set(expected())


def test_export_cli_check_passes_on_the_repository():
    done = subprocess.run([sys.executable, "-m", "contracts.export", "--check"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_export_writes_stable_sorted_files_and_check_reports_drift(tmp_path):
    assert main(["--check", "--dir", str(tmp_path)]) == 1  # all missing
    assert main(["--dir", str(tmp_path)]) == 0
    first = {p.name: p.read_text() for p in tmp_path.glob("*.json")}
    assert main(["--dir", str(tmp_path)]) == 0
    assert first == {p.name: p.read_text() for p in tmp_path.glob("*.json")}
    text = first["HouseholdRegistered.v1.json"]
    schema = json.loads(text)
    assert schema["x-subject"] == "households.household.registered.v1"
    assert list(schema) == sorted(schema) and list(schema["properties"]) == sorted(schema["properties"])
    (tmp_path / "Retired.v1.json").write_text("{}")
    (tmp_path / "QuarantineEnded.v1.json").write_text(text)
    assert [p.split(":")[0] for p in check(tmp_path)] == ["QuarantineEnded.v1.json", "Retired.v1.json"]


def test_export_refuses_to_overwrite_with_a_breaking_change(tmp_path):
    name = "QuarantineEnded.v1.json"
    old = json.loads(expected()[name])
    old["properties"]["legacy"] = STRING  # the code no longer has this field: removing it breaks
    (tmp_path / name).write_text(json.dumps(old))
    written, refused = write(tmp_path)
    assert name not in written and refused == [f"{name}: legacy: field removed"]
    assert json.loads((tmp_path / name).read_text()) == old

    del old["properties"]["legacy"], old["properties"]["schema_version"]  # code adds an optional field
    (tmp_path / name).write_text(json.dumps(old))
    written, refused = write(tmp_path)
    assert name in written and refused == []


def test_subjects_carry_the_schema_version_and_belong_to_a_stream():
    prefixes = [p.removesuffix(">") for subjects in STREAMS.values() for p in subjects]
    subjects = [cls.subject for cls in registry.values()]
    assert len(set(subjects)) == len(subjects)
    for cls in registry.values():
        assert cls.subject.endswith(f".v{version_of(cls)}"), cls.subject
        assert any(cls.subject.startswith(p) for p in prefixes), cls.subject
        assert schema_of(cls)["x-subject"] == cls.subject


# --- personal data stays in households ----------------------------------------------------

PERSONAL = ["name", "cccd", "cmnd", "citizen", "identity", "passport", "phone", "mobile", "email",
            "health", "f0", "f1", "f2", "diagnos", "covid", "positive", "address", "street",
            "birth", "dob", "gender", "sex", "ethnic", "religion"]


def property_names(schema) -> list[str]:
    """Every field name in a JSON schema, nested models included."""
    if isinstance(schema, list):
        return [name for item in schema for name in property_names(item)]
    if not isinstance(schema, dict):
        return []
    names = list(schema.get("properties", {}))
    return names + [name for value in schema.values() for name in property_names(value)]


def enum_values(schema) -> list:
    if isinstance(schema, list):
        return [v for item in schema for v in enum_values(item)]
    if not isinstance(schema, dict):
        return []
    return list(schema.get("enum", [])) + [v for value in schema.values() for v in enum_values(value)]


def personal(word: str) -> list[str]:
    flat = re.sub(r"[^a-z0-9]", "", str(word).lower())
    return [denied for denied in PERSONAL if denied in flat]


@pytest.mark.parametrize("cls", list(registry.values()), ids=lambda c: c.type_name())
def test_no_contract_field_could_carry_personal_data(cls):
    schema = schema_of(cls)
    assert property_names(schema), "the walk found no fields"
    offending = {name: personal(name) for name in property_names(schema) + enum_values(schema)
                 if personal(name)}
    assert offending == {}, f"{cls.type_name()} would put personal data on the bus: {offending}"


def test_the_deny_list_catches_what_it_should():
    for field in ["head_name", "fullName", "cccd", "citizen_id", "phone_number", "health_status",
                  "is_f0", "F1", "home_address", "date_of_birth"]:
        assert personal(field), field
    for field in ["commune_code", "village", "member_count", "episode_id", "merged_id", "source_version"]:
        assert not personal(field), field
