from tests.browser.conftest import demo

async def test_offline(gateway, browser):
    client = await gateway(**demo(words=200, delay_ms=40), resume={"enabled": True})
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(str(client.make_url("/")))
    result = page.evaluate("""async () => {
      const r = await fetch("/ai/stream/chat", {method: "POST", headers: {"Content-Type": "application/json"},
         body: JSON.stringify({messages: [{role: "user", content: "hi"}]})});
      window.sid = r.headers.get("X-Stream-ID");
      const reader = r.body.getReader(); let n = 0; window.n = 0;
      try { while (true) { const {done, value} = await reader.read(); if (done) return "done " + n; n += value.length; window.n = n; } }
      catch (e) { return "error " + e.name + ": " + e.message + " after " + n + " sid " + window.sid; }
    }""")
    import asyncio
    task = asyncio.ensure_future(result)
    await page.wait_for_function("window.n > 500")
    await context.set_offline(True)
    print(await asyncio.wait_for(task, 10))
    await context.set_offline(False)
