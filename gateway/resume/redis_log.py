"""Stream logs in Redis Streams, so that a stream started on one replica resumes on any.

One key per stream, `<prefix>:{<tenant>}:resume:<stream id>` (the tenant is the hash tag,
as for the limiter's keys: a tenant's keys share a Redis Cluster slot, and another
tenant's resume finds nothing).  Entry ids are `<seq>-1`, so that a reader asks for
"after seq" directly; the terminal event has the field `end`.  A batch of events is one
pipeline: the `XADD`s (capped at about `max_events`), an `EXPIRE` of `ttl_s`, renewed
with every batch, so that a stream expires `ttl_s` after its last event, and a look at
`<key>:stop`, which `stop` (a `DELETE` on any replica) sets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.resume.log import Event, EventsTrimmed, StreamGone

FOLLOW_IDLE_S = 300.0  # a stream silent this long is taken for lost (its replica died)
_PAGE = 500


class RedisStreamLog:
    kind = "redis"
    failures: tuple[type[Exception], ...] = (RedisError,)

    def __init__(
        self,
        client: Redis | RedisCluster,
        prefix: str,
        ttl_s: int,
        max_events: int,
        socket_timeout_ms: int = 250,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl_s = ttl_s
        self._max_events = max_events
        # A blocking read must end well within the client's socket time-out.
        self._block_ms = max(socket_timeout_ms // 2, 5)

    def key(self, tenant: str, stream_id: str) -> str:
        return f"{self._prefix}:{{{tenant}}}:resume:{stream_id}"

    async def create(self, tenant: str, stream_id: str) -> bool:
        return True  # the first batch creates the key, before the client learns the id

    async def append(
        self, tenant: str, stream_id: str, first_seq: int, frames: Sequence[bytes], last: bool
    ) -> bool:
        key = self.key(tenant, stream_id)
        async with self._client.pipeline(transaction=False) as pipe:
            for offset, frame in enumerate(frames):
                fields: dict[str, bytes] = {"f": frame}
                if last and offset == len(frames) - 1:
                    fields["end"] = b"1"
                pipe.xadd(
                    key,
                    fields,  # type: ignore[arg-type]
                    id=f"{first_seq + offset}-1",
                    maxlen=self._max_events,
                    approximate=True,
                )
            pipe.expire(key, self._ttl_s)
            pipe.exists(key + ":stop")
            replies = await pipe.execute()
        return bool(replies[-1])

    async def stop(self, tenant: str, stream_id: str) -> bool:
        key = self.key(tenant, stream_id)
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.exists(key)
            pipe.set(key + ":stop", 1, ex=self._ttl_s)
            exists, _ = await pipe.execute()
        return bool(exists)

    async def stop_asked(self, tenant: str, stream_id: str) -> bool:
        return bool(await self._client.exists(self.key(tenant, stream_id) + ":stop"))

    async def follow(self, tenant: str, stream_id: str, after: int) -> AsyncIterator[Event]:
        key = self.key(tenant, stream_id)
        first = _events(await self._client.xrange(key, count=1))
        if not first:
            raise StreamGone()
        if first[0].seq > after + 1:
            raise EventsTrimmed()
        latest = _events(await self._client.xrevrange(key, count=1))
        if latest[0].last and latest[0].seq <= after:
            return  # it ended with the event the client has: nothing more comes
        seq, idle_s = after, 0.0
        while True:
            events = _events(await self._client.xrange(key, min=f"({seq}-1", count=_PAGE))
            if not events:
                events = await self._wait_after(key, seq)
            if not events:
                idle_s += self._block_ms / 1000
                if idle_s >= FOLLOW_IDLE_S or not await self._client.exists(key):
                    raise StreamGone()
                continue
            idle_s = 0.0
            for event in events:
                yield event
                if event.last:
                    return
                seq = event.seq

    async def set_chat(self, tenant: str, chat_id: str, stream_id: str) -> None:
        await self._client.set(self._chat_key(tenant, chat_id), stream_id, ex=self._ttl_s)

    async def chat_stream(self, tenant: str, chat_id: str) -> str | None:
        stream_id = await self._client.get(self._chat_key(tenant, chat_id))
        if stream_id is None:
            return None
        text = stream_id.decode() if isinstance(stream_id, bytes) else str(stream_id)
        latest: Any = await self._client.xrevrange(self.key(tenant, text), count=1)
        running = bool(latest) and not _events(latest)[0].last
        return text if running else None

    def _chat_key(self, tenant: str, chat_id: str) -> str:
        return f"{self._prefix}:{{{tenant}}}:chat:{chat_id}"

    async def _wait_after(self, key: str, seq: int) -> list[Event]:
        """The events after `seq` that arrive within one blocking read (none: silence)."""
        try:
            read: Any = await self._client.xread(
                {key: f"{seq}-1"}, count=_PAGE, block=self._block_ms
            )
        except RedisTimeoutError:
            return []  # a busy Redis answered late: the next read looks again
        return _events(read[0][1] if read else [])

    def describe(self) -> dict[str, Any]:
        return {"store": self.kind}

    async def aclose(self) -> None:
        return None  # the client is the app's


def _events(entries: Any) -> list[Event]:
    """`XRANGE`/`XREAD` entries (`[(b"<seq>-1", {b"f": frame, ...}), ...]`) as events."""
    return [
        Event(int(entry_id.partition(b"-")[0]), fields[b"f"], b"end" in fields)
        for entry_id, fields in entries
    ]
