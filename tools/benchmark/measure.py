"""Wall time and peak memory of one command, and two commands measured in turns.

Absolute times drift on a shared machine, so a figure is always a ratio to a floor taken
in the same run: program and floor alternate (A B A B ...) and each ratio is one program
run over the floor run beside it, so a burst of load elsewhere moves both sides of a pair.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

WATCH_INTERVAL_SECONDS = 0.05


class CommandFailed(RuntimeError):
    """A measured command exited non-zero; the message carries the end of its output."""


@dataclass(frozen=True)
class Sample:
    seconds: float
    # The largest single process of the command's tree (children it waited for included),
    # in KiB, as GNU time reports its child's ru_maxrss; 0 when not measured.
    peak_rss_kib: int = 0
    # Per program of the tree (by executable name): the highest VmHWM seen, in KiB, when
    # the tree was watched. Tells whose memory the peak is (the Python program, the
    # engine, a provider).
    programs: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Command:
    argv: Sequence[str]
    cwd: Path
    env: Mapping[str, str] | None = None
    timeout: float = 900.0
    watch_tree: bool = False


# Why GNU time and not wait4 of our own child: Linux carries a process's peak RSS across
# exec, so a child forked from this Python reports at least this process's own peak (the
# whole pytest session's, in a test). GNU time is a 2 MB C program: its child's figure is
# the command's. Without it the peak is the larger of the command's and ours.
GNU_TIME = Path("/usr/bin/time")


def run(command: Command) -> Sample:
    """Run ``command`` to completion; raise CommandFailed on a non-zero exit."""
    with tempfile.TemporaryFile() as log, tempfile.NamedTemporaryFile("r") as peak:
        argv = list(command.argv)
        timed_by_gnu = GNU_TIME.is_file()
        if timed_by_gnu:
            argv = [str(GNU_TIME), "--quiet", "-o", peak.name, "-f", "%M", "--", *argv]
        start = time.perf_counter()
        process = subprocess.Popen(
            argv,
            cwd=command.cwd,
            env=dict(command.env) if command.env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        killer = threading.Timer(command.timeout, process.kill)
        killer.start()
        watcher = _TreeWatcher(process.pid, skip_root=timed_by_gnu) if command.watch_tree else None
        try:
            # wait4, not Popen.wait: only wait4 returns the rusage of this one child.
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            killer.cancel()
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        programs = watcher.stop() if watcher else {}
        if process.returncode != 0:
            log.seek(0)
            tail = log.read()[-4000:].decode(errors="replace")
            raise CommandFailed(f"{' '.join(command.argv)} exited {process.returncode}:\n{tail}")
        reported = peak.read().split()
    return Sample(seconds, int(reported[-1]) if reported else usage.ru_maxrss, programs)


class _TreeWatcher:
    """Samples the high-water mark (VmHWM) of every process under ``root`` until stopped.
    VmHWM never decreases, so the last sample of a process is at most one interval
    short of its true peak."""

    def __init__(self, root: int, skip_root: bool) -> None:
        self._root = root
        self._skip = {root} if skip_root else set()
        self._peaks: dict[str, int] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, int]:
        self._done.set()
        self._thread.join()
        return dict(sorted(self._peaks.items()))

    def _watch(self) -> None:
        while not self._done.wait(WATCH_INTERVAL_SECONDS):
            for pid in set(_descendants(self._root)) - self._skip:
                name, hwm = _program_and_hwm(pid)
                if name and hwm > self._peaks.get(name, 0):
                    self._peaks[name] = hwm


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            # The command name in field 2 may hold spaces and parentheses: split after it.
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [root], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _program_and_hwm(pid: int) -> tuple[str, int]:
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode()
        status = Path(f"/proc/{pid}/status").read_text()
    except (OSError, UnicodeDecodeError):
        return "", 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return Path(argv0).name, int(line.split()[1])
    return "", 0  # a zombie: no memory left to read


def timed(action: Callable[[], None]) -> Sample:
    """Wall time of ``action`` (for composite steps: a command, then a readiness wait)."""
    start = time.perf_counter()
    action()
    return Sample(time.perf_counter() - start)


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        items = list(values)
        return cls(statistics.median(items), min(items), max(items))


@dataclass(frozen=True)
class Pairs:
    """Program and floor samples, run in turns: program[i] ran just before floor[i]."""

    program: list[Sample]
    floor: list[Sample]

    @property
    def ratios(self) -> list[float]:
        return [mine.seconds / base.seconds for mine, base in zip(self.program, self.floor, strict=True)]


def interleave(program: Callable[[], Sample], floor: Callable[[], Sample], runs: int, warmup: bool = True) -> Pairs:
    """``runs`` pairs of (program, floor), alternating. With ``warmup``, one untimed run of
    each first, so neither side pays the first run's cold caches (bytecode, page cache)."""
    if warmup:
        program()
        floor()
    pairs = Pairs([], [])
    for _ in range(runs):
        pairs.program.append(program())
        pairs.floor.append(floor())
    return pairs
