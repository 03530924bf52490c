"""The `pesan` command run as an operator runs it: a subprocess configured by PESAN_* variables.

Every process gets a timeout, listens on 127.0.0.1 on a free port, and is stopped by its PID.
"""

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import httpx
import psycopg
import pytest

PESAN = str(Path(sys.executable).with_name("pesan")) if sys.executable else "pesan"
if not Path(PESAN).exists():
    PESAN = shutil.which("pesan") or "pesan"

COMMAND_TIMEOUT = 60
OPERATOR_TOKEN = "operator-token"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
READY_DEADLINE = 20.0


def pesan_env(*, database_url: str | None = None, data_dir: Path | None = None) -> dict[str, str]:
    """This process's environment without any PESAN_* setting, plus the given database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PESAN_")}
    env.update(
        PESAN_ARGON2_TIME_COST="1",
        PESAN_ARGON2_MEMORY_KIB="64",
        PESAN_LOG_FORMAT="text",
        PESAN_METRICS_TOKEN=OPERATOR_TOKEN,  # readyz shows its checks to the operator
        PESAN_LIMITS_ENABLED="false",
    )
    if database_url is not None:
        env["PESAN_DATABASE_URL"] = database_url
    if data_dir is not None:
        env["PESAN_DATA_DIR"] = str(data_dir)
    return env


def run_pesan(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = COMMAND_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PESAN, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`pesan serve` on a free port; always stopped by PID, whatever happened."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = ""  # what it wrote to stderr, once stopped
        self.process = subprocess.Popen(
            [PESAN, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_ready(self, deadline: float = READY_DEADLINE) -> httpx.Response:
        """Poll /readyz until it answers 200; fail with the server's output if it never does."""
        end = time.monotonic() + deadline
        last: str = "no answer"
        while time.monotonic() < end:
            if self.process.poll() is not None:
                _, err = self.process.communicate(timeout=5)
                pytest.fail(f"pesan serve exited with {self.process.returncode}: {err}")
            try:
                response = httpx.get(f"{self.url}/readyz", headers=OPERATOR, timeout=2)
            except httpx.HTTPError as exc:
                last = repr(exc)
            else:
                if response.status_code == 200:
                    return response
                last = f"{response.status_code} {response.text}"
            time.sleep(0.2)
        pytest.fail(f"pesan serve was not ready within {deadline}s: {last}")

    def exit_by_itself(self, timeout: float = 30) -> tuple[int, str]:
        """Wait for a server that should refuse to start; its exit code and stderr."""
        try:
            _, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            pytest.fail(f"pesan serve was still running after {timeout}s; it should have refused")
        return self.process.returncode, err

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None and not stream.closed:
                if stream is self.process.stderr:
                    self.log += stream.read()
                stream.close()


@pytest.fixture
def start_server() -> Iterator[Callable[[dict[str, str], Path], Server]]:
    """Start `pesan serve`; every server started is stopped by PID when the test ends."""
    servers: list[Server] = []

    def start(env: dict[str, str], cwd: Path) -> Server:
        server = Server(env, cwd)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def drop_table(database_url: str, table: str) -> None:
    """Drop a table by hand, the way the system pesan replaces lost its `messages`."""
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[1]
        with closing(sqlite3.connect(path)) as conn:
            conn.execute("PRAGMA foreign_keys=OFF")
            conn.execute(f"DROP TABLE {table}")
            conn.commit()
        return
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE {table} CASCADE")
