"""The dashboard's *My data* page: sources, counts and last imports, an export uploaded and
imported with the same code as `vault import`, what each scope would release, and forgetting
a source (docs/dashboard.md). The session, CSRF and rendering are `routes/dashboard`'s."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from vault import audit, errors, scopes
from vault.daemon import uploads
from vault.daemon.deps import OwnerDep
from vault.daemon.disclosures import shown
from vault.daemon.guard import FORM_PREFIX
from vault.daemon.routes.dashboard import (
    LOG_WINDOW,
    UPLOAD_MAX_BYTES,
    UPLOAD_PATH,
    FormDep,
    SessionDep,
    checked_upload,
    refusal_page,
    render,
    sentence,
)
from vault.daemon.routes.records import RecordsDep
from vault.export_kinds import KINDS
from vault.importers.exports import ImportReport
from vault.owner import OwnerService
from vault.records import ForgetPublic, RecordsService
from vault.wire import Code, code_of

router = APIRouter(include_in_schema=False)

_SAFE_NAME = re.compile(r"[^\w.\- ]")


def _last_imports(owner: OwnerService) -> dict[str, float]:
    """When each source last got an import, here or by `vault import` (from the access log)."""
    last: dict[str, float] = {}
    for entry in owner.state.audit.entries(limit=LOG_WINDOW, kind=audit.IMPORT):
        for source in entry.detail.get("sources", ()):
            last[source] = max(last.get(source, 0.0), entry.at)
    return last


def _data_page(request: Request, records: RecordsService, owner: OwnerService, *,
               status: int = 200, report: ImportReport | None = None,
               forgotten: ForgetPublic | None = None, error: str = "") -> Response:
    names = [entry.name for entry in scopes.CATALOG]
    now = int(owner.state.clock())
    released = records.preview(names, released=True, now=now)
    truth = records.preview(names, released=False, now=now)
    previews = [
        (row, shown(row["scope"], row["value"], true_row["value"]))
        for row, true_row in zip(released["scopes"], truth["scopes"], strict=True)
    ]
    return render(
        request, "data.html", status=status, stats=records.stats(), previews=previews,
        coverage=released["coverage"], last_import=_last_imports(owner), report=report,
        forgotten=forgotten, error=error, kinds=KINDS, max_bytes=UPLOAD_MAX_BYTES,
        upload_path=UPLOAD_PATH,
    )


@router.get("/data")
async def data_page(
    request: Request, records: RecordsDep, owner: OwnerDep, _: SessionDep
) -> Response:
    # async on purpose, as the company page: derived values are read on the event loop.
    return _data_page(request, records, owner)


def _import_upload(records: RecordsService, owner: OwnerService, upload: uploads.Upload
                   ) -> ImportReport:
    """Import the uploaded export with the same code as `vault import`: written to a
    private folder in the vault's home (0700, the file 0600) for as long as the import
    reads it. One transaction: a malformed or mislabelled export stores nothing."""
    kind = upload.fields.get("kind") or None
    if kind is not None and kind not in KINDS:
        raise errors.ExportKindMismatch(f"{kind!r} is not an export kind vault reads")
    name = _SAFE_NAME.sub("_", upload.filename.replace("\\", "/").rsplit("/", 1)[-1])[-100:]
    with tempfile.TemporaryDirectory(dir=owner.state.vault.home, prefix=".upload-") as folder:
        path = Path(folder) / (name.lstrip(".") or "upload")
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
            out.write(upload.content)
        return records.import_export(
            path, kind=kind, profile=upload.fields.get("profile", "").strip() or None,
            all_profiles=upload.fields.get("all_profiles") == "on",
        )


@router.post(UPLOAD_PATH)
async def import_upload(request: Request, records: RecordsDep, owner: OwnerDep) -> Response:
    try:
        upload = await checked_upload(request)
        report = await run_in_threadpool(_import_upload, records, owner, upload)
    except errors.VaultError as error:
        status = (Code.TOO_LARGE.status if isinstance(error, uploads.UploadTooLarge)
                  else code_of(error).status)
        return _data_page(request, records, owner, status=status,
                          error=f"Nothing was imported: {sentence(error)}")
    return _data_page(request, records, owner, report=report)


SourceName = Annotated[str, Query(min_length=1, max_length=100)]


@router.get("/data/forget")
async def confirm_forget(
    request: Request, records: RecordsDep, _: SessionDep, source: SourceName
) -> Response:
    try:
        would = records.forget("source", source, dry_run=True)
    except errors.VaultError as error:
        return refusal_page(request, error)
    return render(request, "confirm_forget.html", source=source, would=would)


@router.post(FORM_PREFIX + "data/forget")
async def forget_source(
    request: Request, records: RecordsDep, owner: OwnerDep, form: FormDep
) -> Response:
    """`vault forget source NAME`: the same RecordsService call (logged, re-derived, the
    DerivedCache cleared)."""
    try:
        forgotten = await run_in_threadpool(
            lambda: records.forget("source", form.get("source", ""), dry_run=False))
    except errors.VaultError as error:
        return _data_page(request, records, owner, status=code_of(error).status,
                          error=f"Nothing was forgotten: {sentence(error)}")
    return _data_page(request, records, owner, forgotten=forgotten)
