"""The ECR reader in a process of its own, so that reading never takes the serving loop's time.

A warm refresh of 10,000 repositories is 0.5-0.7 s of Python CPU (cache lookups, metrics,
records) even when nothing changed; on the serving loop that is latency for every request in
flight, and on a thread of the serving process it is GIL hand-overs (BENCHMARKS.md). Here a
child process runs ``AwsEcrReader`` with its clients and caches, and answers the serving
process over a pipe. A read answer carries only the repositories that changed since the
previous answer for that source, plus their order when it changed, so a refresh that found
nothing new costs the serving process one small message, and it gets back the very record
objects it already holds (the store then skips the build).

Frames are a 4-byte length and a pickle. Pickle is safe here: both ends are this package,
started by the serving process, and nothing else can write to the pipes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import struct
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

from .model import Partition, RegistryRecord, RepositoryRecord, SourceId, SourceRecords
from .reading import EcrError

if TYPE_CHECKING:
    # Imported where used: the serving process starts the child before it imports botocore
    # and aiohttp, so that both processes import at once (on separate cores).
    from .ecr import AwsEcrReader
    from .reading import ReaderSettings, ReadObserver, SourceListing, StaticCredentials

__all__ = ["ReaderProcess", "ReaderProcessError", "discard_child", "start_child"]

log = logging.getLogger(__name__)

FRAME_HEADER = struct.Struct(">I")
# Changed records travel in frames of this many, so that unpickling them on the serving loop
# is a few milliseconds at a time, not one long stall for a cold 10,000-repository answer.
RECORDS_PER_FRAME = 500
# How often the child reports its counts of AWS calls and cache lookups during a long read.
TALLY_SECONDS = 1.0
EXIT_WAIT_SECONDS = 5.0
READER_NICENESS = 10


class ReaderProcessError(RuntimeError):
    """The reader process failed in a way that is not an AWS answer (a bug, or it exited)."""


@dataclass(frozen=True)
class _ReadAnswer:
    """A read of a source, relative to the previous answer for it.

    ``order`` is None when the source holds the same repositories, in the same order, as the
    previous answer; otherwise the ARNs in order. Repositories new or changed since the
    previous answer came in ``_Records`` frames before this one.
    """

    source: SourceId
    partition: Partition
    registry: RegistryRecord
    read_at: datetime
    skipped: tuple[str, ...]
    order: tuple[str, ...] | None


@dataclass(frozen=True)
class _Records:
    call_id: int
    records: tuple[RepositoryRecord, ...]


def _frame(message: object) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return FRAME_HEADER.pack(len(body)) + body


async def _read_frame(stream: asyncio.StreamReader) -> Any:
    (length,) = FRAME_HEADER.unpack(await stream.readexactly(FRAME_HEADER.size))
    return pickle.loads(await stream.readexactly(length))


async def _pipe_reader(pipe: IO[bytes]) -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    stream = asyncio.StreamReader(limit=2**26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stream), pipe)
    return stream


# The serving process's side.


def start_child() -> subprocess.Popen[bytes]:
    """Start a reader process; it imports botocore and aiohttp while it waits for its settings.

    ``serve`` calls this first, so that those imports overlap its own (of pydantic and the
    settings, then FastAPI); a child that is never sent settings ends when its input closes.
    """
    return subprocess.Popen(
        [sys.executable, "-m", "service.reader_process"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )


def discard_child(child: subprocess.Popen[bytes]) -> None:
    """End a child from ``start_child`` that will not be used: it has done nothing yet."""
    assert child.stdin is not None
    with contextlib.suppress(OSError):
        child.stdin.close()
    child.terminate()
    child.wait()
    if child.stdout is not None:
        child.stdout.close()


async def _ended(child: subprocess.Popen[bytes]) -> int:
    """Close the child's input (it exits when it sees that), wait, kill it if it lingers."""
    assert child.stdin is not None
    with contextlib.suppress(OSError):
        child.stdin.close()
    try:
        return await asyncio.to_thread(child.wait, EXIT_WAIT_SECONDS)
    except subprocess.TimeoutExpired:
        child.kill()
        return await asyncio.to_thread(child.wait)


class ReaderProcess:
    """Starts the child at once, so that it imports and begins reading while the server starts.

    ``attached`` makes it the app's reader for the life of the lifespan (it satisfies
    ``EcrReader``). A child that exits is started again at the next call; the calls waiting
    on it fail, so their sources keep their last good data.
    """

    def __init__(
        self,
        settings: ReaderSettings,
        credentials: StaticCredentials | None = None,
        started: subprocess.Popen[bytes] | None = None,
    ) -> None:
        """``started``: a child from ``start_child``, started before the settings were loaded."""
        self._launch = (settings, credentials)
        self._child: subprocess.Popen[bytes] | None = self._spawn(started)
        self._receiving: asyncio.Task[None] | None = None
        self._pending: dict[int, tuple[asyncio.Future[Any], SourceId | None]] = {}
        self._received: dict[int, list[RepositoryRecord]] = {}
        self._repositories: dict[SourceId, tuple[RepositoryRecord, ...]] = {}
        self._next_id = 0
        self._observer: ReadObserver | None = None

    def _spawn(self, started: subprocess.Popen[bytes] | None = None) -> subprocess.Popen[bytes]:
        child = started or start_child()
        assert child.stdin is not None
        child.stdin.write(_frame(self._launch))
        child.stdin.flush()
        log.info("reader process %d started", child.pid)
        return child

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    @asynccontextmanager
    async def attached(self, observer: ReadObserver | None) -> AsyncIterator[ReaderProcess]:
        self._observer = observer
        try:
            yield self
        finally:
            await self.close()

    async def _connected(self) -> subprocess.Popen[bytes]:
        if self._child is None or self._child.poll() is not None:
            self._child = self._spawn()
            self._receiving = None
        if self._receiving is None:
            assert self._child.stdout is not None
            stdout = await _pipe_reader(self._child.stdout)
            self._receiving = asyncio.create_task(
                self._receive(self._child, stdout), name="ecr-catalog-reader-process"
            )
        return self._child

    async def _call(self, method: str, *args: Any, source: SourceId | None = None) -> Any:
        child = await self._connected()
        self._next_id += 1
        call_id = self._next_id
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = (answer, source)
        assert child.stdin is not None
        try:
            child.stdin.write(_frame((call_id, method, args)))
            child.stdin.flush()
        except OSError as exc:
            self._pending.pop(call_id, None)
            raise self._lost_error(source, f"cannot write to it: {exc}") from exc
        try:
            return await answer
        finally:
            self._pending.pop(call_id, None)

    async def list_sources(self) -> SourceListing:
        listing: SourceListing = await self._call("list_sources")
        return listing

    async def read_source(self, source: SourceId) -> SourceRecords:
        records: SourceRecords = await self._call("read_source", source, source=source)
        return records

    async def forget_images(self, source: SourceId, repository: str) -> bool:
        known: bool = await self._call("forget_images", source, repository)
        return known

    async def _receive(self, child: subprocess.Popen[bytes], stdout: asyncio.StreamReader) -> None:
        try:
            while True:
                self._handle(await _read_frame(stdout))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception:
            log.exception("cannot read the reader process's answers; ending it")
        finally:
            # Its output ended: it exited, or it lives on but cannot be talked to.
            code = await _ended(child)
            self._received.clear()
            self._repositories.clear()
            for call_id, (answer, source) in list(self._pending.items()):
                if not answer.done():
                    answer.set_exception(self._lost_error(source, f"it exited with {code}"))
                self._pending.pop(call_id, None)
            if self._child is child:
                self._receiving = None

    @staticmethod
    def _lost_error(source: SourceId | None, why: str) -> Exception:
        message = f"the reader process was lost: {why}"
        if source is None:
            return ReaderProcessError(message)
        return EcrError(source.account_id, source.region, "ReadSource", "ReaderLost", message)

    def _handle(self, message: Any) -> None:
        if isinstance(message, _Records):
            self._received.setdefault(message.call_id, []).extend(message.records)
            return
        kind = message[0]
        if kind == "tally":
            self._observe(message[1])
            return
        _, call_id, value = message
        if kind == "read":
            value = self._records(value, self._received.pop(call_id, []))
        pending = self._pending.get(call_id)
        if pending is None or pending[0].done():
            # Its caller gave up (the refresh deadline); the answer still updated what we hold.
            return
        if kind == "error":
            pending[0].set_exception(value)
        else:
            pending[0].set_result(value)

    def _records(self, answer: _ReadAnswer, changed: list[RepositoryRecord]) -> SourceRecords:
        previous = self._repositories.get(answer.source, ())
        if answer.order is None:
            repositories = previous
        else:
            by_arn = {record.arn: record for record in previous}
            by_arn.update((record.arn, record) for record in changed)
            repositories = tuple(by_arn[arn] for arn in answer.order)
            self._repositories[answer.source] = repositories
        return SourceRecords(
            source=answer.source,
            partition=answer.partition,
            registry=answer.registry,
            repositories=repositories,
            read_at=answer.read_at,
            skipped=answer.skipped,
        )

    def _observe(self, tally: Counter[tuple[str, str, str]]) -> None:
        if self._observer is None:
            return
        for (what, name, outcome), times in tally.items():
            if what == "aws":
                self._observer.aws_call(name, outcome, times)
            else:
                self._observer.cache_lookup(name, outcome == "hit", times)

    async def close(self) -> None:
        """End the child: it exits when its input closes; killed if it has not within 5 s."""
        child, self._child = self._child, None
        if child is None:
            return
        await _ended(child)
        if self._receiving is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._receiving


# The child's side.


class _Tally:
    """Counts what the reader reports, to be sent to the serving process's metrics in batches."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, str]] = Counter()

    def aws_call(self, operation: str, outcome: str, times: int = 1) -> None:
        self.counts["aws", operation, outcome] += times

    def cache_lookup(self, kind: str, hit: bool, times: int = 1) -> None:
        self.counts["cache", kind, "hit" if hit else "miss"] += times

    def taken(self) -> Counter[tuple[str, str, str]]:
        counts, self.counts = self.counts, Counter()
        return counts


class _Child:
    def __init__(self, reader: AwsEcrReader, out: IO[bytes], tally: _Tally) -> None:
        self.reader = reader
        self.out = out
        self.tally = tally
        self.reading: dict[SourceId, asyncio.Task[SourceRecords]] = {}
        # What the serving process holds of each source: the records of the last answer.
        self.sent: dict[SourceId, tuple[RepositoryRecord, ...]] = {}
        self.first_listing: asyncio.Task[SourceListing] | None = None

    def send(self, message: object) -> None:
        # Blocking writes: the serving process reads its end all the time, and a full pipe
        # only means waiting for it, which is what should happen.
        self._write_tally()
        self.out.write(_frame(message))
        self.out.flush()

    def _write_tally(self) -> None:
        # Counts go before an answer, so the metrics are up to date when its caller resumes.
        counts = self.tally.taken()
        if counts:
            self.out.write(_frame(("tally", counts)))

    def read(self, source: SourceId) -> asyncio.Task[SourceRecords]:
        # One read per source at a time: a request for a source being read (the read started
        # at launch, or one whose caller gave up at the refresh deadline) waits for that read.
        running = self.reading.get(source)
        if running is None or running.done():
            running = self.reading[source] = asyncio.create_task(self.reader.read_source(source))
        return running

    def prefetch(self) -> asyncio.Task[None]:
        """Begin reading before the serving process asks, so a cold start overlaps its imports.

        The serving process's first listing is this one.
        """
        self.first_listing = asyncio.create_task(self.reader.list_sources())
        return asyncio.create_task(self._read_listed(self.first_listing))

    async def _read_listed(self, listing: asyncio.Task[SourceListing]) -> None:
        with contextlib.suppress(Exception):
            for source in (await asyncio.shield(listing)).sources:
                self.read(source).add_done_callback(_quiet)

    async def list_sources(self) -> SourceListing:
        first, self.first_listing = self.first_listing, None
        return await (first if first is not None else self.reader.list_sources())

    async def answer(self, call_id: int, method: str, args: tuple[Any, ...]) -> None:
        try:
            if method == "read_source":
                self.send_records(call_id, await asyncio.shield(self.read(args[0])))
                return
            if method == "list_sources":
                value: Any = await self.list_sources()
            elif method == "forget_images":
                value = await self.reader.forget_images(args[0], args[1])
            else:
                raise ReaderProcessError(f"unknown call {method!r}")
        except EcrError as exc:
            self.send(("error", call_id, exc))
        except Exception as exc:
            log.exception("the reader process's %s failed", method)
            self.send(("error", call_id, ReaderProcessError(f"{type(exc).__name__}: {exc}")))
        else:
            self.send(("result", call_id, value))

    def send_records(self, call_id: int, records: SourceRecords) -> None:
        previous = self.sent.get(records.source, ())
        current = records.repositories
        # The reader hands back the very objects of unchanged repositories.
        same = len(previous) == len(current) and all(
            a is b for a, b in zip(previous, current, strict=True)
        )
        if not same:
            known = {record.arn: record for record in previous}
            changed = [record for record in current if known.get(record.arn) is not record]
            for chunk in _chunks(changed, RECORDS_PER_FRAME):
                self.out.write(_frame(_Records(call_id, chunk)))
        self.send(
            (
                "read",
                call_id,
                _ReadAnswer(
                    records.source,
                    records.partition,
                    records.registry,
                    records.read_at,
                    records.skipped,
                    None if same else tuple(record.arn for record in current),
                ),
            )
        )
        self.sent[records.source] = current

    async def report_tally(self) -> None:
        while True:
            await asyncio.sleep(TALLY_SECONDS)
            self._write_tally()
            self.out.flush()


def _chunks(items: list[RepositoryRecord], size: int) -> Iterator[tuple[RepositoryRecord, ...]]:
    for start in range(0, len(items), size):
        yield tuple(items[start : start + size])


def _quiet(task: asyncio.Task[SourceRecords]) -> None:
    # A failed prefetch is reported when the serving process asks for that source.
    if not task.cancelled():
        task.exception()


async def _serve_parent(out: IO[bytes]) -> None:
    # Imported before the settings arrive: the serving process sends them once it has loaded
    # its own, which it does meanwhile.
    from .ecr import AwsEcrReader
    from .logs import configure_logging

    stdin = await _pipe_reader(sys.stdin.buffer)
    try:
        settings, credentials = await _read_frame(stdin)
    except asyncio.IncompleteReadError:
        return  # not needed after all (bad settings, or aws.reader_process is off)

    configure_logging(settings.log_format)
    tally = _Tally()
    async with AwsEcrReader.open(settings, credentials, tally) as reader:
        child = _Child(reader, out, tally)
        background = {child.prefetch(), asyncio.create_task(child.report_tally())}
        answering: set[asyncio.Task[None]] = set()
        while True:
            try:
                call_id, method, args = await _read_frame(stdin)
            except asyncio.IncompleteReadError:
                break  # the serving process closed our input: it is done with us
            task = asyncio.create_task(child.answer(call_id, method, args))
            answering.add(task)
            task.add_done_callback(answering.discard)
        ending: list[asyncio.Task[Any]] = [*background, *answering, *child.reading.values()]
        for each in ending:
            each.cancel()


def main() -> None:
    # Ctrl-C reaches the whole process group; the serving process decides when we end (by
    # closing our input), so a shutdown does not fail the reads it is still waiting for.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Reading is background work: when the CPU is contended, serving goes first. An idle
    # machine (a cold start) still gives the reader all it asks for.
    os.nice(READER_NICENESS)
    # Frames go to a private copy of stdout; anything else printed lands on stderr.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    asyncio.run(_serve_parent(out))


if __name__ == "__main__":
    # Run as the imported module, not as __main__, so that what it pickles names classes the
    # serving process can find (service.reader_process._Records, not __main__._Records).
    from service import reader_process

    reader_process.main()
