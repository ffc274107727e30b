"""The dead-letter desk: see what a consumer group dead-lettered, and replay chosen
records to their original topic once the cause is fixed.

    python -m shared.dlq list --group mentorbus.matching
    python -m shared.dlq replay --group mentorbus.matching --position 0:12 --position 2:3
    python -m shared.dlq replay --group mentorbus.matching --event-id <uuid> [--dry-run]
    python -m shared.dlq replay --group mentorbus.matching --all

A replayed record is the original bytes under the original key, so the event keeps its id:
every consumer group that already handled it skips it (inbox), and only the group that
dead-lettered it acts on it. Reads the broker from `MENTORBUS_KAFKA_BOOTSTRAP_SERVERS`
(or `--bootstrap-servers`). The dead-letter topic itself is left as is (an audit trail).
"""

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from shared.events.topics import dead_letter_topic
from shared.kafka import EventPublisher, OutgoingRecord, StoredRecord, read_whole_topic
from shared.settings import ServiceSettings


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead-lettered record: where it sits in the DLQ, where it came from, why."""

    position: str  # "<dlq partition>:<dlq offset>"
    topic: str
    partition: int
    offset: int
    key: str
    value: str
    error: str
    event_id: str | None
    event_type: str | None

    def as_json(self) -> dict[str, Any]:
        """The listing as JSON (without the raw value)."""
        return {
            "position": self.position,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "error": self.error,
        }


def _dead_letter(record: StoredRecord) -> DeadLetter:
    position = f"{record.partition}:{record.offset}"
    try:
        body = json.loads(record.value or b"{}")
        raw = str(body.get("value", ""))
    except ValueError:
        body, raw = {}, ""
    event_id = event_type = None
    try:
        event = json.loads(raw)
        if isinstance(event, dict):
            event_id = str(event["id"]) if "id" in event else None
            event_type = str(event["type"]) if "type" in event else None
    except ValueError:
        pass  # the record was not even JSON: list it, it may still be replayed after a fix
    return DeadLetter(
        position=position,
        topic=str(body.get("topic", "")),
        partition=int(body.get("partition", -1)),
        offset=int(body.get("offset", -1)),
        key=str(body.get("key", "")),
        value=raw,
        error=str(body.get("error", "")),
        event_id=event_id,
        event_type=event_type,
    )


def list_dead_letters(settings: ServiceSettings, group: str) -> list[DeadLetter]:
    """Everything `group` has dead-lettered, oldest first per DLQ partition."""
    return [_dead_letter(r) for r in read_whole_topic(settings, dead_letter_topic(group))]


def choose(
    letters: Sequence[DeadLetter],
    *,
    positions: Sequence[str] = (),
    event_ids: Sequence[str] = (),
    everything: bool = False,
) -> list[DeadLetter]:
    """The dead letters picked by DLQ position or event id (or all of them)."""
    if everything:
        return list(letters)
    wanted_positions, wanted_ids = set(positions), set(event_ids)
    unknown = wanted_positions - {d.position for d in letters}
    if unknown:
        raise LookupError(f"no dead letter at {', '.join(sorted(unknown))}")
    return [d for d in letters if d.position in wanted_positions or d.event_id in wanted_ids]


def replay(settings: ServiceSettings, letters: Sequence[DeadLetter]) -> int:
    """Publish each dead letter's original bytes under its key to its original topic."""
    publisher = EventPublisher(settings)
    try:
        publisher.publish_batch(
            OutgoingRecord(topic=d.topic, key=d.key, value=d.value.encode()) for d in letters
        )
    finally:
        publisher.close()
    return len(letters)


def _print_table(letters: Sequence[DeadLetter], out: TextIO) -> None:
    out.write("POSITION\tTOPIC\tPARTITION\tOFFSET\tEVENT_ID\tEVENT_TYPE\tERROR\n")
    for d in letters:
        out.write(
            f"{d.position}\t{d.topic}\t{d.partition}\t{d.offset}\t{d.event_id or '-'}\t"
            f"{d.event_type or '-'}\t{d.error}\n"
        )


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    """The command line: `list` and `replay`."""
    parser = argparse.ArgumentParser(
        prog="python -m shared.dlq", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("list", "replay"):
        command = commands.add_parser(name)
        command.add_argument(
            "--group", required=True, help="consumer group, e.g. mentorbus.matching"
        )
        command.add_argument(
            "--bootstrap-servers", help="default: MENTORBUS_KAFKA_BOOTSTRAP_SERVERS"
        )
        if name == "list":
            command.add_argument("--json", action="store_true", help="one JSON object per line")
        else:
            command.add_argument("--position", action="append", default=[], help="P:O (repeatable)")
            command.add_argument("--event-id", action="append", default=[], help="(repeatable)")
            command.add_argument("--all", action="store_true", help="every dead letter")
            command.add_argument("--dry-run", action="store_true", help="show, do not send")
    args = parser.parse_args(argv)
    overrides = {"service_name": "dlq"}
    if args.bootstrap_servers:
        overrides["kafka_bootstrap_servers"] = args.bootstrap_servers
    settings = ServiceSettings(**overrides)  # type: ignore[arg-type]
    letters = list_dead_letters(settings, args.group)
    if args.command == "list":
        if args.json:
            for d in letters:
                out.write(json.dumps(d.as_json()) + "\n")
        else:
            _print_table(letters, out)
        return 0
    if not (args.position or args.event_id or args.all):
        parser.error("replay needs --position, --event-id or --all")
    try:
        chosen = choose(
            letters, positions=args.position, event_ids=args.event_id, everything=args.all
        )
    except LookupError as exc:
        print(exc, file=sys.stderr)
        return 2
    _print_table(chosen, out)
    if args.dry_run:
        out.write(f"dry run: {len(chosen)} record(s) would be replayed\n")
        return 0
    out.write(f"replayed {replay(settings, chosen)} record(s)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
