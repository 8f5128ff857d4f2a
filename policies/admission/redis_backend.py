"""Redis limiter backend: one Lua script per admission (one round trip), one per release.

Every admission is recorded as unsettled until its release script runs, and that script
settles only what is still recorded: a release that Redis applied but whose reply was
lost can be sent again (the limiter replays releases after an outage) without counting
the request twice.  Likewise an admission sent twice (the client retries a command once
after a connection error) is counted once.

Keys carry the tenant as a hash tag, `rl:{tenant}:rpm`, so that every key one script
touches lives in one Redis Cluster slot.  Time is Redis's own (`TIME`), so replicas with
drifting clocks still share one limit.  Every key expires when idle.  Scripts run with
EVALSHA and are reloaded on NOSCRIPT (redis-py's `Script` does both).
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis, RedisCluster

from policies.admission.limits import DAY_MS, Admission, DayUsage, Decision, Plan, Quota, refusal
from providers.base import Usage

# KEYS: rpm, tpm, slots, day (a hash: `tokens` reserved or used today, `usd` spent or
# reserved today in micro-dollars, and per model `in:<model>`, `out:<model>`,
# `req:<model>`, `usd:<model>`), unsettled (lease ids by the time until which their release
# may still come), month (a hash: `usd`).  ARGV: rpm, tpm, concurrency, daily (0 = none),
# cost, lease id, lease ttl ms, day index, usage retention ms, settle window ms, daily
# budget, monthly budget (micro-dollars, 0 = none), spend to reserve, month end (ms).
# Returns {1, quota_limit, quota_remaining, quota_reset_s} or
#         {0, limit name, retry after ms, quota_limit, quota_remaining, quota_reset_s}.
# A lease already admitted is granted again without counting it twice (no quota then), so
# that the client may send the script again after a connection error.
ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rpm, tpm = tonumber(ARGV[1]), tonumber(ARGV[2])
local conc, daily = tonumber(ARGV[3]), tonumber(ARGV[4])
local cost, lease = tonumber(ARGV[5]), ARGV[6]
local lease_ttl, day = tonumber(ARGV[7]), tonumber(ARGV[8])
local retention, settle_window = tonumber(ARGV[9]), tonumber(ARGV[10])
local daily_usd, monthly_usd = tonumber(ARGV[11]), tonumber(ARGV[12])
local spend, month_end = tonumber(ARGV[13]), tonumber(ARGV[14])
local period = 60000
if redis.call('ZSCORE', KEYS[5], lease) then return {1, 0, 0, 0} end  -- sent twice: granted

local function quota(limit, tat)
  if limit == 0 then return 0, 0, 0 end
  local backlog = math.max(tat - now, 0)
  local remaining = math.max(math.floor((period - backlog) / (period / limit)), 0)
  return limit, remaining, math.ceil(backlog / 1000)
end

local rpm_new, tpm_new = 0, 0
local q_limit, q_tat = 0, 0
if rpm > 0 then
  local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
  rpm_new = tat + period / rpm
  if rpm_new - period > now then
    local l, r, s = quota(rpm, tat)
    return {0, 'requests_per_minute', rpm_new - period - now, l, r, s}
  end
  q_limit, q_tat = rpm, rpm_new
end
if tpm > 0 then
  local tat = math.max(tonumber(redis.call('GET', KEYS[2]) or '0'), now)
  tpm_new = tat + math.min(cost, tpm) * period / tpm
  if tpm_new - period > now then
    local l, r, s = quota(q_limit, q_tat)
    return {0, 'tokens_per_minute', tpm_new - period - now, l, r, s}
  end
  if q_limit == 0 then q_limit, q_tat = tpm, tpm_new end
end
if conc > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  if redis.call('ZCARD', KEYS[3]) >= conc then
    local l, r, s = quota(q_limit, q_tat)
    return {0, 'concurrent_streams', 1000, l, r, s}
  end
end
local used = tonumber(redis.call('HGET', KEYS[4], 'tokens') or '0')
if daily > 0 and used + cost > daily then
  local l, r, s = quota(q_limit, q_tat)
  return {0, 'daily_tokens', (day + 1) * 86400000 - now, l, r, s}
end
if daily_usd > 0 then
  local spent = tonumber(redis.call('HGET', KEYS[4], 'usd') or '0')
  if spent + spend > daily_usd then
    local l, r, s = quota(q_limit, q_tat)
    return {0, 'daily_usd', (day + 1) * 86400000 - now, l, r, s}
  end
end
if monthly_usd > 0 then
  local spent = tonumber(redis.call('HGET', KEYS[6], 'usd') or '0')
  if spent + spend > monthly_usd then
    local l, r, s = quota(q_limit, q_tat)
    return {0, 'monthly_usd', math.max(month_end - now, 1000), l, r, s}
  end
end

if rpm > 0 then redis.call('SET', KEYS[1], rpm_new, 'PX', math.ceil(rpm_new - now) + 1000) end
if tpm > 0 then redis.call('SET', KEYS[2], tpm_new, 'PX', math.ceil(tpm_new - now) + 1000) end
if conc > 0 then
  redis.call('ZADD', KEYS[3], now + lease_ttl, lease)
  redis.call('PEXPIRE', KEYS[3], lease_ttl * 2)
end
redis.call('HINCRBY', KEYS[4], 'tokens', cost)
if spend > 0 then
  redis.call('HINCRBY', KEYS[4], 'usd', spend)
  redis.call('HINCRBY', KEYS[6], 'usd', spend)
  redis.call('PEXPIRE', KEYS[6], math.max(month_end - now, 0) + retention)
end
redis.call('PEXPIRE', KEYS[4], retention)
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
redis.call('ZADD', KEYS[5], now + settle_window, lease)
redis.call('PEXPIRE', KEYS[5], settle_window)
local l, r, s = quota(q_limit, q_tat)
return {1, l, r, s}
"""

# KEYS: tpm, slots, day, unsettled, month.  ARGV: lease id, token correction (actual -
# reserved), tpm, model, input tokens, output tokens, spend correction (actual - reserved,
# micro-dollars), actual spend.  Returns 1, or 0 when it was settled already.
RELEASE = """
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('ZREM', KEYS[4], ARGV[1]) == 0 then return 0 end
local delta, tpm = tonumber(ARGV[2]), tonumber(ARGV[3])
if delta ~= 0 and tpm > 0 then
  local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
  if tat > 0 then
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    local new = tat + delta * 60000 / tpm
    if new <= now then redis.call('DEL', KEYS[1])
    else redis.call('SET', KEYS[1], new, 'PX', math.ceil(new - now) + 1000) end
  end
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  if redis.call('HINCRBY', KEYS[3], 'tokens', delta) < 0 then
    redis.call('HSET', KEYS[3], 'tokens', 0)
  end
  local model = ARGV[4]
  redis.call('HINCRBY', KEYS[3], 'in:' .. model, tonumber(ARGV[5]))
  redis.call('HINCRBY', KEYS[3], 'out:' .. model, tonumber(ARGV[6]))
  redis.call('HINCRBY', KEYS[3], 'req:' .. model, 1)
  local spend_delta, spent = tonumber(ARGV[7]), tonumber(ARGV[8])
  if spend_delta ~= 0 and redis.call('HINCRBY', KEYS[3], 'usd', spend_delta) < 0 then
    redis.call('HSET', KEYS[3], 'usd', 0)
  end
  if spent > 0 then redis.call('HINCRBY', KEYS[3], 'usd:' .. model, spent) end
  if spend_delta ~= 0 and redis.call('EXISTS', KEYS[5]) == 1 then
    if redis.call('HINCRBY', KEYS[5], 'usd', spend_delta) < 0 then
      redis.call('HSET', KEYS[5], 'usd', 0)
    end
  end
end
return 1
"""

# KEYS: slots.  ARGV: lease ttl ms, lease ids...
RENEW = """
local t = redis.call('TIME')
local expiry = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', expiry, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 2)
return 1
"""


PROBE_TTL_MS = 10_000  # the limiter's probe key expires on its own

# How long after its admission a request's release is still applied: longer than any stream
# plus any Redis outage the limiter replays releases across.
SETTLE_WINDOW_MS = 24 * 3600 * 1000


def keys_for(prefix: str, tenant: str, day: int, month: int = 0) -> list[str]:
    """rpm, tpm, slots, day, unsettled, month: one hash tag, so one Redis Cluster slot."""
    tag = f"{prefix}:{{{tenant}}}"
    return [
        f"{tag}:rpm",
        f"{tag}:tpm",
        f"{tag}:slots",
        f"{tag}:day:{day}",
        f"{tag}:unsettled",
        f"{tag}:month:{month}",
    ]


class RedisLimiter:
    name = "redis"

    def __init__(
        self, client: Redis | RedisCluster, prefix: str = "rl", usage_retention_days: int = 35
    ) -> None:
        self.client = client
        self._prefix = prefix
        self._retention_ms = usage_retention_days * DAY_MS
        self._admit = client.register_script(ADMIT)
        self._release = client.register_script(RELEASE)
        self._renew = client.register_script(RENEW)

    async def load_scripts(self) -> None:
        """Load the scripts before traffic arrives (on every primary of a cluster), so that
        concurrent first requests do not all meet NOSCRIPT at once."""
        if isinstance(self.client, RedisCluster):
            await self.client.initialize()
        for script in (self._admit, self._release, self._renew):
            script.sha = await self.client.script_load(script.script)

    async def probe(self) -> None:
        """A write, as admissions make: it fails while Redis cannot take them."""
        await self.client.set(f"{self._prefix}:probe", 1, px=PROBE_TTL_MS)

    async def admit(self, plan: Plan) -> Decision:
        limits = plan.limits
        daily_usd, monthly_usd = limits.micro_usd()
        reply: list[Any] = await self._admit(
            keys=keys_for(self._prefix, plan.tenant, plan.day, plan.month),
            args=[
                limits.requests_per_minute or 0,
                limits.tokens_per_minute or 0,
                limits.concurrent_streams or 0,
                limits.daily_tokens or 0,
                plan.cost,
                plan.lease_id,
                plan.lease_ttl_ms,
                plan.day,
                self._retention_ms,
                SETTLE_WINDOW_MS,
                daily_usd,
                monthly_usd,
                plan.cost_micro_usd,
                plan.month_end_ms,
            ],
        )
        if int(reply[0]) == 1:
            quota = _quota(reply[1:4])
            admission = plan.granted(quota, self)
            return Decision(True, admission=admission)
        name = _text(reply[1])
        return refusal(name, float(reply[2]), _quota(reply[3:6]))

    async def release(
        self, admission: Admission, used: Usage, model: str, micro_usd: int = 0
    ) -> None:
        keys = keys_for(self._prefix, admission.tenant, admission.day, admission.month)
        _, tpm, slots, day, unsettled, month = keys
        await self._release(
            keys=[tpm, slots, day, unsettled, month],
            args=[
                admission.lease_id,
                used.input_tokens + used.output_tokens - admission.reserved_tokens,
                admission.limits.tokens_per_minute or 0,
                model,
                used.input_tokens,
                used.output_tokens,
                micro_usd - admission.reserved_micro_usd,
                micro_usd,
            ],
        )

    async def renew(self, admissions: list[Admission], lease_ttl_ms: int) -> None:
        by_tenant: dict[str, list[str]] = {}
        for admission in admissions:
            if admission.limits.concurrent_streams:
                by_tenant.setdefault(admission.tenant, []).append(admission.lease_id)
        for tenant, leases in by_tenant.items():
            slots_key = keys_for(self._prefix, tenant, 0)[2]
            await self._renew(keys=[slots_key], args=[lease_ttl_ms, *leases])

    async def usage(self, tenant: str, day: int) -> DayUsage:
        raw = await self.client.hgetall(keys_for(self._prefix, tenant, day)[3])
        return DayUsage.from_fields({_text(k): int(v) for k, v in raw.items()})


def _quota(values: list[Any]) -> Quota | None:
    limit, remaining, reset_s = (int(v) for v in values)
    return Quota(limit, remaining, reset_s) if limit else None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
