"""Owner routes for the owner's own records (``/v1/owner/records/…``), so that every
`vault` command works while `vault serve` holds the vault: import, mood, facts, genres,
stats, check, preview, backup and forget (:class:`vault.records.RecordsService`).

Writes tell the daemon (``Daemon.records_changed``): the next release and the next match
carry what was just imported, and no longer what was just forgotten (a forget is logged in
the daemon's access log).
Errors answer :class:`vault.wire.ErrorPublic` with ``vault_error`` naming the error class,
so the CLI exits exactly as it would without a daemon. An import names a file on this machine: the
daemon runs as the owner and reads it as the CLI would (the path is made absolute by the
CLI), and so does a forgotten file; their contents never travel over HTTP.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from vault import errors
from vault.daemon.deps import DaemonDep
from vault.daemon.guard import require_token
from vault.daemon.routes._errors import errors_for
from vault.importers.exports import ImportReport
from vault.records import (
    BackupPublic,
    DamagePublic,
    ForgetPublic,
    ForgetTarget,
    GenresPublic,
    RecordsService,
    error_public,
)
from vault.store import Vault

router = APIRouter(
    prefix="/v1/owner/records",
    tags=["owner"],
    dependencies=[Depends(require_token)],
    responses=errors_for(400, 401),
)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImportBody(_Body):
    path: str = Field(min_length=1, max_length=4096, description="an absolute path")
    kind: str | None = None
    profile: str | None = None
    all_profiles: bool = False


class MoodBody(_Body):
    mood: str
    at: int | None = None


class FactBody(_Body):
    value: Any


class GenreBody(_Body):
    kind: Literal["artist", "channel", "series"]
    name: str = Field(min_length=1, max_length=200)
    genre: str | None = Field(default=None, max_length=40)


class PreviewBody(_Body):
    scopes: list[str] = Field(min_length=1, max_length=64)
    released: bool = False
    at: int


class ForgetBody(_Body):
    target: ForgetTarget
    name: str = Field(min_length=1, max_length=4096,
                      description="a source, a fact, or a file's absolute path")
    dry_run: bool = False


class ExportBody(_Body):
    path: str = Field(min_length=1, max_length=4096)
    passphrase: str = Field(repr=False)


def records_service(daemon: DaemonDep) -> RecordsService:
    if not isinstance(daemon.vault, Vault):
        raise errors.VaultStateError("this daemon holds no vault store")
    return RecordsService(daemon.vault, changed=daemon.records_changed, log=daemon.audit)


RecordsDep = Annotated[RecordsService, Depends(records_service)]


def _absolute(path: str) -> Path:
    where = Path(path)
    if not where.is_absolute():
        raise errors.InputError("the daemon takes absolute paths only")
    return where


def _answer(run: Any) -> Any:
    """``run()``'s result, or its VaultError as an error body naming its class."""
    try:
        return run()
    except errors.VaultError as error:
        public = error_public(error)
        return JSONResponse(
            public.model_dump(mode="json", exclude_none=True), status_code=public.error.status
        )


@router.post("/import", response_model=ImportReport)
def import_export(records: RecordsDep, body: ImportBody) -> Any:
    return _answer(lambda: records.import_export(
        _absolute(body.path), kind=body.kind, profile=body.profile,
        all_profiles=body.all_profiles))


@router.post("/mood")
def record_mood(records: RecordsDep, body: MoodBody) -> Any:
    return _answer(lambda: records.record_mood(body.mood, at=body.at))


@router.get("/facts")
def facts(records: RecordsDep) -> Any:
    return _answer(records.facts)


@router.put("/facts/{name}")
def set_fact(records: RecordsDep, name: str, body: FactBody) -> Any:
    return _answer(lambda: records.set_fact(name, body.value))


@router.get("/stats")
def stats(records: RecordsDep) -> Any:
    return _answer(records.stats)


@router.get("/check", response_model=list[DamagePublic])
def check(records: RecordsDep) -> Any:
    return _answer(records.check)


@router.get("/genres", response_model=GenresPublic)
def genres(records: RecordsDep) -> Any:
    return _answer(records.genres)


@router.put("/genres", response_model=GenresPublic)
def teach_genre(records: RecordsDep, body: GenreBody) -> Any:
    return _answer(lambda: records.teach_genre(body.kind, body.name, body.genre))


@router.post("/preview")
def preview(records: RecordsDep, body: PreviewBody) -> Any:
    return _answer(lambda: records.preview(body.scopes, released=body.released, now=body.at))


@router.post("/export", response_model=BackupPublic)
def export_backup(records: RecordsDep, body: ExportBody) -> Any:
    return _answer(lambda: records.export_backup(_absolute(body.path), body.passphrase))


@router.post("/forget", response_model=ForgetPublic, responses=errors_for(404))
def forget(records: RecordsDep, body: ForgetBody) -> Any:
    def run() -> ForgetPublic:
        name = str(_absolute(body.name)) if body.target == "file" else body.name
        return records.forget(body.target, name, dry_run=body.dry_run)

    return _answer(run)
