"""The memory cap's RSS reader: one descriptor per process, read from many worker threads at once."""

from __future__ import annotations

import os
import threading

import psutil

from workers.middleware import _RssReader

THREADS = 8
ROUNDS = 200


def open_descriptors() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/fd")}


def test_worker_threads_reading_a_fresh_reader_at_once_open_one_descriptor_and_all_get_the_rss():
    # Given fresh readers (as in a new worker process), each read first by 8 threads at the same moment
    before = open_descriptors()
    errors: list[BaseException] = []
    readers = []
    for _ in range(ROUNDS):
        reader = _RssReader()
        readers.append(reader)
        start = threading.Barrier(THREADS)
        results: list[int] = []

        def read(reader: _RssReader = reader, start: threading.Barrier = start, results: list[int] = results) -> None:
            start.wait()
            try:
                results.append(reader.read())
            except BaseException as exc:  # collected for the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=read) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        # Then every thread got this process's RSS, and no read failed (EBADF: a descriptor closed by
        # another thread) — a close of a descriptor another thread had just opened could hit anything
        rss = psutil.Process().memory_info().rss
        assert all(0.5 * rss < value < 2 * rss for value in results)
    assert errors == []
    # and each reader holds exactly one descriptor of its own: none leaked, none shared
    fds = {reader._fd for reader in readers}
    assert None not in fds
    assert len(fds) == ROUNDS
    for fd in fds:
        os.close(fd)  # type: ignore[arg-type]
    assert open_descriptors() == before
