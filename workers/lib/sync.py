"""Reading a documentation source: the matching files of a directory or of a git branch.

Plain functions, no Django models, no Dramatiq. `list_directory` / `list_git` return the matching
files (cheap: nothing is read yet) so that a sync knows its total; `SourceFile.read()` reads one, and
`decode_document` turns its bytes into (title, text) or raises UnreadableFile.

Git sources are read from the branch's tree directly, without a working copy: a local repository
in place, a URL through a bare mirror that is cloned once and fetched on later syncs (dulwich, pure
Python: no git binary needed).
"""

from __future__ import annotations

import fnmatch
import io
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from dulwich import porcelain
from dulwich.errors import GitProtocolError, HangupException, NotGitRepository
from dulwich.objects import Blob, Commit, ObjectID
from dulwich.refs import Ref
from dulwich.repo import Repo

# Git tree entry modes that are not regular files: symlinks and submodules are skipped.
GIT_SYMLINK_MODE = 0o120000
GIT_SUBMODULE_MODE = 0o160000
# Directories never walked (version control and tool caches).
SKIP_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv", ".tox"})
# A location with a scheme (https://, file://, ssh://) or scp-like syntax (git@host:repo) is remote.
REMOTE_RE = re.compile(r"^[a-z][a-z0-9+.-]*://|^[\w.-]+@[\w.-]+:", re.IGNORECASE)
TITLE_MAX = 300


class SourceUnavailable(Exception):
    """The source cannot be read at all (missing directory, repository that cannot be cloned)."""


class UnreadableFile(Exception):
    """One file cannot be used as a document (binary, not UTF-8, too large, unreadable)."""


@dataclass(frozen=True)
class SourceFile:
    """A matching file: its POSIX path relative to the source root, and how to read its bytes."""

    path: str
    read: Callable[[], bytes]
    size: int  # bytes; -1 when only known once read (git blobs)


def matches(path: str, patterns: list[str]) -> bool:
    """Whether `path` matches a pattern: patterns with '/' match the whole path, others the name."""
    name = PurePosixPath(path).name
    return any(fnmatch.fnmatchcase(path if "/" in p else name, p) for p in patterns)


def list_directory(root: str | Path, patterns: list[str]) -> list[SourceFile]:
    """The matching regular files under `root`, sorted by path. Symlinks are not followed."""
    base = Path(root)
    if not base.is_dir():
        raise SourceUnavailable(f"directory {str(root)!r} does not exist or is not a directory")
    found: list[SourceFile] = []

    def on_error(exc: OSError) -> None:
        raise SourceUnavailable(f"cannot read directory {exc.filename!r}: {exc.strerror}")

    for folder, dirs, files in os.walk(base, onerror=on_error, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in files:
            full = Path(folder, name)
            if full.is_symlink() or not full.is_file():
                continue  # a link could point anywhere on the machine
            relative = full.relative_to(base).as_posix()
            if matches(relative, patterns):
                found.append(SourceFile(path=relative, read=full.read_bytes, size=full.stat().st_size))
    return sorted(found, key=lambda f: f.path)


def is_remote(location: str) -> bool:
    return bool(REMOTE_RE.match(location))


def open_git(location: str, mirror: Path) -> Repo:
    """The repository to read: `location` itself if local, else its bare mirror at `mirror`, updated.

    Raises SourceUnavailable with a readable reason.
    """
    errors = io.BytesIO()  # dulwich's progress chatter; kept out of the worker's stderr
    try:
        if not is_remote(location):
            path = Path(location)
            if not path.exists():
                raise SourceUnavailable(f"git repository {location!r} does not exist")
            return Repo(str(path))
        if (mirror / "HEAD").exists():
            repo = Repo(str(mirror))
            try:
                fetched = porcelain.fetch(repo, location, errstream=errors, outstream=io.StringIO())
                _mirror_refs(repo, fetched.refs, fetched.symrefs)
            except BaseException:
                repo.close()
                raise
            return repo
        mirror.parent.mkdir(parents=True, exist_ok=True)
        return porcelain.clone(location, str(mirror), bare=True, checkout=False, errstream=errors)
    except SourceUnavailable:
        raise
    except (NotGitRepository, GitProtocolError, HangupException, OSError, ValueError, KeyError) as exc:
        raise SourceUnavailable(f"cannot read git repository {location!r}: {type(exc).__name__}: {exc}") from exc


def _mirror_refs(repo: Repo, refs: Mapping[Ref, ObjectID | None], symrefs: Mapping[Ref, Ref]) -> None:
    # porcelain.fetch brings the objects but leaves a bare clone's own branches where they were: the
    # mirror is ours alone, so its branches and HEAD are set to the remote's.
    for name, sha in refs.items():
        if sha is not None and name.startswith((b"refs/heads/", b"refs/tags/")):
            repo.refs[name] = sha
    head = symrefs.get(Ref(b"HEAD"))
    head_sha = refs.get(Ref(b"HEAD"))
    if head is not None:
        repo.refs.set_symbolic_ref(Ref(b"HEAD"), head)
    elif head_sha is not None:
        repo.refs[Ref(b"HEAD")] = head_sha


def _branch_commit(repo: Repo, branch: str) -> Commit:
    candidates = [b"HEAD"] if not branch else [f"refs/heads/{branch}".encode(), f"refs/tags/{branch}".encode()]
    for ref in candidates:
        try:
            obj = repo[repo.refs[Ref(ref)]]
        except KeyError:
            continue
        if isinstance(obj, Commit):
            return obj
    raise SourceUnavailable(f"branch {branch or 'HEAD'!r} not found in the repository")


def list_git(repo: Repo, branch: str, patterns: list[str]) -> list[SourceFile]:
    """The matching files of the branch's tree (HEAD when `branch` is empty), sorted by path."""
    commit = _branch_commit(repo, branch)
    store = repo.object_store
    found: list[SourceFile] = []
    for entry in store.iter_tree_contents(commit.tree):
        if entry.path is None or entry.mode is None or entry.sha is None:
            continue
        if entry.mode in (GIT_SYMLINK_MODE, GIT_SUBMODULE_MODE):
            continue
        path = entry.path.decode("utf-8", "replace")
        if not matches(path, patterns):
            continue
        sha = entry.sha

        def read(sha: bytes = sha) -> bytes:
            blob = store[ObjectID(sha)]
            if not isinstance(blob, Blob):
                raise UnreadableFile("not a file")
            return blob.as_raw_string()

        found.append(SourceFile(path=path, read=read, size=-1))
    return sorted(found, key=lambda f: f.path)


def decode_document(path: str, data: bytes) -> tuple[str, str]:
    """(title, text) of a text file; UnreadableFile for binary or non-UTF-8 content."""
    if b"\x00" in data:
        raise UnreadableFile("binary file (contains NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    return document_title(path, text), text


def document_title(path: str, text: str) -> str:
    """The first Markdown '# ' heading or underlined reStructuredText title; else the file name."""
    lines = text.splitlines()[:50]
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("# "):
            return stripped[2:].strip()[:TITLE_MAX]
        following = lines[index + 1].strip() if index + 1 < len(lines) else ""
        if stripped and len(following) >= len(stripped) and set(following) <= set("=-~#*") and following:
            return stripped[:TITLE_MAX]
    return PurePosixPath(path).stem[:TITLE_MAX] or path[:TITLE_MAX]
