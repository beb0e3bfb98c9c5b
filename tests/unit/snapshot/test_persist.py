"""The state directory: every way a file can be wrong is set aside, and start-up goes on."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.config import Settings
from service.model import LifecyclePolicy, SourceId
from service.snapshot.persist import (
    StateDir,
    StateFileInvalid,
    StateWriteFailed,
    records_from_json,
    records_to_json,
)
from service.snapshot.status import SAVED_DATA_SET_ASIDE
from service.snapshot.store import SnapshotStore
from service.snapshot.types import Snapshot

from ...records import ACCOUNT, repository, source
from ...support import JSON_VALUES, FakeReader

SAVED = source(repository("team-a/api"), repository("empty", image_count=0))
FILE_NAME = f"{ACCOUNT}-us-east-1.json"


def _load_one(content: bytes) -> tuple[list[Any], list[str]]:
    """Load a state directory holding one file with ``content``: what loaded, what is left."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory)
        (path / FILE_NAME).write_bytes(content)
        loaded = StateDir(path).load().records
        return loaded, sorted(p.name for p in path.iterdir())


def test_saved_records_load_back_equal(tmp_path: Path) -> None:
    StateDir(tmp_path).save(SAVED)
    assert StateDir(tmp_path).load().records == [SAVED]
    assert records_from_json(records_to_json(SAVED)) == SAVED


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(JSON_VALUES)
def test_any_json_value_is_set_aside_and_nothing_raises(value: Any) -> None:
    loaded, left = _load_one(json.dumps(value).encode())
    assert loaded == []
    assert left == [f"{ACCOUNT}-us-east-1.corrupt"]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_any_byte_string_is_set_aside_and_nothing_raises(content: bytes) -> None:
    loaded, left = _load_one(content)
    assert loaded == []
    assert left == [f"{ACCOUNT}-us-east-1.corrupt"]


def _paths(document: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every object in a JSON document, the root's included."""
    if isinstance(document, dict):
        yield at
        for key, value in document.items():
            yield from _paths(value, (*at, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from _paths(value, (*at, index))


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        document = document[part]
    return document


def _valid_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(records_to_json(SAVED))
    return document


def _fields() -> list[tuple[tuple[Any, ...], str]]:
    document = _valid_document()
    return [(path, key) for path in _paths(document) for key in _at(document, path)]


@pytest.mark.parametrize(
    ("path", "key"), _fields(), ids=[".".join(map(str, (*p, k))) for p, k in _fields()]
)
def test_a_missing_field_is_refused(path: tuple[Any, ...], key: str) -> None:
    document = _valid_document()
    field = _at(document, path)
    del field[key]
    with pytest.raises(StateFileInvalid):
        records_from_json(json.dumps(document).encode())


@pytest.mark.parametrize(
    "path", list(_paths(_valid_document())), ids=lambda p: ".".join(map(str, p)) or "root"
)
def test_an_extra_field_is_refused(path: tuple[Any, ...]) -> None:
    document = _valid_document()
    _at(document, path)["unexpected"] = 1
    with pytest.raises(StateFileInvalid, match="unexpected"):
        records_from_json(json.dumps(document).encode())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format=3), "format"),
        (lambda d: d.update(format="2"), "format"),
        (lambda d: d.update(format=1), "written by an earlier version"),
        (lambda d: d["records"]["source"].update(account_id=123456789012), "account_id"),
        (lambda d: d["records"]["repositories"][0]["images"].update(image_count="2"), "count"),
        (lambda d: d["records"]["repositories"][0].update(scan_on_push=1), "scan_on_push"),
        (lambda d: d["records"].update(read_at="yesterday"), "read_at"),
        (lambda d: d["records"].update(read_at="2026-01-09T12:00:00"), "time zone"),
        (lambda d: d["records"].update(repositories={}), "repositories"),
    ],
)
def test_a_wrong_version_or_type_is_refused(change: Any, message: str) -> None:
    document = _valid_document()
    change(document)
    with pytest.raises(StateFileInvalid, match=message):
        records_from_json(json.dumps(document).encode())


def _leaves(document: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every string and number in a JSON document."""
    if isinstance(document, dict):
        for key, value in document.items():
            yield from _leaves(value, (*at, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from _leaves(value, (*at, index))
    elif isinstance(document, (str, int)) and not isinstance(document, bool):
        yield at


LEAVES = list(_leaves(_valid_document()))


@dataclass
class _Started:
    store: SnapshotStore
    # What the state directory holds after the start.
    left: list[str]

    @property
    def snapshot(self) -> Snapshot | None:
        return self.store.snapshot


def _started_with(content: bytes) -> _Started:
    """Start a store whose state directory holds one file with ``content``."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory)
        (path / FILE_NAME).write_bytes(content)
        settings = Settings()
        store = SnapshotStore(FakeReader(SAVED), settings.catalog, settings.refresh)
        store.state = StateDir(path)
        asyncio.run(store.load_state())
        return _Started(store, sorted(p.name for p in path.iterdir()))


ODD_VALUES = [
    "",
    " ",
    "a b",
    "../..",
    "\x00",
    # Past the calendar's end once in UTC; and before its start.
    "9999-12-31T23:59:59-01:00",
    "0001-01-01T00:00:00+01:00",
]


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    path=st.sampled_from(LEAVES),
    value=st.text(max_size=80) | st.integers() | st.sampled_from(ODD_VALUES),
)
def test_any_value_in_any_field_starts_the_store_serving_the_file_or_setting_it_aside(
    path: tuple[Any, ...], value: Any
) -> None:
    document = _valid_document()
    _at(document, path[:-1])[path[-1]] = value
    started = _started_with(json.dumps(document).encode())
    # Never a crash. Either served whole (every entity the file makes, none left out, since
    # Backstage would delete what a 200 leaves out) with the file kept, or set aside.
    if started.snapshot is not None:
        assert started.snapshot.rejections == ()
        assert started.left == [FILE_NAME]
    else:
        assert started.left == [f"{ACCOUNT}-us-east-1.corrupt"]


def test_saved_records_whose_repository_would_be_left_out_are_set_aside() -> None:
    document = _valid_document()
    document["records"]["repositories"][0]["images"]["latest"]["finding_counts"] = [["a b", 1]]
    started = _started_with(json.dumps(document).encode())
    assert started.snapshot is None and started.left == [f"{ACCOUNT}-us-east-1.corrupt"]
    assert started.store.statuses[SAVED.source].last_error == SAVED_DATA_SET_ASIDE


def test_saved_data_no_registry_may_carry_is_set_aside_and_the_rest_served(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = replace(
        SAVED, partition=replace(SAVED.partition, console_host="bad host", dns_suffix="x y")
    )
    other = source(repository("team-b/web"), region="eu-west-1")
    state = StateDir(tmp_path)
    state.save(bad)
    state.save(other)
    settings = Settings()
    store = SnapshotStore(FakeReader(other), settings.catalog, settings.refresh)
    store.state = state
    asyncio.run(store.load_state())
    assert store.snapshot is not None and list(store.snapshot.sources) == [other.source]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"{ACCOUNT}-eu-west-1.json",
        f"{ACCOUNT}-us-east-1.corrupt",
    ]
    assert "its data cannot be served" in caplog.text and "has no valid url" in caplog.text
    # Its entities were served before: until it is read again, nothing is complete without it.
    assert not store.snapshot.complete
    assert store.snapshot.incomplete == (
        f"no data yet for {SAVED.source} ({SAVED_DATA_SET_ASIDE})",
    )
    assert not store.statuses[SAVED.source].healthy


async def test_a_source_whose_file_was_set_aside_keeps_the_catalog_incomplete_until_read(
    tmp_path: Path,
) -> None:
    other = source(repository("team-b/web"), region="eu-west-1")
    StateDir(tmp_path).save(other)
    (tmp_path / FILE_NAME).write_bytes(b"null")
    # A name that is no source's, and a source that is not wanted, do not hold anything up.
    (tmp_path / "notes.json").write_bytes(b"null")
    (tmp_path / "999999999999-us-east-1.json").write_bytes(b"null")
    settings = Settings()
    store = SnapshotStore(FakeReader(SAVED, other), settings.catalog, settings.refresh)
    store.state = StateDir(tmp_path)
    await store.load_state(lambda s: s.account_id == ACCOUNT)
    assert store.snapshot is not None and not store.snapshot.complete
    assert store.snapshot.listed == (other.source, SAVED.source)
    assert store.snapshot.sources[other.source].stale_since == other.read_at
    outcome = await store.refresh()
    assert outcome.published and store.snapshot.complete
    assert set(store.snapshot.sources) == {SAVED.source, other.source}


async def test_a_file_set_aside_by_an_earlier_start_still_holds_the_catalog_incomplete(
    tmp_path: Path,
) -> None:
    """Restarted again before the source was read: only its ``.corrupt`` file is left."""
    other = source(repository("team-b/web"), region="eu-west-1")
    StateDir(tmp_path).save(other)
    (tmp_path / f"{ACCOUNT}-us-east-1.corrupt").write_bytes(b"null")
    (tmp_path / f"{ACCOUNT}-us-east-1.1.corrupt").write_bytes(b"null")
    # Set aside once, read again since: its new file is there, and nothing is missing.
    (tmp_path / f"{ACCOUNT}-eu-west-1.corrupt").write_bytes(b"null")
    loaded = StateDir(tmp_path).load()
    assert loaded.records == [other] and loaded.unreadable == (SAVED.source,)
    settings = Settings()
    store = SnapshotStore(FakeReader(SAVED, other), settings.catalog, settings.refresh)
    store.state = StateDir(tmp_path)
    await store.load_state()
    assert store.snapshot is not None and not store.snapshot.complete
    (tmp_path / FILE_NAME).write_bytes(records_to_json(SAVED))
    assert StateDir(tmp_path).load().unreadable == ()


def test_a_file_named_for_another_source_is_set_aside(tmp_path: Path) -> None:
    (tmp_path / f"{ACCOUNT}-eu-west-1.json").write_bytes(records_to_json(SAVED))
    assert StateDir(tmp_path).load().records == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{ACCOUNT}-eu-west-1.corrupt"]


def test_files_that_cannot_be_read_are_set_aside(tmp_path: Path) -> None:
    (tmp_path / FILE_NAME).mkdir()
    (tmp_path / f"{ACCOUNT}-eu-west-1.json").symlink_to(tmp_path / "nowhere")
    os.mkfifo(tmp_path / f"{ACCOUNT}-eu-west-2.json")
    loaded = StateDir(tmp_path).load()
    assert loaded.records == []
    assert loaded.unreadable == tuple(
        SourceId(ACCOUNT, region) for region in ("eu-west-1", "eu-west-2", "us-east-1")
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"{ACCOUNT}-eu-west-1.corrupt",
        f"{ACCOUNT}-eu-west-2.corrupt",
        f"{ACCOUNT}-us-east-1.corrupt",
    ]


def test_a_state_directory_that_is_a_file_is_said_and_left_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    not_a_directory = tmp_path / "state"
    not_a_directory.write_bytes(b"x")
    assert StateDir(not_a_directory).load().records == []
    assert f"the state directory {not_a_directory} is not a directory" in caplog.text
    assert not_a_directory.read_bytes() == b"x"
    assert StateDir(tmp_path / "missing").load().records == [] and "missing" not in caplog.text


def test_an_earlier_corrupt_copy_is_kept(tmp_path: Path) -> None:
    (tmp_path / f"{ACCOUNT}-us-east-1.corrupt").write_bytes(b"first")
    (tmp_path / FILE_NAME).write_bytes(b"second")
    assert StateDir(tmp_path).load().records == []
    assert (tmp_path / f"{ACCOUNT}-us-east-1.corrupt").read_bytes() == b"first"
    assert (tmp_path / f"{ACCOUNT}-us-east-1.1.corrupt").read_bytes() == b"second"


def test_a_source_no_longer_configured_is_kept_but_not_loaded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    other = replace(SAVED, source=SourceId(ACCOUNT, "eu-west-1"))
    state = StateDir(tmp_path)
    state.save(SAVED)
    state.save(other)
    settings = Settings(aws={"targets": [{"regions": ["us-east-1"], "account_id": ACCOUNT}]})
    with caplog.at_level(logging.WARNING):
        assert state.load(settings.aws.may_read).records == [SAVED]
    assert f"holds {ACCOUNT}/eu-west-1, which is no longer configured" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"{ACCOUNT}-eu-west-1.json",
        FILE_NAME,
    ]
    assert state.load().records == [other, SAVED]


def test_an_interrupted_save_is_cleaned_up(tmp_path: Path) -> None:
    StateDir(tmp_path).save(SAVED)
    (tmp_path / ".tmp-abc.json").write_bytes(b"half a fi")
    assert StateDir(tmp_path).load().records == [SAVED]
    assert sorted(p.name for p in tmp_path.iterdir()) == [FILE_NAME]


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Any]:
    """Makes a directory with the given files that nothing can then write to.

    For a user, permissions; for root, which ignores them, a read-only bind mount of the
    directory onto itself.
    """
    made: list[Path] = []

    def make(files: dict[str, bytes]) -> Path:
        path = tmp_path / f"state-{len(made)}"
        path.mkdir()
        for name, content in files.items():
            (path / name).write_bytes(content)
        if os.geteuid() != 0:
            path.chmod(0o555)
        else:
            mounted = subprocess.run(
                ["mount", "--bind", str(path), str(path)], capture_output=True, check=False
            )
            if mounted.returncode != 0:
                pytest.skip(f"cannot bind-mount here: {mounted.stderr.decode().strip()}")
            made.append(path)
            subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)
        with pytest.raises(OSError):
            (path / "probe").write_bytes(b"x")
        return path

    try:
        yield make
    finally:
        for path in made:
            subprocess.run(["umount", str(path)], check=True)
        for path in tmp_path.glob("state-*"):
            path.chmod(0o755)


def test_saving_into_a_read_only_directory_raises_a_named_error(read_only_dir: Any) -> None:
    path = read_only_dir({"stale.txt": b"from before"})
    with pytest.raises(StateWriteFailed, match=str(path / FILE_NAME)):
        StateDir(path).save(SAVED)
    assert sorted(p.name for p in path.iterdir()) == ["stale.txt"]


async def test_a_failed_save_is_counted_and_serving_goes_on(
    read_only_dir: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings()
    store = SnapshotStore(FakeReader(SAVED), settings.catalog, settings.refresh)
    store.state = StateDir(read_only_dir({}))
    outcome = await store.refresh()
    assert outcome.published and store.snapshot is not None and store.snapshot.complete
    assert store.state_writes == {"failed": 1}
    assert store.last_state_error is not None and FILE_NAME in store.last_state_error
    assert "serving goes on" in caplog.text
    await store.refresh()
    assert store.state_writes == {"failed": 2}


def test_a_corrupt_file_that_cannot_be_moved_is_logged_and_skipped(
    read_only_dir: Any, caplog: pytest.LogCaptureFixture
) -> None:
    path = read_only_dir({FILE_NAME: b"null", f"{ACCOUNT}-eu-west-1.json": b"[]"})
    assert StateDir(path).load().records == []
    assert caplog.text.count("cannot set") == 2
    assert sorted(p.name for p in path.iterdir()) == [f"{ACCOUNT}-eu-west-1.json", FILE_NAME]


def test_an_unparseable_lifecycle_policy_is_saved_and_normal_ones_keep_their_form() -> None:
    odd = source(repository("odd", lifecycle=LifecyclePolicy(present=True, rule_count=None)))
    assert records_from_json(records_to_json(odd)) == odd
    # A present or absent policy is written as before the unparseable state: files stay valid.
    saved = json.loads(records_to_json(SAVED))["records"]["repositories"]
    assert [r["lifecycle_policy"] for r in saved] == [{"present": True, "rule_count": 2}] * 2
