"""A real server subprocess on 127.0.0.1 for a test: a free port, a wait for its health URL, always stopped
(imported by name: tests/ has no packages)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def local_server(cmd: list[str], env: dict[str, str], health_url: str, log_path: Path,
                 timeout_s: float) -> Iterator[None]:
    """Run `cmd` (output to `log_path`) until `health_url` answers 200, yield, then stop it; a server that
    exits or does not come up in `timeout_s` fails the test with the end of its log."""
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
                try:
                    if httpx.get(health_url, timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"server did not start in {timeout_s:.0f} s:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.5)
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
