"""`python -m devstack`: the whole system on this machine, until Ctrl-C."""

import os
import secrets
import signal
import sys
import tempfile
import threading
from pathlib import Path

from devstack.broker import Broker
from devstack.stack import SERVICES, Stack


def main() -> int:
    """Start the broker (unless one is named) and the five services; print where they are."""
    log_dir = Path(os.environ.get("MENTORBUS_LOG_DIR", Path(tempfile.gettempdir()) / "mentorbus"))
    admin_token = os.environ.get("MENTORBUS_ADMIN_TOKEN") or secrets.token_urlsafe(32)
    bootstrap = os.environ.get("MENTORBUS_KAFKA_BOOTSTRAP_SERVERS")
    broker = None
    if not bootstrap:
        broker = Broker(log_dir, port=9092)
        print("starting Kafka-protocol broker (Tansu) on 127.0.0.1:9092 ...", flush=True)
        broker.start()
        bootstrap = broker.bootstrap_servers
    stack = Stack(
        bootstrap_servers=bootstrap,
        admin_token=admin_token,
        log_dir=log_dir,
        embedded_broker=broker is not None,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        print("starting services:", ", ".join(SERVICES), "...", flush=True)
        stack.start()
        print(
            f"\nMentorbus is up.\n"
            f"  API:          {stack.url()}/v1  (ready: {stack.url()}/readyz)\n"
            f"  admin token:  {admin_token}\n"
            f"  metrics:      http://127.0.0.1:{stack.metrics_port}/metrics (gateway, operators)\n"
            f"  broker:       {bootstrap}\n"
            f"  logs:         {log_dir}\n"
            f"Ctrl-C stops everything.",
            flush=True,
        )
        stop.wait()
    except KeyboardInterrupt:
        pass
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        stack.stop()
        if broker:
            broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
