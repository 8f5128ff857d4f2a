"""Two versions of the gateway side by side: a commit against the working tree.

    python -m bench.compare HEAD~3                       # 50-chunk streams at C = 100
    python -m bench.compare main --chunks 1 --gap-ms 0 -c 1 -n 1500

This VM's speed drifts by half from hour to hour, so figures from two runs of
`bench.run` an hour apart do not tell a 10 % change from the weather.  Here both
gateways run at once, in front of the same fake upstream and Redis, with the same config,
and are measured in turn, the order swapped every round, each beside a direct run of the
same minutes; the means of the rounds compare.  The commit is checked out in a temporary
`git worktree`, and its gateway process runs from there (the directory a module runs from
comes first on its path), so it must need no package the working tree's install lacks.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bench.run import (
    CHAT,
    KEY,
    MESSAGES,
    REPO,
    Bench,
    gateway_config,
    load,
    measure,
    untraced_env,
)


@contextmanager
def worktree(revision: str, repository: Path = REPO) -> Iterator[Path]:
    """`revision` checked out in a temporary directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="aigw-compare-") as tmp:
        path = Path(tmp) / "tree"
        git = ["git", "-C", str(repository)]
        subprocess.run([*git, "worktree", "add", "--detach", str(path), revision], check=True)
        try:
            yield path
        finally:
            subprocess.run([*git, "worktree", "remove", "--force", str(path)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("revision", help="the commit to compare the working tree with")
    parser.add_argument("-c", "--concurrency", type=int, default=100)
    parser.add_argument("-n", "--streams", type=int, default=1000, help="per measurement")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--chunks", type=int, default=50)
    parser.add_argument("--gap-ms", type=float, default=10)
    args = parser.parse_args()
    spread_s = args.chunks * args.gap_ms / 1000
    c, n = args.concurrency, args.streams

    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="aigw-bench-") as tmp:
        base_tree = stack.enter_context(worktree(args.revision))
        bench = Bench(stack, Path(tmp), args.chunks, args.gap_ms)
        redis_port = bench.redis()
        fake = bench.fake()
        config = gateway_config(redis_port, fake, args.gap_ms, args.chunks)
        gateways = {
            args.revision: bench.gateway("gw-base", config, untraced_env(), base_tree),
            "working tree": bench.gateway("gw-new", config, untraced_env()),
        }
        for server in gateways.values():
            load(f"{server.url}{CHAT}", 20, 300)  # warm-up
        figures: dict[str, list[tuple[float, float, float]]] = {name: [] for name in gateways}
        print(f"C={c}, {n} streams of {args.chunks} chunks {args.gap_ms:g} ms apart per turn")
        for round_ in range(args.rounds):
            direct = measure(fake, MESSAGES, c, n, None, spread_s)
            order = list(gateways.items())
            for name, server in order if round_ % 2 == 0 else reversed(order):
                r = measure(server, CHAT, c, n, KEY, spread_s)
                p50 = r["ttft_p50_ms"] - direct["ttft_p50_ms"]
                p99 = r["ttft_p99_ms"] - direct["ttft_p99_ms"]
                figures[name].append((r["server_cpu_ms"], p50, p99))
                print(
                    f"  round {round_ + 1} {name:<14} CPU/stream {r['server_cpu_ms']:6.2f} ms"
                    f"  added TTFT p50 {p50:7.2f}  p99 {p99:7.2f}  failed {r['failed']}"
                )
        print("mean of the rounds")
        for name, rows in figures.items():
            cpu, p50, p99 = (sum(row[i] for row in rows) / len(rows) for i in range(3))
            print(
                f"  {name:<16} CPU/stream {cpu:6.2f} ms  added TTFT p50 {p50:7.2f}  p99 {p99:7.2f}"
            )


if __name__ == "__main__":
    main()
