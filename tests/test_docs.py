"""The docs cannot drift from the code: the configuration reference is the schema's.

- `docs/configuration.md` has one table row per key path of `GatewayConfig`, with the
  schema's default; `docs/providers.md` likewise for each built-in provider's settings.
  A key missing from the docs, a documented key the schema does not know, and a wrong
  default all fail.
- The README's test command is the one `.ci/run` runs.
- Links between the docs lead to files and headings that exist; the repository paths
  and test names the docs mention exist.

A reference row is a table row whose first two cells are the key path and its default,
each in backticks (`server.port`, then `8080`); the default is written as it would be in
config.yaml (parsed here as YAML), or as the bare word required.  Collections of
sections get a row and their items' keys get rows (`providers.<name>.type`,
`tenants[].id`); a section (`server`, `server.cors`) gets rows only for its keys.
"""

from __future__ import annotations

import json
import re
import types
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from gateway.app import create_app
from gateway.config import GatewayConfig, load_config
from policies.settings import BreakerOverrides, RetryOverrides, TimeoutOverrides
from providers.anthropic.shared import AnthropicSettings
from providers.demo import DemoSettings
from providers.openai_compatible import OpenAICompatibleSettings
from providers.registry import find_factory
from tests.sse_client import read_stream

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").glob("*.md"))]

REQUIRED = object()  # the default of a key that has none
# A target's overrides are the chain's own keys, each optional: one row each, not twelve.
LEAF_MODELS = (RetryOverrides, TimeoutOverrides, BreakerOverrides)
# How the reference names a mapping's keys, by the mapping's own key path.
PLACEHOLDERS = {"models": "<alias>"}
PROVIDER_SETTINGS: dict[str, type[BaseModel]] = {
    "anthropic": AnthropicSettings,
    "openai_compatible": OpenAICompatibleSettings,
    "demo": DemoSettings,
}

_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*([^|]*?)\s*\|")
_DEFAULT = re.compile(r"^`([^`]*)`$")
_TYPE_HEADING = re.compile(r"^#+ .*`type: (\w+)`")


# --- the schema's side ------------------------------------------------------------------


def schema_keys(model: type[BaseModel], prefix: str = "") -> dict[str, Any]:
    """Every key path of `model` that the reference documents, with its default."""
    keys: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        path = prefix + name
        kind, section = _shape(field.annotation)
        if kind == "section":
            keys.update(schema_keys(section, path + "."))
            continue
        keys[path] = _default(field)
        if kind == "optional":
            keys.update(schema_keys(section, path + "."))
        elif kind == "mapping":
            keys.update(schema_keys(section, f"{path}.{PLACEHOLDERS.get(path, '<name>')}."))
        elif kind == "list":
            keys.update(schema_keys(section, path + "[]."))
    return keys


def _shape(annotation: Any) -> tuple[str, Any]:
    """How a field holds sections: ("section" | "optional" | "mapping" | "list", the
    section's model), or ("leaf", None)."""
    if _is_section(annotation):
        return "section", annotation
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        models = [a for a in args if a is not type(None)]
        if len(models) == 1 and _is_section(models[0]):
            return "optional", models[0]
    if origin is dict and _is_section(args[1]):
        return "mapping", args[1]
    if origin is list and _is_section(args[0]):
        return "list", args[0]
    return "leaf", None


def _is_section(annotation: Any) -> bool:
    return (
        isinstance(annotation, type)
        and issubclass(annotation, BaseModel)
        and not issubclass(annotation, LEAF_MODELS)
    )


def _default(field: Any) -> Any:
    if field.is_required():
        return REQUIRED
    value = field.get_default(call_default_factory=True)
    return value.model_dump(exclude_none=True) if isinstance(value, BaseModel) else value


# --- the docs' side ---------------------------------------------------------------------


def reference_rows(lines: list[str]) -> dict[str, Any]:
    """Table rows that start with a key in backticks → {key: default}; a key twice fails."""
    rows: dict[str, Any] = {}
    for line in lines:
        match = _ROW.match(line)
        if match is None:
            continue
        key, cell = match.groups()
        assert key not in rows, f"`{key}` is documented twice"
        rows[key] = _parse_default(key, cell)
    return rows


def _parse_default(key: str, cell: str) -> Any:
    if cell == "required":
        return REQUIRED
    match = _DEFAULT.match(cell)
    assert match is not None, f"`{key}`: write the default as `value` or required, not {cell!r}"
    return yaml.safe_load(match.group(1))


def provider_tables(text: str) -> dict[str, dict[str, Any]]:
    """The reference rows under each heading that names a `type: <name>`."""
    tables: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("#"):
            heading = _TYPE_HEADING.match(line)
            current = tables.setdefault(heading.group(1), []) if heading else None
        elif current is not None:
            current.append(line)
    return {name: reference_rows(lines) for name, lines in tables.items()}


def differences(schema: dict[str, Any], documented: dict[str, Any]) -> list[str]:
    """What is wrong with the documented rows, in the schema's order of keys."""
    problems = [f"`{key}` is not in the reference" for key in schema if key not in documented]
    problems += [f"`{key}` is not in the schema" for key in documented if key not in schema]
    for key, want in schema.items():
        if key not in documented:
            continue
        got = documented[key]
        same = want is got if REQUIRED in (want, got) else _same_value(want, got)
        if not same:
            problems.append(f"`{key}`: the reference says {_show(got)}, the schema {_show(want)}")
    return problems


def _same_value(want: Any, got: Any) -> bool:
    return want == got and isinstance(want, bool) == isinstance(got, bool)


def _show(value: Any) -> str:
    return "required" if value is REQUIRED else repr(value)


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


# --- the configuration reference --------------------------------------------------------


def test_the_configuration_reference_is_the_schema_with_its_defaults():
    documented = reference_rows(_text(REPO / "docs" / "configuration.md").splitlines())
    problems = differences(schema_keys(GatewayConfig), documented)
    assert not problems, "docs/configuration.md:\n" + "\n".join(problems)


def test_the_reference_walk_sees_nested_sections_and_the_default_policies():
    """The walk itself: if it lost a branch, the test above would pass on too little."""
    keys = schema_keys(GatewayConfig)
    assert keys["server.header_timeout_s"] == 15
    assert keys["server.cors.allow_methods"] == ["GET", "POST", "OPTIONS"]
    assert keys["chains.<name>.retry.max_attempts"] == 3
    assert keys["chains.<name>.targets[].timeouts"] == {}
    assert keys["providers.<name>.type"] is REQUIRED
    assert keys["providers.<name>.quota.max_wait_s"] == 5
    assert keys["tenants[].limits.daily_tokens"] is None
    assert keys["models.<alias>.options"] == {}
    assert keys["policies"] == [
        "date_context",
        "fallback",
        "retry",
        "circuit_breaker",
        "upstream_quota",
        "timeouts",
    ]


def test_a_missing_unknown_or_wrong_row_is_reported():
    schema = {"server.port": 8080, "server.demo_page": True, "providers": REQUIRED}
    rows = [
        "| Key | Default | Meaning |",
        "| `server.port` | `8081` | where to listen |",
        "| `server.demo_page` | `1` | |",
        "| `server.prot` | `1` | |",
    ]
    assert differences(schema, reference_rows(rows)) == [
        "`providers` is not in the reference",
        "`server.prot` is not in the schema",
        "`server.port`: the reference says 8081, the schema 8080",
        "`server.demo_page`: the reference says 1, the schema True",
    ]


@pytest.mark.parametrize("provider_type", sorted(PROVIDER_SETTINGS))
def test_each_providers_options_table_is_its_settings_model(provider_type):
    find_factory(provider_type)  # a built-in type, by the name config.yaml uses
    tables = provider_tables(_text(REPO / "docs" / "providers.md"))
    assert provider_type in tables, f"docs/providers.md has no `type: {provider_type}` table"
    documented = tables[provider_type]
    problems = differences(schema_keys(PROVIDER_SETTINGS[provider_type]), documented)
    assert not problems, f"docs/providers.md, `type: {provider_type}`:\n" + "\n".join(problems)


# --- the README -------------------------------------------------------------------------


def _code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)


def test_the_readme_test_command_is_the_one_ci_runs():
    ci_command = _text(REPO / ".ci" / "run").strip().splitlines()[-1]
    run, test = _code_blocks(_text(REPO / "README.md"), "bash")[:2]
    assert run.strip().endswith("ai-gateway serve")
    assert test.strip() == ci_command


# --- links, paths and test names --------------------------------------------------------

_LINK = re.compile(r"\]\(([^)\s]+)\)")
_PATH = re.compile(r"`((?:gateway|policies|providers|tests|examples|bench|docs|\.ci)/[^`\s]*)`")
_TEST_NAME = re.compile(r"`(?:[\w/.]+::)?(test_\w+)`")


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    found = set()
    for line in _text(path).splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower().replace("`", "")
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_links_between_the_docs_lead_somewhere(doc):
    broken = []
    for target in _LINK.findall(_text(doc)):
        if re.match(r"^[a-z]+:", target):
            continue  # http:, mailto:
        file, _, anchor = target.partition("#")
        path = (doc.parent / file).resolve() if file else doc
        if not path.exists() or (anchor and anchor not in _anchors(path)):
            broken.append(target)
    assert not broken, f"links to no file or heading: {broken}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_the_paths_and_tests_the_docs_name_exist(doc):
    text = _text(doc)
    missing = []
    for mentioned in _PATH.findall(text):
        path = mentioned.split("::")[0].split(":")[0]
        if "<" not in path and not (REPO / path).exists():
            missing.append(mentioned)
    tests_source = "\n".join(_text(p) for p in (REPO / "tests").rglob("test_*.py"))
    for name in _TEST_NAME.findall(text):
        if not re.search(rf"def {name}\b", tests_source):
            missing.append(name)
    assert not missing, f"named but not found: {missing}"


async def test_the_readmes_example_is_what_the_shipped_config_streams(aiohttp_client):
    """The curl example's request, run against the shipped config in demo mode, gives the
    README's first events and its `done` line (but the request id)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    body = json.loads(re.search(r"-d '(\{.*?\})'", readme).group(1))
    shown = [json.loads(line[6:]) for line in readme.splitlines() if line.startswith("data: {")]
    client = await aiohttp_client(create_app(load_config(REPO / "config.yaml", environ={})))
    async with client.post("/ai/stream/generate", json=body) as response:
        events = (await read_stream(response)).events

    assert events[: len(shown) - 1] == shown[:-1]
    done = {k: v for k, v in events[-1].items() if k != "request_id"}
    assert done == {k: v for k, v in shown[-1].items() if k != "request_id"}
