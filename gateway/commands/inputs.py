"""HL7 v2 input for the CLI commands: PATH arguments (`-` = stdin), each split into messages.

A PATH names what the operator chose; inside a directory PATH only regular files that really lie in
it are read: symbolic links (to files or directories) are skipped with a note on stderr, so a link
dropped into an ingest folder cannot pull in a file from elsewhere.
"""
from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from adapters.hl7v2.batch import ChunkTooLarge, iter_messages


@dataclass(frozen=True)
class InputMessage:
    """One message from one input: where it came from and its bytes (or why it was refused)."""

    source: str  # file name, or '<stdin>'
    index: int  # 0-based position of the message in its source
    payload: bytes | None
    too_large: ChunkTooLarge | None = None

    @property
    def where(self) -> str:
        return f"{self.source}: message {self.index + 1}"


def iter_inputs(paths: tuple[str, ...], *, max_message_bytes: int | None = None) -> Iterator[InputMessage]:
    """Stream the messages of every PATH in order; a directory contributes its files sorted by name."""
    for path in paths:
        if path == "-":
            yield from _messages("<stdin>", sys.stdin.buffer, max_message_bytes)
            continue
        target = Path(path)
        files = _files_within(target) if target.is_dir() else [target]
        for file in files:
            with file.open("rb") as handle:
                yield from _messages(str(file), handle, max_message_bytes)


def _files_within(directory: Path) -> list[Path]:
    """The regular files under `directory`, sorted, without following a symbolic link anywhere."""
    found: list[Path] = []
    for root, dirs, names in os.walk(directory, followlinks=False):
        for name in sorted(dirs):
            if os.path.islink(os.path.join(root, name)):
                print(f"{os.path.join(root, name)}: skipped: symbolic link to a directory, not followed", file=sys.stderr)
        for name in names:
            file = Path(root, name)
            mode = file.lstat().st_mode
            if stat.S_ISLNK(mode):
                print(f"{file}: skipped: symbolic link, not followed", file=sys.stderr)
            elif stat.S_ISREG(mode):
                found.append(file)
    return sorted(found)


def _messages(source: str, handle, max_message_bytes: int | None) -> Iterator[InputMessage]:
    kwargs = {} if max_message_bytes is None else {"max_message_bytes": max_message_bytes}
    for chunk in iter_messages(handle, **kwargs):
        if isinstance(chunk, ChunkTooLarge):
            yield InputMessage(source, chunk.index, None, chunk)
        else:
            yield InputMessage(source, chunk.index, chunk.payload)
