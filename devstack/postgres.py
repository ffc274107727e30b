"""A private PostgreSQL cluster for tests that must stop the database server itself (the
machine's shared one on 5432 keeps running for everyone else): initdb in a temporary
directory, trust authentication, loopback only, on a free port, no fsync."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from devstack.processes import free_port, wait_for_port

# Speed over durability: the cluster lives for one test. A clean stop (`pg_ctl stop -m
# fast`) still checkpoints, so a restart finds every committed row.
_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "'64MB'",
}


def postgres_bin_dir() -> Path:
    """Where initdb and pg_ctl are: next to `pg_ctl` on the PATH, else the newest
    Debian-style /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name)
    )
    if not versions:
        raise RuntimeError("no PostgreSQL binaries (pg_ctl) found")
    return versions[-1].parent


class PostgresCluster:
    """One PostgreSQL server on 127.0.0.1:`port` with a data directory of its own.

    PostgreSQL refuses to run as root: as root, initdb and pg_ctl run as the `postgres`
    OS user (who then owns the data directory)."""

    def __init__(self, port: int | None = None, user: str = "postgres") -> None:
        self.port = port or free_port()
        self._bin = postgres_bin_dir()
        self._as = ["runuser", "-u", user, "--"] if os.geteuid() == 0 else []
        self._owner = user if os.geteuid() == 0 else None
        self._root = Path(tempfile.mkdtemp(prefix="mentorbus-pg-"))
        self.data_dir = self._root / "data"
        self.log_path = self._root / "postgres.log"
        self._initialized = False

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the server, without a database (as `Stack.postgres_url`)."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}"

    def _run(self, *args: str, timeout: float = 60.0) -> None:
        result = subprocess.run(
            [*self._as, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stdout}{result.stderr}\n{self.tail()}")

    def _init(self) -> None:
        if self._owner:
            shutil.chown(self._root, self._owner)
        self._run(
            str(self._bin / "initdb"), "-D", str(self.data_dir), "-U", "postgres",
            "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        settings = {**_SETTINGS, "port": str(self.port)}
        # The socket beside the data: /var/run/postgresql belongs to the machine's server.
        settings["unix_socket_directories"] = f"'{self._root}'"
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        self._initialized = True

    def start(self, timeout: float = 30.0) -> None:
        """Create the cluster on first use, start the server and wait until it accepts
        connections."""
        if not self._initialized:
            self._init()
        self._run(
            str(self._bin / "pg_ctl"), "start", "-D", str(self.data_dir), "-l",
            str(self.log_path), "-w", "-t", str(int(timeout)),
        )  # fmt: skip
        wait_for_port(self.port, timeout)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` (open transactions are rolled back and connections
        closed), `immediate` (a crash: recovery on the next start) or `smart`."""
        self._run(str(self._bin / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", mode, "-w")

    def running(self) -> bool:
        """Whether the server process is up."""
        status = subprocess.run(
            [*self._as, str(self._bin / "pg_ctl"), "status", "-D", str(self.data_dir)],
            capture_output=True,
            check=False,
        )
        return status.returncode == 0

    def restart(self, mode: str = "fast") -> None:
        """Stop, then start again on the same data."""
        self.stop(mode)
        self.start()

    def destroy(self) -> None:
        """Stop the server if it runs and delete its data."""
        if self._initialized and self.running():
            self.stop("immediate")
        shutil.rmtree(self._root, ignore_errors=True)

    def tail(self, lines: int = 40) -> str:
        """The end of the server's log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])
