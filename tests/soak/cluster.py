"""A real Redis Sentinel cluster on loopback: a master, one replica and three sentinels.

Every process is a real ``redis-server`` on a free 127.0.0.1 port, in a private directory
(sentinels rewrite their config file). ``SentinelCluster.fail_over()`` makes a real failure:
the replica is frozen (SIGSTOP) so it falls behind, the master is SIGKILLed, the replica thawed;
the sentinels notice the master is down (``down-after-milliseconds``), agree (quorum 2) and
promote the replica, losing whatever it had not received. The old master is then started again,
empty, on its port, and the sentinels turn it into the new master's replica.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

DOWN_AFTER_MS = 1500
FAILOVER_TIMEOUT_MS = 10_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, *, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except redis.RedisError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Server:
    """One redis-server (data node or sentinel) on a loopback port; stopped and started for real."""

    workdir: Path
    port: int = field(default_factory=free_port)
    args: tuple[str, ...] = ()
    sentinel: bool = False
    process: subprocess.Popen | None = None

    def start(self, *extra: str) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / "server.log").open("ab")
        if self.sentinel:
            cmd = ["redis-server", str(self.workdir / "sentinel.conf"), "--sentinel"]
        else:
            cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                   "no", "--dir", str(self.workdir), *self.args, *extra]
        self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        wait_until(lambda: self.client().ping(), timeout=15, what=f"redis-server on port {self.port}")

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, db=db, socket_timeout=2, socket_connect_timeout=2)

    def kill(self) -> None:
        """SIGKILL: no shutdown, nothing saved (there is no persistence), replicas told nothing."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def freeze(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)  # a frozen process cannot act on SIGTERM
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@dataclass
class FailoverReport:
    old_master: int
    new_master: int
    lost_bytes: int  # replication stream the promoted replica never got (master offset - replica's)
    seconds: float  # from the SIGKILL to the sentinels naming the new master

    def __str__(self) -> str:
        return (f"master 127.0.0.1:{self.old_master} SIGKILLed, replica 127.0.0.1:{self.new_master} promoted in "
                f"{self.seconds:.1f} s; replication stream lost: {self.lost_bytes} bytes")


class SentinelCluster:
    """Master + replica + three sentinels (quorum 2) monitoring ``master_name``, all on loopback."""

    def __init__(self, workdir: Path, master_name: str) -> None:
        self.master_name = master_name
        self.master = Server(workdir / "node-a")
        self.replica = Server(workdir / "node-b")
        self.sentinels = [Server(workdir / f"sentinel-{n}", sentinel=True) for n in range(3)]

    @property
    def sentinel_addresses(self) -> str:
        """``REDIS_SENTINELS`` for the project's settings."""
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    def start(self) -> None:
        self.master.start()
        self.replica.start("--replicaof", "127.0.0.1", str(self.master.port))
        wait_until(lambda: self._link_up(self.replica), timeout=30, what="the replica to sync")
        for sentinel in self.sentinels:
            sentinel.workdir.mkdir(parents=True, exist_ok=True)
            (sentinel.workdir / "sentinel.conf").write_text(
                f"port {sentinel.port}\nbind 127.0.0.1\ndaemonize no\ndir {sentinel.workdir}\n"
                f"sentinel monitor {self.master_name} 127.0.0.1 {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {self.master_name} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {self.master_name} {FAILOVER_TIMEOUT_MS}\n"
                f"sentinel parallel-syncs {self.master_name} 1\n"
            )
            sentinel.start()
        # Every sentinel knows the replica and the two other sentinels before anything can fail.
        for sentinel in self.sentinels:
            wait_until(lambda s=sentinel: self._sentinel_sees_all(s), timeout=30,
                       what=f"sentinel {sentinel.port} to see the replica and its peers")

    def _link_up(self, server: Server) -> bool:
        info = server.client().info("replication")
        return info.get("role") == "slave" and info.get("master_link_status") == "up"

    def _sentinel_sees_all(self, sentinel: Server) -> bool:
        client = sentinel.client()
        master = client.sentinel_master(self.master_name)
        return int(master["num-slaves"]) >= 1 and int(master["num-other-sentinels"]) >= 2

    def master_port(self) -> int:
        """The master's port as the sentinels (the first one answering) name it."""
        for sentinel in self.sentinels:
            try:
                return int(sentinel.client().sentinel_get_master_addr_by_name(self.master_name)[1])
            except (redis.RedisError, TypeError):
                continue
        raise RuntimeError("no sentinel answered")

    def current(self) -> tuple[Server, Server]:
        """(master, replica) by the sentinels' word."""
        port = self.master_port()
        return (self.master, self.replica) if port == self.master.port else (self.replica, self.master)

    def fail_over(self, *, freeze_seconds: float = 1.0, backlog_bytes: int = 32 << 20) -> FailoverReport:
        """Kill the master the hard way while the replica lags; return once the replica is master.

        The replica is frozen, then the master writes ``backlog_bytes`` of filler (a key in DB 0,
        which the project does not use): that fills the socket buffers between them, so what the
        master takes during the next ``freeze_seconds`` (the jobs in flight) waits in the master's
        own output buffer for the replica and dies with it. A real replica falls that far behind
        after a large write or a slow network; here it is certain instead of likely.
        """
        master, replica = self.current()
        replica.freeze()  # it stops reading the replication stream: the master runs ahead of it
        if backlog_bytes:
            master.client().set("soak:replication-backlog", b"x" * backlog_bytes)
        time.sleep(freeze_seconds)
        master_offset = int(master.client().info("replication")["master_repl_offset"])
        master.kill()
        killed_at = time.monotonic()
        replica.thaw()
        wait_until(lambda: self.master_port() == replica.port, timeout=60, what="the sentinels to promote the replica")
        wait_until(lambda: replica.client().info("replication")["role"] == "master", timeout=30,
                   what="the promoted replica to act as master")
        seconds = time.monotonic() - killed_at
        replica_offset = int(replica.client().info("replication")["master_repl_offset"])
        return FailoverReport(master.port, replica.port, max(0, master_offset - replica_offset), seconds)

    def restore_replica(self) -> None:
        """Start the killed server again (empty); the sentinels make it the new master's replica."""
        master, old = self.current()
        old.start()
        wait_until(lambda: self._link_up(old), timeout=90, what="the old master to rejoin as a replica")
        wait_until(lambda: any(s["state"] == "online" for s in self._replicas(master)), timeout=30,
                   what="the new master to see its replica online")

    def _replicas(self, master: Server) -> list[dict]:
        info = master.client().info("replication")
        return [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]

    def stop(self) -> None:
        for server in (*self.sentinels, self.replica, self.master):
            server.stop()
