"""Real `redis-server` processes for tests, on free loopback ports in temporary folders.

Never the developer's own Redis: every server here is started by the fixture and stopped
after it, with persistence off.  With CI=true a missing binary fails the run instead of
skipping, since the Redis tests must run there.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

import pytest


def require_redis_binaries() -> None:
    missing = [b for b in ("redis-server", "redis-cli") if shutil.which(b) is None]
    if not missing:
        return
    message = f"{', '.join(missing)} not installed (apt-get install -y redis-server)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def free_port(cluster_bus: bool = False) -> int:
    """A free loopback port; for cluster nodes also port + 10000 (the bus) must be free.

    Cluster ports stay below the kernel's ephemeral range (32768 and up), so that no
    outgoing connection can take a bus port between this check and the server's start.
    """
    for _ in range(200):
        port = random.randint(20000, 22700) if cluster_bus else 0
        try:
            with socket.socket() as sock, socket.socket() as bus:
                sock.bind(("127.0.0.1", port))
                if cluster_bus:
                    bus.bind(("127.0.0.1", port + 10000))
                return int(sock.getsockname()[1])
        except OSError:
            continue
    raise RuntimeError("no free port")


@dataclass
class RedisServer:
    port: int
    directory: str
    extra: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self.directory,
            *self.extra,
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_until_ready()
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def cli(self, *args: str) -> str:
        out = subprocess.run(
            ["redis-cli", "-p", str(self.port), *args], capture_output=True, check=True, timeout=30
        )
        return out.stdout.decode().strip()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.cli("PING") == "PONG":
                    return
            except subprocess.CalledProcessError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")


def start_server(extra: list[str] | None = None, cluster_bus: bool = False) -> RedisServer:
    require_redis_binaries()
    directory = tempfile.mkdtemp(prefix="aigw-redis-")
    return RedisServer(free_port(cluster_bus), directory, extra or []).start()


@dataclass
class RedisClusterServers:
    nodes: list[RedisServer]

    @property
    def url(self) -> str:
        return self.nodes[0].url.removesuffix("/0")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def start_cluster(masters: int = 3) -> RedisClusterServers:
    nodes = [
        start_server(
            ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"], cluster_bus=True
        )
        for _ in range(masters)
    ]
    addresses = [f"127.0.0.1:{n.port}" for n in nodes]
    subprocess.run(
        [
            "redis-cli",
            "--cluster",
            "create",
            *addresses,
            "--cluster-replicas",
            "0",
            "--cluster-yes",
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if all("cluster_state:ok" in n.cli("CLUSTER", "INFO") for n in nodes):
            return RedisClusterServers(nodes)
        time.sleep(0.1)
    raise RuntimeError("redis cluster did not become ready")
