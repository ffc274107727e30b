"""Where a benchmark's CPU went: the CPU time of named processes (with their children),
of every PostgreSQL process and of the whole machine, read from /proc (Linux). On a
machine whose few cores the load generator, the services, the broker and PostgreSQL
share, this says what a throughput figure is made of."""

import os
from dataclasses import dataclass, field
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        # The command name, in parentheses, may hold spaces: split after it.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _parents() -> dict[int, int]:
    """Every process's parent."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))):
            parents[int(entry.name)] = int(fields[1])
    return parents


def process_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (0 once it is gone)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / _TICK if fields else 0.0


def tree_seconds(pid: int) -> float:
    """CPU time of a process and of its living descendants (a server's workers)."""
    parents = _parents()
    tree, grew = {pid}, True
    while grew:
        children = {p for p, parent in parents.items() if parent in tree} - tree
        tree |= children
        grew = bool(children)
    return sum(process_seconds(p) for p in tree)


def postgres_seconds() -> float:
    """CPU time of every PostgreSQL process on the machine (servers and backends)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == "postgres":
                total += process_seconds(int(entry.name))
        except OSError:
            continue
    return total


def machine_busy_seconds() -> float:
    """CPU time the machine has spent busy, over all its cores (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle and iowait
    return (sum(values[:8]) - idle) / _TICK


_OWN = ("postgres", "rest", "machine")


@dataclass
class CpuMeter:
    """CPU seconds spent between `start()` and `stop()` by each named process tree, by
    PostgreSQL, and by the machine (the rest: everything else running)."""

    pids: dict[str, int]
    spent: dict[str, float] = field(default_factory=dict)
    _start: dict[str, float] = field(default_factory=dict)

    def _now(self) -> dict[str, float]:
        now = {name: tree_seconds(pid) for name, pid in self.pids.items()}
        now["postgres"] = postgres_seconds()
        now["machine"] = machine_busy_seconds()
        return now

    def start(self) -> None:
        """Take the starting readings."""
        self._start = self._now()

    def stop(self) -> dict[str, float]:
        """CPU seconds since `start()`, per name, plus "postgres", "rest" and "machine"."""
        now = self._now()
        self.spent = {name: now[name] - self._start[name] for name in now}
        named = sum(v for k, v in self.spent.items() if k != "machine")
        self.spent["rest"] = max(self.spent["machine"] - named, 0.0)
        return self.spent

    def attribute(self, name: str, seconds: float) -> None:
        """Count `seconds` (of a process that started after `start()`) under `name`
        instead of the rest."""
        self.spent[name] = seconds
        self.spent["rest"] = max(self.spent["rest"] - seconds, 0.0)

    def per_unit(self, units: float, scale: float = 1e6, unit: str = "us") -> str:
        """The spending per unit of work (by default in microseconds), one line."""
        extra = [n for n in self.spent if n not in self.pids and n not in _OWN]
        order = [*self.pids, *extra, "postgres", "rest", "machine"]
        return "  ".join(f"{n} {scale * self.spent[n] / units:,.0f}" for n in order) + f" ({unit})"
