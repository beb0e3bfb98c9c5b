"""The state directory: every way a file can be wrong is set aside, and start-up goes on."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.config import Settings
from service.model import SourceId
from service.snapshot.persist import (
    StateDir,
    StateFileInvalid,
    StateWriteFailed,
    records_from_json,
    records_to_json,
)
from service.snapshot.store import SnapshotStore

from ...records import ACCOUNT, repository, source
from ...support import FakeReader

SAVED = source(repository("team-a/api"), repository("empty", image_count=0))
FILE_NAME = f"{ACCOUNT}-us-east-1.json"

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _load_one(content: bytes) -> tuple[list[Any], list[str]]:
    """Load a state directory holding one file with ``content``: what loaded, what is left."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory)
        (path / FILE_NAME).write_bytes(content)
        loaded = StateDir(path).load()
        return loaded, sorted(p.name for p in path.iterdir())


def test_saved_records_load_back_equal(tmp_path: Path) -> None:
    StateDir(tmp_path).save(SAVED)
    assert StateDir(tmp_path).load() == [SAVED]
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


def test_a_file_named_for_another_source_is_set_aside(tmp_path: Path) -> None:
    (tmp_path / f"{ACCOUNT}-eu-west-1.json").write_bytes(records_to_json(SAVED))
    assert StateDir(tmp_path).load() == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{ACCOUNT}-eu-west-1.corrupt"]


def test_files_that_cannot_be_read_are_set_aside(tmp_path: Path) -> None:
    (tmp_path / FILE_NAME).mkdir()
    (tmp_path / f"{ACCOUNT}-eu-west-1.json").symlink_to(tmp_path / "nowhere")
    os.mkfifo(tmp_path / f"{ACCOUNT}-eu-west-2.json")
    assert StateDir(tmp_path).load() == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"{ACCOUNT}-eu-west-1.corrupt",
        f"{ACCOUNT}-eu-west-2.corrupt",
        f"{ACCOUNT}-us-east-1.corrupt",
    ]


def test_an_earlier_corrupt_copy_is_kept(tmp_path: Path) -> None:
    (tmp_path / f"{ACCOUNT}-us-east-1.corrupt").write_bytes(b"first")
    (tmp_path / FILE_NAME).write_bytes(b"second")
    assert StateDir(tmp_path).load() == []
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
        assert state.load(settings.aws.may_read) == [SAVED]
    assert f"holds {ACCOUNT}/eu-west-1, which is no longer configured" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"{ACCOUNT}-eu-west-1.json",
        FILE_NAME,
    ]
    assert state.load() == [other, SAVED]


def test_an_interrupted_save_is_cleaned_up(tmp_path: Path) -> None:
    StateDir(tmp_path).save(SAVED)
    (tmp_path / ".tmp-abc.json").write_bytes(b"half a fi")
    assert StateDir(tmp_path).load() == [SAVED]
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
    assert StateDir(path).load() == []
    assert caplog.text.count("cannot set") == 2
    assert sorted(p.name for p in path.iterdir()) == [f"{ACCOUNT}-eu-west-1.json", FILE_NAME]
