"""Ways to break what pesan depends on, each undone by the test that uses it.

- `TcpProxy`: a port in front of PostgreSQL that the test can cut (connections refused) and
  restore, without touching the shared server.
- `SmallDisk`: a tiny tmpfs for an SQLite data directory, filled up and emptied again.
"""

import contextlib
import os
import select
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import IN_CI


class TcpProxy:
    """127.0.0.1:<port> forwarding to `target`; `cut()` refuses and drops every connection."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener: socket.socket | None = None
        self._port = 0
        self._links: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.restore()

    @property
    def port(self) -> int:
        return self._port

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self._port))
        listener.listen(64)
        self._port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            links, self._links = self._links, set()
        for link in links:
            with contextlib.suppress(OSError):
                link.shutdown(socket.SHUT_RDWR)
            link.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._links |= {client, upstream}
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 1.0)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (b if sock is a else a).sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.close()
            with self._lock:
                self._links -= {a, b}


class SmallDisk:
    """A 16 MiB tmpfs (we run as root in the test environment); `fill()` leaves no room."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="pesan-disk-"))
        self.filler = self.path / "filler"
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(self.path)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            self.path.rmdir()
            message = f"cannot mount a small tmpfs here: {done.stderr.strip()}"
            if IN_CI and os.geteuid() == 0:
                pytest.fail(message)
            pytest.skip(message)

    def fill(self) -> None:
        with self.filler.open("wb", buffering=0) as f:
            chunk = b"\0" * 65536
            with contextlib.suppress(OSError):
                while True:
                    f.write(chunk)

    def empty(self) -> None:
        self.filler.unlink(missing_ok=True)

    def remove(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True)
        with contextlib.suppress(OSError):
            self.path.rmdir()


@contextlib.contextmanager
def small_disk() -> Iterator[SmallDisk]:
    disk = SmallDisk()
    try:
        yield disk
    finally:
        disk.remove()
