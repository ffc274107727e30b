"""Child processes of the local stack: the broker, the S3 server, the services."""

import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

# Below Linux's ephemeral range (32768-60999): a port the kernel hands out for port 0 is
# also what every outgoing connection (database, broker clients) takes as its local port,
# so such a port could be taken between choosing it and a service binding it.
_SERVICE_PORTS = range(20_000, 32_000)


def free_port() -> int:
    """A TCP port nobody listens on right now, outside the ephemeral range."""
    for _ in range(200):
        port = random.choice(_SERVICE_PORTS)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 32000")


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    """Block until something accepts connections on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on port {port}") from None
            time.sleep(0.05)


def wait_for_http(
    url: str, timeout: float = 60.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Block until `url` answers 200 (and `process`, if given, is still alive)."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} is not ready")
        time.sleep(0.1)


class ChildProcess:
    """A subprocess with its output in a log file, stopped politely then firmly."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it (again), appending to its log."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.args, env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT
            )

    def signal(self, signum: int) -> None:
        """Send a signal (SIGSTOP/SIGCONT pause and resume it)."""
        assert self.process is not None
        self.process.send_signal(signum)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGCONT)  # a paused process cannot act on SIGTERM
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to clean up."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def tail(self, lines: int = 40) -> str:
        """The end of its log, for error messages."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def python_command(*args: str) -> list[str]:
    """Run something with this interpreter (the project's virtual environment)."""
    return [sys.executable, *args]
