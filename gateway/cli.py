"""`ai-gateway`: serve, check-config, hash-key."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import os
import sys
from collections.abc import Sequence

from aiohttp import web

from gateway.app import create_app
from gateway.build import check_providers
from gateway.config import DEFAULT_CONFIG_PATH, ConfigError, GatewayConfig, load_config


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ai-gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument(
        "--config", help="config file (default: $AI_GATEWAY_CONFIG or ./config.yaml)"
    )
    serve.add_argument("--host", help="override server.host")
    serve.add_argument("--port", type=int, help="override server.port")

    check = commands.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("path", nargs="?", help="config file (default as for serve)")

    hash_key = commands.add_parser("hash-key", help="print the sha256 form of an API key")
    hash_key.add_argument("key", nargs="?", help="the key (read from stdin when omitted)")

    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "hash-key":
        key = args.key if args.key is not None else sys.stdin.readline().strip()
        print(hash_api_key(key))
        return 0
    try:
        config = load_config(_config_path(args.config if args.command == "serve" else args.path))
        asyncio.run(check_providers(config))
    except ConfigError as exc:
        print(f"ai-gateway: invalid configuration: {exc}", file=sys.stderr)
        return 2
    if args.command == "check-config":
        print(describe(config))
        return 0
    serve_forever(config, host=args.host, port=args.port)
    return 0


def hash_api_key(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def describe(config: GatewayConfig) -> str:
    chain = config.chains[config.default_chain]
    return (
        f"config OK: {len(config.providers)} providers, {len(config.models)} models, "
        f"{len(config.chains)} chains; default chain '{config.default_chain}' "
        f"→ {' → '.join(t.model for t in chain.target_configs())}"
    )


def serve_forever(config: GatewayConfig, host: str | None, port: int | None) -> None:
    host = host or config.server.host
    port = config.server.port if port is None else port
    asyncio.run(_serve(create_app(config), host, port))


async def _serve(app: web.Application, host: str, port: int) -> None:
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        logging.getLogger("gateway").info("serving on http://%s:%d", host, port)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def _config_path(given: str | None) -> str:
    return given or os.environ.get("AI_GATEWAY_CONFIG") or DEFAULT_CONFIG_PATH


if __name__ == "__main__":
    sys.exit(main())
