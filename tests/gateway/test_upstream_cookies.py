"""The upstream session is shared by every tenant, so it keeps no cookies: a cookie one
answer sets (a CDN's, say) must not ride along on the next tenant's request."""

from __future__ import annotations

from tests.conftest import CHAT, GatewayFactory, post_stream
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.script import Script


async def test_a_cookie_the_upstream_sets_is_not_sent_back(
    gateway: GatewayFactory, fake_anthropic: FakeAnthropic
) -> None:
    # A host name, not an IP address: aiohttp's default jar ignores cookies from IPs.
    client = await gateway(anthropic_url=fake_anthropic.url.replace("127.0.0.1", "localhost"))
    fake_anthropic.script(Script(headers={"Set-Cookie": "__cf_bm=abc; Path=/"}))

    for _ in range(2):
        result = await post_stream(client, "/ai/stream/chat", CHAT)
        assert result.status == 200

    assert fake_anthropic.requests == 2
    assert "Cookie" not in fake_anthropic.seen[1].headers
