"""`ai-gateway`: serve, check-config, hash-key, usage, chat."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import hashlib
import json
import logging
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Coroutine, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from gateway.access_log import JsonFormatter
from gateway.build import check_providers
from gateway.chat_cli import run_chat, url_problem
from gateway.config import DEFAULT_CONFIG_PATH, ConfigError, GatewayConfig, load_config
from gateway.exposure import open_relay_problem
from gateway.model_lifecycle import today_of
from gateway.server import serve
from gateway.supervisor import supervise
from gateway.workers import WorkerIdentity, WorkerTag, resolve_count


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ai-gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument(
        "--config", help="config file (default: $AI_GATEWAY_CONFIG or ./config.yaml)"
    )
    serve.add_argument("--host", help="override server.host")
    serve.add_argument("--port", type=int, help="override server.port")
    serve.add_argument(
        "--workers", type=_workers_arg, help="override server.workers (a number, or auto)"
    )
    serve.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)  # the supervisor's

    check = commands.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("path", nargs="?", help="config file (default as for serve)")

    hash_key = commands.add_parser("hash-key", help="print the sha256 form of an API key")
    hash_key.add_argument("key", nargs="?", help="the key (read from stdin when omitted)")

    chat = commands.add_parser("chat", help="stream an answer in the terminal")
    chat.add_argument("prompt", nargs="?", help="ask once (without: read questions from stdin)")
    chat.add_argument("--model", help="a chain or model alias")
    chat.add_argument("--system", help="a system prompt")
    chat.add_argument("--max-tokens", type=int, default=1024)

    usage = commands.add_parser("usage", help="tokens and requests by tenant and model")
    usage.add_argument("--url", default=os.environ.get("AI_GATEWAY_URL", "http://127.0.0.1:8080"))
    usage.add_argument("--day", help="YYYY-MM-DD (UTC; default today)")
    usage.add_argument("--tenant")
    usage.add_argument("--json", action="store_true", help="print the raw JSON report")

    args = parser.parse_args(argv)
    if args.command == "usage":
        return print_usage(args.url, args.day, args.tenant, args.json)
    if args.command == "chat":
        return run_chat(args.prompt, args.model, args.system, args.max_tokens)
    if args.command == "hash-key":
        key = args.key if args.key is not None else _read_key()
        if not key:
            print(
                "ai-gateway hash-key: no key given: pass it as an argument or on standard input",
                file=sys.stderr,
            )
            return 2
        print(hash_api_key(key))
        return 0
    path = _config_path(args.config if args.command == "serve" else args.path)
    if args.command == "serve" and args.worker_index is not None:
        worker = WorkerIdentity(int(args.workers or 1), args.worker_index)
        return run_worker(path, args.host, args.port, worker)
    try:
        config = load_config(path)
        checked = asyncio.run(check_providers(config, today_of(time.time())))
    except ConfigError as exc:
        print(f"ai-gateway: invalid configuration: {exc}", file=sys.stderr)
        return 2
    for warning in checked.warnings:
        print(f"ai-gateway: warning: {warning}", file=sys.stderr)
    if args.command == "check-config":
        print(describe(config, checked.demo_mode))
        return 0
    if problem := open_relay_problem(args.host or config.server.host, config, checked.demo_mode):
        print(f"ai-gateway: {problem}", file=sys.stderr)
        return 2
    try:
        return serve_forever(config, path, host=args.host, port=args.port, workers=args.workers)
    except ConfigError as exc:
        print(f"ai-gateway: {exc}", file=sys.stderr)
        return 2


def _workers_arg(value: str) -> int | str:
    if value == "auto":
        return value
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise argparse.ArgumentTypeError("a number from 1, or auto")


def run_worker(path: str, host: str, port: int, worker: WorkerIdentity) -> int:
    """One of several workers, started by the supervisor (which checked the config)."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"ai-gateway: invalid configuration: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.server.log_format, worker.index)
    try:
        _run(config.server.event_loop, serve(config, path, host, port, worker))
    except ConfigError as exc:
        print(f"ai-gateway: {exc}", file=sys.stderr)
        return 2
    return 0


def _read_key() -> str:
    """The key from standard input: asked for without echo at a terminal."""
    if sys.stdin.isatty():
        return getpass.getpass("API key (not shown): ").strip()
    return sys.stdin.readline().strip()


def hash_api_key(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def describe(config: GatewayConfig, demo_mode: bool) -> str:
    chain = config.chains[config.default_chain]
    mode = "demo mode (no provider has credentials)" if demo_mode else "live"
    return (
        f"config OK: {len(config.providers)} providers, {len(config.models)} models, "
        f"{len(config.chains)} chains; default chain '{config.default_chain}' "
        f"→ {' → '.join(t.model for t in chain.targets)}; {mode}; auth {config.auth.mode}; "
        f"listening on {config.server.host}:{config.server.port}"
    )


def serve_forever(
    config: GatewayConfig,
    path: str,
    host: str | None,
    port: int | None,
    workers: int | str | None = None,
) -> int:
    """Serve until SIGTERM: in this process, or with several workers under a supervisor."""
    configure_logging(config.server.log_format)
    host = host or config.server.host
    port = config.server.port if port is None else port
    count = resolve_count(config.server.workers if workers is None else workers)
    if count > 1:
        return supervise(config, path, host, port, count)
    _run(config.server.event_loop, serve(config, path, host, port))
    return 0


def _run(event_loop: str, main: Coroutine[Any, Any, None]) -> None:
    if event_loop == "uvloop":
        import uvloop

        uvloop.run(main)
    else:
        asyncio.run(main)


def configure_logging(log_format: str, worker: int | None = None) -> None:
    """Log lines to stderr; a worker's carry its index and pid."""
    handler = logging.StreamHandler()
    tag = "" if worker is None else " [worker %(worker)s pid %(process)d]"
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s %(levelname)s %(name)s{tag}: %(message)s")
        )
    if worker is not None:
        handler.addFilter(WorkerTag(worker))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def print_usage(url: str, day: str | None, tenant: str | None, as_json: bool) -> int:
    """`ai-gateway usage`: the admin usage report of a running gateway, as a table."""
    if problem := url_problem(url, "--url"):
        print(f"ai-gateway usage: {problem}", file=sys.stderr)
        return 2
    query = urllib.parse.urlencode({k: v for k, v in (("day", day), ("tenant", tenant)) if v})
    request = urllib.request.Request(f"{url.rstrip('/')}/admin/usage?{query}")
    request.add_header("Authorization", f"Bearer {os.environ.get('AI_GATEWAY_ADMIN_KEY', '')}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            report = json.load(response)
    except urllib.error.HTTPError as exc:
        print(
            f"ai-gateway usage: {exc.code} {exc.read().decode(errors='replace')}", file=sys.stderr
        )
        if exc.code in (401, 403):
            print(
                "ai-gateway usage: the report needs the gateway's admin key: "
                "export AI_GATEWAY_ADMIN_KEY=<admin.api_key of the gateway>",
                file=sys.stderr,
            )
        return 1
    except urllib.error.URLError as exc:
        print(f"ai-gateway usage: cannot reach {url} ({exc.reason})", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"usage on {report['day']} (UTC)")
    print(
        f"{'tenant':<20} {'model':<36} {'requests':>9} {'input':>10} {'output':>10} "
        f"{'cost USD':>10}"
    )
    for tenant_id, usage in report["tenants"].items():
        for model, m in usage["models"].items():
            print(
                f"{tenant_id:<20} {model:<36} {m['requests']:>9} "
                f"{m['input_tokens']:>10} {m['output_tokens']:>10} {_usd(m):>10}"
            )
    return 0


def _usd(entry: dict[str, Any]) -> str:
    """A report entry's cost, or "-" where its model has no price."""
    return f"{entry['cost_usd']:.4f}" if "cost_usd" in entry else "-"


def _config_path(given: str | None) -> str:
    """The config file named, else ./config.yaml, else the one packaged with the gateway
    (so that `ai-gateway serve` works anywhere, and says which file it read)."""
    named = given or os.environ.get("AI_GATEWAY_CONFIG")
    if named or Path(DEFAULT_CONFIG_PATH).exists():
        return named or DEFAULT_CONFIG_PATH
    packaged = str(resources.files("gateway") / "default_config.yaml")
    print(
        f"ai-gateway: no {DEFAULT_CONFIG_PATH} here and no AI_GATEWAY_CONFIG: using the "
        f"packaged default ({packaged}); copy it to {DEFAULT_CONFIG_PATH} to change it",
        file=sys.stderr,
    )
    return packaged


if __name__ == "__main__":
    sys.exit(main())
