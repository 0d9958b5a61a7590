"""Detect what a file is from its bytes, and check it against what the uploader declared."""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import lzma
import zipfile
import zlib
from pathlib import Path

CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
SKOPS = "application/x-skops"
JOBLIB = "application/x-joblib"
PICKLE = "application/x-pickle"
JSON = "application/json"
TEXT = "text/plain"
ZIP = "application/zip"
GZIP = "application/gzip"
BINARY = "application/octet-stream"

ALIASES = {
    "application/csv": CSV,
    "text/x-csv": CSV,
    "application/x-parquet": PARQUET,
    "application/parquet": PARQUET,
    "application/vnd.skops": SKOPS,
    "application/python-pickle": PICKLE,
    "application/x-python-pickle": PICKLE,
    "application/zip-compressed": ZIP,
    "application/x-zip-compressed": ZIP,
    "application/x-gzip": GZIP,
}
# Pickle and uncompressed joblib files are the same byte stream; either declaration fits either.
COMPATIBLE = {frozenset({PICKLE, JOBLIB}), frozenset({CSV, TEXT})}
# Declarations that say nothing about the content.
UNDECLARED = {"", BINARY, "multipart/form-data", "application/x-www-form-urlencoded"}
# A file declared only as compressed is stored as what it holds (a gzip-compressed CSV is a CSV,
# which the table reader decompresses).
CONTAINERS = {GZIP}

_PICKLE_PROTOCOLS = {bytes([0x80, p]) for p in range(2, 6)}
_HEAD_BYTES = 64 * 1024


def canonical(media_type: str) -> str:
    base = media_type.split(";", 1)[0].strip().lower()
    return ALIASES.get(base, base)


def detect(path: Path) -> str:
    """The media type of the file at `path`, judged from its content alone."""
    with open(path, "rb") as handle:
        head = handle.read(_HEAD_BYTES)
        handle.seek(0, io.SEEK_END)
        size = handle.tell()
        tail = b""
        if size >= 8:
            handle.seek(-4, io.SEEK_END)
            tail = handle.read(4)
    if head.startswith(b"PAR1") and tail == b"PAR1":
        return PARQUET
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(path)
    if head[:2] in _PICKLE_PROTOCOLS:
        return JOBLIB if b"joblib" in head else PICKLE
    if _is_compressed_pickle(head):
        return JOBLIB
    if head.startswith(b"\x1f\x8b"):
        return _gzip_kind(path)
    text = _as_text(head, truncated=size > len(head))
    if text is None:
        return BINARY
    stripped = text.lstrip()
    if stripped[:1] in ("{", "[") and size <= len(head):
        try:
            json.loads(text)
            return JSON
        except ValueError:
            pass
    return CSV if _looks_like_csv(text) else TEXT


def _gzip_kind(path: Path) -> str:
    """CSV (or plain text) when the gzip file's first 64 KiB decompress to it; otherwise GZIP. Only
    that much is decompressed, whatever the file would grow to."""
    try:
        with gzip.open(path, "rb") as stream:
            inner = stream.read(_HEAD_BYTES + 1)
    except (OSError, EOFError, zlib.error):
        return BINARY
    text = _as_text(inner[:_HEAD_BYTES], truncated=len(inner) > _HEAD_BYTES)
    if text is None:
        return GZIP
    return CSV if _looks_like_csv(text) else TEXT


def _zip_kind(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except zipfile.BadZipFile:
        return BINARY
    # skops.io writes a zip with its schema.json at the top level.
    return SKOPS if "schema.json" in names else ZIP


def _is_compressed_pickle(head: bytes) -> bool:
    """joblib's compressed formats (zlib, gzip, bz2, xz, lzma) wrapping a pickle stream."""
    openers = {
        b"\x78": lambda data: zlib.decompressobj().decompress(data, 64),
        b"\x1f\x8b": lambda data: gzip.GzipFile(fileobj=io.BytesIO(data)).read(64),
        b"BZh": lambda data: bz2.BZ2Decompressor().decompress(data, 64),
        b"\xfd7zXZ": lambda data: lzma.LZMADecompressor().decompress(data, 64),
        b"\x5d\x00\x00": lambda data: lzma.LZMADecompressor().decompress(data, 64),
    }
    for magic, open_ in openers.items():
        if head.startswith(magic):
            try:
                inner = open_(head)
            except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError):
                return False
            return inner[:2] in _PICKLE_PROTOCOLS
    return False


def _as_text(head: bytes, *, truncated: bool) -> str | None:
    if b"\x00" in head:
        return None
    if truncated:
        # Drop the last, probably cut, line (and any cut multi-byte character with it).
        head = head[: head.rfind(b"\n") + 1] or head
    try:
        return head.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def _looks_like_csv(text: str) -> bool:
    """At least two columns, with the same number of fields on every sampled line."""
    lines = [line for line in text.splitlines()[:200] if line.strip()]
    if not lines:
        return False
    for delimiter in (",", ";", "\t", "|"):
        if delimiter not in lines[0]:
            continue
        try:
            widths = {len(row) for row in csv.reader(lines, delimiter=delimiter)}
        except csv.Error:
            continue
        if len(widths) == 1 and widths.pop() >= 2:
            return True
    return False


def declaration_error(declared: str, detected: str) -> str | None:
    """None when `declared` fits the content, else a sentence that says why not."""
    declared = canonical(declared)
    if declared in UNDECLARED or declared == detected or frozenset({declared, detected}) in COMPATIBLE:
        return None
    if declared in CONTAINERS and detected in (CSV, TEXT):
        return None
    if declared == SKOPS and detected == PICKLE:
        return (
            f"declared as {SKOPS} but the content is {PICKLE}: save the model with skops.io.dump "
            "(pickle and joblib models run only where the operator has allowed them, in a sandbox)"
        )
    return f"declared as {declared} but the content is {detected}"
