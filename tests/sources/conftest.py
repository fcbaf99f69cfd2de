"""Helpers of the sources tests: sources on real temporary directories and git repositories."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dulwich import porcelain

from workers.sources.models import Source


@pytest.fixture
def eager(greenroom_eager, transactional_db, settings, tmp_path):
    """Jobs run inline when enqueued; git mirrors go under the test's temporary folder."""
    settings.GREENROOM_SOURCES_DIR = tmp_path / "mirrors"


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


@pytest.fixture
def git_repo(tmp_path) -> Callable[..., Path]:
    """`commit(files, remove=())`: write/remove files in a real git repository and commit them."""
    root = tmp_path / "repo"
    porcelain.init(str(root)).close()

    def commit(files: dict[str, str | bytes], remove: tuple[str, ...] = ()) -> Path:
        write(root, files)
        with porcelain.open_repo_closing(str(root)) as repo:
            for name in remove:
                porcelain.remove(repo, paths=[str(root / name)])
            porcelain.add(repo, paths=[str(root / name) for name in files])
            porcelain.commit(repo, message=b"change", author=b"T <t@example.com>", committer=b"T <t@example.com>")
        return root

    return commit


@pytest.fixture
def make_source() -> Callable[..., Source]:
    def make(location: Any, **fields: Any) -> Source:
        fields.setdefault("name", f"source {Source.objects.count() + 1}")
        return Source.objects.create(location=str(location), **fields)

    return make
