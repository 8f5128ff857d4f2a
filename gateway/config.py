"""config.yaml → validated `GatewayConfig`.

Loading is three steps, each with errors that name the key path:
1. YAML parse; literal secrets are refused (an `api_key` must be `${VAR}` or empty);
2. `${VAR}` / `${VAR:-default}` interpolation from the environment;
3. pydantic validation: `GatewayConfig` alone accepts only a valid file, cross-references
   (chains → models → providers, tenants → chains) and the policy order included.
Defaults live in the models below, not in `.get()` calls elsewhere.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from policies.settings import (
    BreakerOverrides,
    BreakerSettings,
    RetryOverrides,
    RetrySettings,
    TimeoutOverrides,
    TimeoutSettings,
    UpstreamQuotaSettings,
)

DEFAULT_CONFIG_PATH = "config.yaml"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SECRET_KEYS = {"api_key", "admin_key", "stream_token_secret"}
_KEY_HASH = re.compile(r"sha256:[0-9a-f]{64}")


class ConfigError(Exception):
    """A config file that cannot be used; the message names the file, key path and problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CorsConfig(_Strict):
    allow_origins: list[str] = Field(default_factory=list)
    allow_methods: list[str] = Field(default_factory=lambda: ["GET", "POST", "OPTIONS"])
    allow_headers: list[str] = Field(default_factory=lambda: ["*"])
    expose_headers: list[str] = Field(
        default_factory=lambda: [
            "Retry-After",
            "X-Request-ID",
            "RateLimit-Limit",
            "RateLimit-Remaining",
            "RateLimit-Reset",
            "X-Gateway-Dropped-Params",
        ],
        description="response headers a browser's script may read",
    )
    max_age_s: int = Field(default=600, ge=0)


class DateContextConfig(_Strict):
    enabled: bool = True
    timezone: str = "UTC"
    api_routes: bool = Field(
        default=False,
        description="also on /v1/messages, whose clients send their own system prompts",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}' (use an IANA name)") from None
        return value


class ServerConfig(_Strict):
    host: str = Field(
        default="127.0.0.1", description="listen here; 0.0.0.0 for every address (see auth)"
    )
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    keepalive_seconds: float = Field(default=15, gt=0)
    max_tokens_limit: int = Field(default=64_000, ge=1)
    drain_seconds: float = Field(default=30, ge=0, description="on SIGTERM, for open streams")
    demo_page: bool = Field(default=True, description="serve the demo chat page at /")
    event_loop: Literal["uvloop", "asyncio"] = Field(
        default="uvloop", description="uvloop: the same asyncio API with a faster loop"
    )
    upstream_connections: int = Field(
        default=10_000, ge=1, description="open connections to upstreams, all providers"
    )
    header_timeout_s: float = Field(
        default=15,
        gt=0,
        description="receiving a request's headers, and an idle keep-alive connection",
    )
    body_timeout_s: float = Field(default=30, gt=0, description="reading a request's body")
    max_connections: int = Field(
        default=10_000, ge=1, description="open client connections per process; more get 503"
    )
    log_format: Literal["json", "text"] = "json"
    workers: Annotated[int, Field(ge=1, le=1024)] | Literal["auto"] = Field(
        default=1, description="processes serving the port; auto: one per CPU core"
    )
    cors: CorsConfig = Field(default_factory=CorsConfig)
    date_context: DateContextConfig = Field(default_factory=DateContextConfig)


class RedisConfig(_Strict):
    url: str = ""

    @field_validator("url")
    @classmethod
    def _has_a_scheme(cls, url: str) -> str:
        if url and not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(
                f"'{url}' has no scheme: write redis://{url.removeprefix('//')} "
                "(rediss:// for TLS, unix:// for a socket)"
            )
        return url

    cluster: bool = False
    on_error: Literal["fail_open", "fail_closed"] = "fail_open"
    socket_timeout_ms: int = Field(default=250, ge=10, le=10_000)
    max_connections: int = Field(
        default=64, ge=1, le=10_000, description="calls at once to Redis, per replica"
    )
    pool_wait_ms: int = Field(
        default=2000, ge=0, le=60_000, description="a call's wait for a free connection"
    )
    lease_ttl_s: float = Field(default=60, ge=1, description="concurrency slot lease")
    key_prefix: str = Field(default="aigw", pattern=r"^[A-Za-z0-9_.-]+$")
    usage_retention_days: int = Field(default=35, ge=1, description="usage kept for reports")


class ResumeConfig(_Strict):
    """Resumable streams: each stream's events are kept (in Redis when configured, else in
    this process) so that a client that lost its connection picks the stream up again."""

    enabled: bool = False
    ttl_s: int = Field(default=600, ge=1, le=86_400, description="kept after the stream ends")
    max_events: int = Field(default=20_000, ge=10, le=1_000_000, description="per stream")
    continue_after_disconnect: bool = Field(
        default=True, description="a client that leaves does not stop its answer"
    )
    max_total_events: int = Field(
        default=500_000,
        ge=100,
        description="in-process store only: events held at most, all streams together",
    )


class ProviderConfig(BaseModel):
    """`type` picks the adapter; every other key is that adapter's own (it validates them)."""

    model_config = ConfigDict(extra="allow")

    type: str
    quota: UpstreamQuotaSettings | None = None

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class CapabilitiesConfig(_Strict):
    """What the model accepts, where the provider's own table is wrong or does not know."""

    prefill: bool | None = Field(default=None, description="continues a final assistant turn")
    temperature: bool | None = None
    top_p: bool | None = None
    top_k: bool | None = None
    tools: bool | None = Field(default=None, description="false: requests with tools skip it")
    images: bool | None = Field(default=None, description="false: requests with images skip it")


class PriceConfig(_Strict):
    """USD per million tokens: what spend figures and USD budgets count with."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_write: float | None = Field(
        default=None, ge=0, description="prompt-cache writes; null: 1.25 x input"
    )
    cache_read: float | None = Field(
        default=None, ge=0, description="prompt-cache reads; null: 0.1 x input"
    )


class ModelConfig(_Strict):
    provider: str
    model: str
    price: PriceConfig | None = Field(
        default=None, description="USD per million tokens; null: no cost is counted"
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="extra request fields for this model, provider-specific"
    )
    capabilities: CapabilitiesConfig = Field(default_factory=CapabilitiesConfig)
    allow_retired: bool = Field(
        default=False, description="start even though the provider retired this model"
    )


class TargetConfig(_Strict):
    """A chain target with its own settings; keys given here override the chain's."""

    model: str
    retry: RetryOverrides = Field(default_factory=RetryOverrides)
    timeouts: TimeoutOverrides = Field(default_factory=TimeoutOverrides)
    circuit_breaker: BreakerOverrides = Field(default_factory=BreakerOverrides)


class ChainConfig(_Strict):
    targets: list[TargetConfig] = Field(min_length=1, description="a model alias, or a mapping")
    retry: RetrySettings = Field(default_factory=RetrySettings)
    timeouts: TimeoutSettings = Field(default_factory=TimeoutSettings)
    circuit_breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    on_stream_failure: Literal["terminate", "continue"] = "terminate"

    @field_validator("targets", mode="before")
    @classmethod
    def _alias_alone_is_a_target(cls, targets: Any) -> Any:
        """`sonnet` is short for `{model: sonnet}`."""
        if isinstance(targets, list):
            return [{"model": t} if isinstance(t, str) else t for t in targets]
        return targets

    def settings_for(
        self, target: TargetConfig
    ) -> tuple[RetrySettings, TimeoutSettings, BreakerSettings]:
        """The chain's settings with the target's overrides."""
        return (
            target.retry.over(self.retry),
            target.timeouts.over(self.timeouts),
            target.circuit_breaker.over(self.circuit_breaker),
        )


class TenantLimits(_Strict):
    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)
    concurrent_streams: int | None = Field(default=None, ge=1)
    daily_tokens: int | None = Field(default=None, ge=1)
    daily_usd: float | None = Field(default=None, gt=0, description="spend per UTC day")
    monthly_usd: float | None = Field(default=None, gt=0, description="spend per UTC month")


class AuthConfig(_Strict):
    mode: Literal["none", "api_key"] = "none"
    anonymous_limits: TenantLimits = Field(
        default_factory=lambda: TenantLimits(), description="limits of the tenant in mode none"
    )
    stream_token_secret: str = Field(default="", description="signs EventSource stream tokens")
    stream_token_ttl_s: float = Field(default=300, gt=0, le=86_400)
    allow_unauthenticated_network: bool = Field(
        default=False,
        description="serve mode none with provider keys on a non-loopback address",
    )


class TenantConfig(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    name: str = ""
    keys: list[str] = Field(default_factory=list, description="from `ai-gateway hash-key`")

    @field_validator("keys")
    @classmethod
    def _hashes_not_keys(cls, keys: list[str]) -> list[str]:
        for key in keys:
            if not _KEY_HASH.fullmatch(key):
                raise ValueError(
                    "a key is stored as its hash, never as itself: run `ai-gateway hash-key` "
                    "and put its output (sha256:...) here"
                )
        return keys

    chains: list[str] = Field(default_factory=list)
    default_chain: str | None = None
    limits: TenantLimits = Field(default_factory=TenantLimits)
    log_content: bool = Field(default=False, description="log prompts and completions")


class MetricsConfig(_Strict):
    enabled: bool = True
    port: int = Field(default=0, ge=0, le=65535, description="0: on the main port")
    host: str = "127.0.0.1"


class AdminConfig(_Strict):
    api_key: str = Field(default="", description="for /admin/* and /metrics on the main port")


# The policy steps in the only order that is correct, outermost first.  Fallback picks the
# target; the steps inside it act on that target (its retry settings, its circuit, its
# provider's quota, its time-outs), and each retry is one attempt with its own time-outs
# and quota turn, counted by the circuit breaker.  Config switches steps off by leaving
# them out; it cannot reorder them.
POLICY_STEPS = (
    "date_context",
    "fallback",
    "retry",
    "circuit_breaker",
    "upstream_quota",
    "timeouts",
)


class GatewayConfig(_Strict):
    server: ServerConfig = Field(default_factory=ServerConfig)
    redis: RedisConfig = Field(default_factory=RedisConfig)
    providers: dict[str, ProviderConfig]
    models: dict[str, ModelConfig]
    chains: dict[str, ChainConfig]
    default_chain: str = "default"
    policies: list[Literal[POLICY_STEPS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(POLICY_STEPS),
        description="the steps around each upstream call, outermost first",
    )

    @field_validator("policies")
    @classmethod
    def _in_the_one_right_order(cls, steps: list[str]) -> list[str]:
        if len(set(steps)) != len(steps):
            raise ValueError("each step may appear once")
        if steps != sorted(steps, key=POLICY_STEPS.index):
            raise ValueError(
                "steps must keep the order " + ", ".join(POLICY_STEPS) + " (outermost first; "
                "leave a step out to switch it off): fallback picks the target that retry, "
                "circuit_breaker, upstream_quota and timeouts then act on"
            )
        return steps

    auth: AuthConfig = Field(default_factory=AuthConfig)
    tenants: list[TenantConfig] = Field(default_factory=list)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    admin: AdminConfig = Field(default_factory=AdminConfig)
    resume: ResumeConfig = Field(default_factory=ResumeConfig)

    @model_validator(mode="after")
    def _names_refer_to_what_is_defined(self) -> GatewayConfig:
        """Chains → models → providers, the default chain, tenants → chains: each name
        given must be defined (every problem is reported, each with its key path)."""
        problems = _cross_reference_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def secrets(self) -> list[str]:
        """Every secret value in this config, so that error text can be scrubbed of them."""
        found = [str(p.options().get("api_key") or "") for p in self.providers.values()]
        found += [self.admin.api_key, self.auth.stream_token_secret]
        return [s for s in found if len(s) >= 4]


def load_config(path: str | Path, environ: dict[str, str] | None = None) -> GatewayConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc.strerror})") from None
    return parse_config(text, source=str(path), environ=environ)


def parse_config(
    text: str, *, source: str = "config", environ: dict[str, str] | None = None
) -> GatewayConfig:
    env = os.environ if environ is None else environ
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}: {where}not valid YAML ({problem})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections")
    try:
        _refuse_literal_secrets(raw, ())
        data = _interpolate(raw, (), env)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    try:
        return GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {describe_validation_error(exc)}") from None


def _path(parts: tuple[str | int, ...]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _refuse_literal_secrets(node: Any, where: tuple[str | int, ...]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if (
                key in _SECRET_KEYS
                and isinstance(value, str)
                and value
                and not _VAR.fullmatch(value.strip())
            ):
                raise ValueError(
                    f"{_path((*where, key))}: secrets are read from the environment only; "
                    f"write {key}: ${{SOME_VARIABLE}} and export SOME_VARIABLE"
                )
            _refuse_literal_secrets(value, (*where, str(key)))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            _refuse_literal_secrets(item, (*where, i))


def _interpolate(node: Any, where: tuple[str | int, ...], env: Any) -> Any:
    if isinstance(node, dict):
        return {k: _interpolate(v, (*where, str(k)), env) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, (*where, i), env) for i, v in enumerate(node)]
    if not isinstance(node, str) or "${" not in node:
        return node

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return str(env[name])
        if default is not None:
            return default
        raise ValueError(
            f"{_path(where)}: environment variable {name} is not set "
            f"(export it, or write ${{{name}:-default}})"
        )

    return _VAR.sub(substitute, node)  # pydantic coerces "8080" to an int where one is due


def describe_validation_error(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors()[:5]:
        message = error["msg"].removeprefix("Value error, ")
        if not error["loc"]:  # a model validator's: its message names its paths
            lines.append(message)
            continue
        loc = _path(tuple(error["loc"]))
        if error["type"] == "extra_forbidden":
            message = "unknown key (check its spelling)"
        elif error["type"] == "missing":
            message = "required key is missing"
        lines.append(f"{loc}: {message}")
    return "; ".join(lines)


def _cross_reference_problems(config: GatewayConfig) -> list[str]:
    problems = []
    for alias, model in config.models.items():
        if model.provider not in config.providers:
            problems.append(
                f"models.{alias}.provider: unknown provider '{model.provider}' "
                f"(defined: {', '.join(config.providers) or 'none'})"
            )
    for name, chain in config.chains.items():
        for i, target in enumerate(chain.targets):
            if target.model not in config.models:
                problems.append(
                    f"chains.{name}.targets[{i}]: unknown model alias '{target.model}' "
                    f"(defined: {', '.join(config.models) or 'none'})"
                )
    if config.default_chain not in config.chains:
        problems.append(
            f"default_chain: unknown chain '{config.default_chain}' "
            f"(defined: {', '.join(config.chains) or 'none'})"
        )
    problems.extend(_tenant_problems(config))
    problems.extend(_unpriced_budget_problems(config))
    return problems


def _unpriced_budget_problems(config: GatewayConfig) -> list[str]:
    """A tenant with a USD budget may only use models that have a price."""
    budgeted = [(f"tenants[{i}]", t.limits, t.chains) for i, t in enumerate(config.tenants)]
    if config.auth.mode == "none":
        budgeted.append(("auth.anonymous_limits", config.auth.anonymous_limits, []))
    problems = []
    for where, limits, chains in budgeted:
        if not (limits.daily_usd or limits.monthly_usd):
            continue
        for name in chains or list(config.chains):
            chain = config.chains.get(name)
            unpriced = [
                t.model
                for t in (chain.targets if chain else [])
                if t.model in config.models and config.models[t.model].price is None
            ]
            problems += [
                f"{where}: has a USD budget, but its chain '{name}' uses model '{alias}', "
                f"which has no price (set models.{alias}.price)"
                for alias in unpriced
            ]
    return problems


def _tenant_problems(config: GatewayConfig) -> list[str]:
    problems = []
    if config.auth.mode == "api_key" and not any(t.keys for t in config.tenants):
        problems.append("auth.mode: api_key needs at least one tenant with keys")
    ids: set[str] = set()
    hashes: set[str] = set()
    for i, tenant in enumerate(config.tenants):
        if tenant.id in ids:
            problems.append(f"tenants[{i}].id: '{tenant.id}' is used twice")
        ids.add(tenant.id)
        for key in tenant.keys:
            if key in hashes:
                problems.append(f"tenants[{i}].keys: a key hash is used twice")
            hashes.add(key)
        for allowed in tenant.chains:
            if allowed not in config.chains and allowed not in config.models:
                problems.append(f"tenants[{i}].chains: unknown chain or model '{allowed}'")
        default = tenant.default_chain
        if default and tenant.chains and default not in tenant.chains:
            problems.append(f"tenants[{i}].default_chain: '{default}' is not in its chains")
        elif default and default not in config.chains and default not in config.models:
            problems.append(f"tenants[{i}].default_chain: unknown chain or model '{default}'")
    return problems
