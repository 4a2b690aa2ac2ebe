"""The file-backed flash store: round trip, error mapping, atomic replacement, survival of kill -9."""

from __future__ import annotations

import os
import random
import selectors
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from at_frontend.store import (
    ConfigStore,
    JsonValue,
    StoreCorrupt,
    StoreUnavailable,
    encode_store,
    read_section,
    update_section,
)
from wipstack.drivers.flash import FileStore

ROOT = Path(__file__).resolve().parents[2]
WRITER = ROOT / "tests" / "helpers" / "flash_writer.py"
SAMPLE: dict[str, dict[str, JsonValue]] = {
    "wipcfg": {"ttl": 64, "autostart": True},
    "bearer.6": {"apn": "internet", "dns": ["8.8.8.8"], "user": None},
}


def temp_files(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.endswith(".tmp"))


# ------------------------------------------------------------------ basics


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "flash.json"
    store = FileStore(path)
    assert isinstance(store, ConfigStore)
    store.save(SAMPLE)
    assert path.read_bytes() == encode_store(SAMPLE)
    assert store.load() == SAMPLE
    assert FileStore(str(path)).load() == SAMPLE  # a fresh instance: "after a restart"
    store.save({"wipcfg": {}})
    assert store.load() == {"wipcfg": {}}
    assert temp_files(tmp_path) == []


def test_missing_file_is_an_empty_store(tmp_path: Path) -> None:
    assert FileStore(tmp_path / "never-written").load() == {}
    assert FileStore(tmp_path / "no" / "such" / "dir" / "flash").load() == {}


def test_file_mode_is_0600(tmp_path: Path) -> None:
    path = tmp_path / "flash.json"
    old_umask = os.umask(0)
    try:
        FileStore(path).save(SAMPLE)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_creates_missing_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "flash.json"
    FileStore(path).save(SAMPLE)
    assert FileStore(path).load() == SAMPLE


def test_section_helpers_work_on_a_file(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "flash.json")
    update_section(store, "wipcfg", {"ttl": 32})
    update_section(store, "bearer.6", {"apn": "x"})
    assert read_section(FileStore(tmp_path / "flash.json"), "wipcfg") == {"ttl": 32}
    assert read_section(store, "bearer.6") == {"apn": "x"}


def test_repr_and_path(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "flash.json")
    assert store.path == tmp_path / "flash.json"
    assert "flash.json" in repr(store)


# ------------------------------------------------------------------ errors on load


def test_directory_at_the_path_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "flash.json"
    path.mkdir()
    with pytest.raises(StoreUnavailable, match="cannot read") as caught:
        FileStore(path).load()
    assert caught.value.reason


def test_file_as_a_parent_directory_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "plain-file").write_bytes(b"")
    with pytest.raises(StoreUnavailable):
        FileStore(tmp_path / "plain-file" / "flash.json").load()


@pytest.mark.parametrize(
    "content",
    [b"", b"garbage", b"wipstack-flash 2 x\n{}", encode_store(SAMPLE)[:-1], b"\x00" * (2 << 20)],
    ids=["empty", "garbage", "version", "truncated", "too-large"],
)
def test_corrupt_file_is_corrupt(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "flash.json"
    path.write_bytes(content)
    with pytest.raises(StoreCorrupt):
        FileStore(path).load()


def test_corrupt_store_can_be_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "flash.json"
    path.write_bytes(b"garbage")
    store = FileStore(path)
    store.save(SAMPLE)
    assert store.load() == SAMPLE


# ------------------------------------------------------------------ errors on save


def test_temp_file_creation_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a read-only directory does to a non-root user, simulated so it also runs as root."""
    store = FileStore(tmp_path / "flash.json")
    store.save(SAMPLE)

    def refuse(*args: object, **kwargs: object) -> tuple[int, str]:
        raise PermissionError(13, "Permission denied", str(tmp_path))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(StoreUnavailable, match="cannot create a temporary file.*Permission denied"):
        store.save({"wipcfg": {"ttl": 1}})
    monkeypatch.undo()
    assert store.load() == SAMPLE
    assert temp_files(tmp_path) == []


def test_save_where_the_directory_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "plain-file").write_bytes(b"")
    with pytest.raises(StoreUnavailable, match="cannot create directory"):
        FileStore(tmp_path / "plain-file" / "sub" / "flash.json").save(SAMPLE)


def test_save_over_a_directory_fails_and_leaves_no_temp_file(tmp_path: Path) -> None:
    (tmp_path / "flash.json").mkdir()
    with pytest.raises(StoreUnavailable, match="cannot write"):
        FileStore(tmp_path / "flash.json").save(SAMPLE)
    assert temp_files(tmp_path) == []


@pytest.mark.parametrize("failing_call", ["write", "fsync", "replace", "fchmod"])
def test_injected_io_failure_keeps_the_old_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing_call: str
) -> None:
    """Works as root too: a read-only filesystem (EROFS) simulated at each step of the save."""
    path = tmp_path / "flash.json"
    store = FileStore(path)
    store.save(SAMPLE)
    old_bytes = path.read_bytes()

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(os, failing_call, fail)
    with pytest.raises(StoreUnavailable, match="Read-only file system") as caught:
        store.save({"wipcfg": {"ttl": 1}})
    monkeypatch.undo()
    assert isinstance(caught.value.__cause__, OSError)
    assert path.read_bytes() == old_bytes
    assert store.load() == SAMPLE
    assert temp_files(tmp_path) == []


def test_partial_writes_are_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write

    def write_at_most_7_bytes(fd: int, data: bytes) -> int:
        return real_write(fd, bytes(data[:7]))

    monkeypatch.setattr(os, "write", write_at_most_7_bytes)
    store = FileStore(tmp_path / "flash.json")
    store.save(SAMPLE)
    monkeypatch.undo()
    assert store.load() == SAMPLE


def test_directory_fsync_failure_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rename happened but may not be durable: the caller hears about it (error 820)."""
    real_fsync = os.fsync
    calls: list[int] = []

    def fsync_failing_on_the_directory(fd: int) -> None:
        calls.append(fd)
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(5, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_failing_on_the_directory)
    store = FileStore(tmp_path / "flash.json")
    with pytest.raises(StoreUnavailable, match="Input/output error"):
        store.save(SAMPLE)
    monkeypatch.undo()
    assert len(calls) == 2  # the file, then the directory
    assert temp_files(tmp_path) == []


def test_directory_fsync_unsupported_is_tolerated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_fsync = os.fsync

    def fsync_einval_on_directories(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(22, "Invalid argument")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_einval_on_directories)
    store = FileStore(tmp_path / "flash.json")
    store.save(SAMPLE)
    monkeypatch.undo()
    assert store.load() == SAMPLE


def test_invalid_sections_raise_before_anything_is_written(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "sub" / "flash.json")
    with pytest.raises(TypeError):
        store.save({"wipcfg": {"v": object()}})  # type: ignore[dict-item]
    assert not (tmp_path / "sub").exists()


# ------------------------------------------------------------------ stale temporary files


def test_stale_temp_files_are_removed_by_the_next_save(tmp_path: Path) -> None:
    path = tmp_path / "flash.json"
    stale = [tmp_path / ".flash.json.abc123.tmp", tmp_path / ".flash.json.zz.tmp"]
    unrelated = [
        tmp_path / ".other.json.abc.tmp",
        tmp_path / "flash.json.tmp",
        tmp_path / ".flash.json.tmp",  # prefix and suffix overlap: not a mkstemp name
        tmp_path / ".flash.json.bak",
    ]
    for file in stale + unrelated:
        file.write_bytes(b"half a store")
    store = FileStore(path)
    assert store.stale_temp_files() == sorted(stale)
    store.load()  # loading never deletes anything
    assert all(file.exists() for file in stale)
    store.save(SAMPLE)
    assert not any(file.exists() for file in stale)
    assert all(file.exists() for file in unrelated)
    assert store.stale_temp_files() == []
    assert store.load() == SAMPLE


def test_failed_save_leaves_stale_files_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / ".flash.json.abc.tmp"
    stale.write_bytes(b"x")

    def fail(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(StoreUnavailable, match="No space left"):
        FileStore(tmp_path / "flash.json").save(SAMPLE)
    assert temp_files(tmp_path) == [stale.name]


# ------------------------------------------------------------------ kill -9


def _run_writer_and_kill(path: Path, seed: int) -> list[int]:
    """Start the writer, wait for its first completed save, let it run 5-60 ms, SIGKILL it.

    Returns the counters it printed (each one a completed save).
    """
    delay = random.Random(seed).uniform(0.005, 0.060)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(path), str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            if not selector.select(timeout=20):
                pytest.fail("flash_writer printed nothing within 20 s")
        first_line = proc.stdout.readline()
        if not first_line:
            _, stderr = proc.communicate(timeout=10)
            pytest.fail(f"flash_writer exited with {proc.returncode}: {stderr.decode(errors='replace')}")
        time.sleep(delay)
        proc.kill()  # SIGKILL to this PID only
        rest, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == -9
    output = first_line + rest
    complete_lines = output.split(b"\n")[:-1]  # a trailing partial line (if any) was never printed
    return [int(line) for line in complete_lines]


def test_kill_minus_9_never_corrupts_the_store(tmp_path: Path) -> None:
    path = tmp_path / "flash.json"
    started = time.monotonic()
    for seed in range(40):
        printed = _run_writer_and_kill(path, seed)
        assert printed == list(range(len(printed))), "the writer printed its counters in order"
        last_printed = printed[-1]
        sections = FileStore(path).load()  # must not raise
        assert set(sections) == {"wipcfg"}
        counter = sections["wipcfg"]["counter"]
        pad = sections["wipcfg"]["pad"]
        assert isinstance(pad, str) and pad == "x" * len(pad)
        assert counter in (last_printed, last_printed + 1), (seed, counter, last_printed)
    elapsed = time.monotonic() - started
    assert elapsed < 60, f"kill loop took {elapsed:.1f} s"

    store = FileStore(path)
    store.save({"wipcfg": {"counter": -1}})
    assert temp_files(tmp_path) == []
    assert store.load() == {"wipcfg": {"counter": -1}}
