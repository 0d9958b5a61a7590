"""The artifact store: uploads stream into a spool file while their SHA-256 is computed, then land
in Django's storage under a content address. The same bytes are stored once."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import IO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.db import IntegrityError, transaction
from rest_framework.parsers import BaseParser

from core import media_types
from core.actors import Actor
from core.audit import audit_append
from core.errors import ApplicationError, PayloadTooLarge
from core.models import Artifact, Workspace

CHUNK = 256 * 1024


def too_large_error() -> PayloadTooLarge:
    return PayloadTooLarge(f"the upload is larger than the limit of {settings.ARTIFACT_MAX_BYTES} bytes")


class Spool:
    """A temporary file that hashes what is written to it and refuses to grow past the size limit.

    Past the limit it deletes itself before raising, so a refused upload leaves nothing behind.
    """

    def __init__(self, limit: int | None = None):
        self.limit = settings.ARTIFACT_MAX_BYTES if limit is None else limit
        directory = Path(settings.FILE_UPLOAD_TEMP_DIR)
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="spool-", dir=directory)
        self.path = Path(name)
        self._file: IO[bytes] = os.fdopen(fd, "wb")
        self._digest = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            self.discard()
            raise too_large_error()
        self._digest.update(chunk)
        self._file.write(chunk)

    def finish(self) -> Spool:
        self._file.close()
        return self

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


def discard_request_spools(request) -> None:
    """Delete the spool files of a request's multipart parts (a consumed spool is gone already)."""
    for spool in getattr(getattr(request, "_request", request), "_upload_spools", ()):
        spool.discard()


def clean_filename(name: str) -> str:
    """The base name of an uploaded file, without control characters (NUL included), 255 at most."""
    base = os.path.basename(name.replace("\\", "/"))
    return "".join(c for c in base if c.isprintable())[:255]


class SpooledUpload(UploadedFile):
    """What a multipart upload becomes: the finished spool, with the part's name and content type."""

    def __init__(self, spool: Spool, name: str, content_type: str):
        super().__init__(file=None, name=name, content_type=content_type, size=spool.size)
        self.spool = spool

    def close(self) -> None:  # the spool's file is already closed; the service owns its lifetime
        return None


class HashingUploadHandler(FileUploadHandler):
    """Multipart file parts go straight into a Spool: hashed while written, never held in memory."""

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.spool = Spool()
        # Every part's spool is known to the request, so whatever the view does not consume (an
        # unexpected part, a part before one that was too large) is deleted when the request ends.
        self.request.__dict__.setdefault("_upload_spools", []).append(self.spool)

    def receive_data_chunk(self, raw_data, start):
        self.spool.write(raw_data)
        return None

    def file_complete(self, file_size):
        return SpooledUpload(self.spool.finish(), self.file_name or "", self.content_type or "")

    def upload_interrupted(self):
        spool = getattr(self, "spool", None)
        if spool is not None:
            spool.discard()


class ArtifactBodyParser(BaseParser):
    """A raw request body of any media type, streamed into a Spool (`curl --data-binary @file`)."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        spool = Spool()
        request = (parser_context or {}).get("request")
        if request is not None:  # deleted when the request ends unless the view stored it
            request._request.__dict__.setdefault("_upload_spools", []).append(spool)
        if stream is not None:
            while chunk := stream.read(CHUNK):
                spool.write(chunk)
        return {"spool": spool.finish(), "declared": media_type or ""}


def storage_key(sha256: str) -> str:
    return f"sha256/{sha256[:2]}/{sha256}"


def artifact_store(
    *,
    workspace: Workspace,
    actor: Actor,
    spool: Spool,
    filename: str = "",
    declared_media_type: str = "",
    known_media_type: str = "",
) -> tuple[Artifact, bool]:
    """Store a finished spool as an artifact of the workspace. Returns (artifact, created).

    Raises ApplicationError when the declared media type does not fit the content. The spool is
    consumed either way. `known_media_type` is for what the service wrote itself (a report's HTML or
    PDF): stored as given, since detection from the bytes only knows the kinds people upload.
    """
    try:
        if spool.size == 0:
            raise ApplicationError("the upload is empty", field="file")
        if known_media_type:
            media_type = known_media_type
        else:
            detected = media_types.detect(spool.path)
            problem = media_types.declaration_error(declared_media_type, detected)
            if problem:
                raise ApplicationError(problem, field="media_type")
            declared = media_types.canonical(declared_media_type)
            undeclared = declared in media_types.UNDECLARED or declared in media_types.CONTAINERS
            media_type = detected if undeclared else declared
        existing = Artifact.objects.filter(workspace=workspace, sha256=spool.sha256).first()
        if existing is not None:
            return existing, False
        key = storage_key(spool.sha256)
        stored_before = default_storage.exists(key)
        _put_blob(key, spool.path)
        try:
            with transaction.atomic():
                artifact = Artifact.objects.create(
                    workspace=workspace,
                    sha256=spool.sha256,
                    size=spool.size,
                    media_type=media_type,
                    filename=clean_filename(filename),
                    storage_key=key,
                    created_by=actor.user,
                )
                audit_append(
                    workspace=workspace,
                    actor=actor,
                    action="artifact.create",
                    target=f"artifact:{artifact.id}",
                    payload={
                        "sha256": artifact.sha256,
                        "size": artifact.size,
                        "media_type": artifact.media_type,
                        "filename": artifact.filename,
                    },
                )
        except IntegrityError:
            # The same bytes arrived concurrently in another request, which won the race.
            return Artifact.objects.get(workspace=workspace, sha256=spool.sha256), False
        except BaseException:
            # Nothing recorded: a blob this call stored and no row refers to is not kept.
            if not stored_before and not Artifact.objects.filter(storage_key=key).exists():
                default_storage.delete(key)
            raise
        return artifact, True
    finally:
        spool.discard()


def artifact_store_bytes(
    *, workspace: Workspace, actor: Actor, data: bytes, filename: str = "", media_type: str = ""
) -> Artifact:
    """Store bytes the service produced itself (job results, reports) as an artifact, with the media
    type it knows them to have (detected from the bytes when not given)."""
    spool = Spool()
    spool.write(data)
    artifact, _ = artifact_store(
        workspace=workspace, actor=actor, spool=spool.finish(), filename=filename, known_media_type=media_type
    )
    return artifact


def _put_blob(key: str, path: Path) -> None:
    """Save the file under its content address unless those bytes are already stored."""
    if default_storage.exists(key):
        return
    with open(path, "rb") as handle:
        saved = default_storage.save(key, File(handle))
    if saved != key:
        # Another writer stored the same bytes between our check and our save.
        default_storage.delete(saved)


def artifact_open(artifact: Artifact) -> IO[bytes]:
    return default_storage.open(artifact.storage_key, "rb")
