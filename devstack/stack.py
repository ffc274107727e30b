"""The five services as uvicorn processes, wired to one broker and one PostgreSQL."""

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from devstack.processes import ChildProcess, free_port, python_command, wait_for_http

SERVICES = ("profiles", "matching", "sessions", "feedback", "gateway")
DEFAULT_PORTS = {
    "gateway": 8000,
    "profiles": 8001,
    "matching": 8002,
    "sessions": 8003,
    "feedback": 8004,
}

# Fast consumer-group joins on the embedded Tansu broker (~2 s instead of ~20 s). Apache
# Kafka refuses session timeouts under its group.min.session.timeout.ms (6000 by default),
# so these apply only when the stack runs its own embedded broker, and never override a
# value the user set in the environment.
FAST_GROUP_ENV = {
    "MENTORBUS_KAFKA_SESSION_TIMEOUT_MS": "3000",
    "MENTORBUS_KAFKA_HEARTBEAT_INTERVAL_MS": "300",
}

# Benchmarks measure throughput, not the production budgets: they lift the gateway's rate
# limits (services/gateway/settings.py) with this as `extra_env`.
UNLIMITED_RATES_ENV = {
    "MENTORBUS_RATE_LIMIT_REQUESTS": "0",
    "MENTORBUS_RATE_LIMIT_BULK": "0",
    "MENTORBUS_RATE_LIMIT_SCIM": "0",
    "MENTORBUS_RATE_LIMIT_RUNS": "0",
}


# How long a stopped service may take to finish requests in flight (then its consumer and
# relay as long again); ChildProcess.stop waits longer before it kills.
SHUTDOWN_GRACE_SECONDS = 5


def group_join_defaults(embedded_broker: bool) -> dict[str, str]:
    """The consumer-group settings the local run adds: fast joins on the embedded broker
    only, and only for variables the user has not set."""
    if not embedded_broker:
        return {}
    return {name: value for name, value in FAST_GROUP_ENV.items() if name not in os.environ}


@dataclass
class Stack:
    """All five services. `database_prefix` names their databases `<prefix>_<service>`."""

    bootstrap_servers: str
    admin_token: str
    log_dir: Path
    # Whether the broker is the embedded one (devstack's Tansu): only then fast joins.
    embedded_broker: bool = True
    database_prefix: str = "mentorbus"
    postgres_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432"
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    extra_env: dict[str, str] = field(default_factory=dict)
    # Shared by all five: the gateway signs the identity it passes, services verify it.
    identity_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    # The gateway's operator port for /metrics (never on its public port).
    metrics_port: int = 8009
    processes: dict[str, ChildProcess] = field(default_factory=dict)

    @classmethod
    def on_free_ports(cls, **kwargs: object) -> "Stack":
        """A stack whose services listen on ports nobody uses (for tests)."""
        return cls(
            ports={name: free_port() for name in SERVICES},
            metrics_port=free_port(),
            **kwargs,  # type: ignore[arg-type]
        )

    def url(self, service: str = "gateway") -> str:
        """Base URL of a service."""
        return f"http://127.0.0.1:{self.ports[service]}"

    def database_url(self, service: str) -> str:
        """The database a service owns."""
        return f"{self.postgres_url}/{self.database_prefix}_{service}"

    def env(self, service: str) -> dict[str, str]:
        """The environment a service runs with."""
        env = {
            **group_join_defaults(self.embedded_broker),
            "MENTORBUS_SHUTDOWN_GRACE_SECONDS": str(SHUTDOWN_GRACE_SECONDS),
            "MENTORBUS_SERVICE_NAME": service,
            "MENTORBUS_DATABASE_URL": self.database_url(service),
            "MENTORBUS_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "MENTORBUS_ADMIN_TOKEN": self.admin_token,
            "MENTORBUS_IDENTITY_SECRET": self.identity_secret,
            "MENTORBUS_METRICS_PORT": str(self.metrics_port) if service == "gateway" else "0",
            **{f"MENTORBUS_{name.upper()}_URL": self.url(name) for name in SERVICES},
            **self.extra_env,
        }
        return env

    def start(
        self, timeout: float = 90.0, services: tuple[str, ...] = SERVICES, wait: bool = True
    ) -> None:
        """Start `services` (all five by default) and, if `wait`, wait until each answers
        /readyz."""
        for service in services:
            process = ChildProcess(
                service,
                python_command(
                    "-m", "uvicorn", f"services.{service}.app:app", "--host", "127.0.0.1",
                    "--port", str(self.ports[service]), "--no-access-log",
                    "--timeout-graceful-shutdown", self.env(service).get(
                        "MENTORBUS_SHUTDOWN_GRACE_SECONDS", str(SHUTDOWN_GRACE_SECONDS)),
                ),
                self.env(service),
                self.log_dir,
            )  # fmt: skip
            process.start()
            self.processes[service] = process
        if not wait:
            return
        for service, process in self.processes.items():
            try:
                wait_for_http(f"{self.url(service)}/readyz", timeout, process.process)
            except (TimeoutError, RuntimeError) as exc:
                raise RuntimeError(f"{service} did not start: {exc}\n{process.tail()}") from exc

    def stop(self) -> None:
        """Stop every service."""
        for process in self.processes.values():
            process.stop()
