"""How the consent commands reach the owner's operations: one protocol, two implementations.

* :class:`DaemonBackend` — the running daemon's owner routes over HTTP. The daemon is
  found from its runtime file ``<home>/daemon.json`` (:mod:`vault.daemon.runtime`),
  whatever port it listens on, and must answer an identity challenge before the bearer
  token from that file is sent to it (THREATS row 34). A file left by a daemon killed with
  -9 is recognised as stale, removed, and the command runs in process.
* :class:`vault.owner.OwnerService` itself — when no daemon runs, the CLI unlocks the vault,
  connects to the chain, brings the ledger index up to date and calls the service in process
  (:func:`vault.owner.opened`: the same index, sync settings and log as ``vault serve``,
  without the daemon's release machinery).

Both raise the same :mod:`vault.errors` types for the same failures: the daemon's error
bodies are mapped back here, so an exit code never depends on which backend answered.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from vault import errors, wire
from vault.config import Settings
from vault.daemon import runtime
from vault.importers.exports import ImportReport
from vault.policy import RuleSet
from vault.records import (
    BackupPublic,
    DamagePublic,
    ForgetPublic,
    ForgetTarget,
    GenresPublic,
    error_from_public,
)
from vault.wire import (
    ApproveResult,
    BalancePublic,
    ClaimResult,
    DenyResult,
    EarningsPublic,
    IdentityPublic,
    LogEntryPublic,
    LoginLinkPublic,
    MatchPreviewBody,
    MatchPreviewPublic,
    PrivacyPublic,
    PublishResult,
    RequestPublic,
    RevokeResult,
    Terms,
    VerifyPublic,
    WithdrawResult,
)

if TYPE_CHECKING:
    from vault.store import Vault

_M = TypeVar("_M", bound=BaseModel)


class OwnerReader(Protocol):
    """What the owner reads without the chain (:class:`vault.owner.OfflineOwner`)."""

    def log(self, limit: int = 100) -> list[LogEntryPublic]: ...
    def verify_log(self) -> VerifyPublic: ...
    def terms(self) -> Terms: ...
    def rules(self) -> RuleSet: ...


class OwnerBackend(Protocol):
    """The owner's operations, as :class:`vault.owner.OwnerService` defines them."""

    def requests(self, status: str = "pending") -> list[RequestPublic]: ...
    def request(self, request_id: int) -> RequestPublic: ...
    def approve(self, request_id: int, *, submit: bool = False) -> ApproveResult: ...
    def deny(self, request_id: int) -> DenyResult: ...
    def revoke(self, request_id: int) -> RevokeResult: ...
    def grants(self) -> list[RequestPublic]: ...
    def earnings(self) -> EarningsPublic: ...
    def balance(self) -> BalancePublic: ...
    def claim(self, ids: list[int] | None = None) -> ClaimResult: ...
    def withdraw(self) -> WithdrawResult: ...
    def terms(self) -> Terms: ...
    def set_terms(self, terms: Terms) -> Terms: ...
    def publish_terms(self, endpoint: str) -> PublishResult: ...
    def rules(self) -> RuleSet: ...
    def set_rules(self, rules: RuleSet) -> RuleSet: ...
    def log(self, limit: int = 100) -> list[LogEntryPublic]: ...
    def verify_log(self) -> VerifyPublic: ...
    def privacy(self) -> PrivacyPublic: ...
    def match_preview(self, body: MatchPreviewBody) -> MatchPreviewPublic: ...


def daemon_url(settings: Settings) -> str:
    """Where the daemon listens: the running one's address from its runtime file, else
    where `vault serve` would listen with these settings."""
    home = Path(settings.home)
    with contextlib.suppress(errors.CorruptFile):
        published = runtime.read(home)
        if published is not None and not runtime.is_stale(home, published):
            return published.url
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"http://{host}:{settings.port}"


def error_from_wire(status: int, body: Any) -> errors.VaultError:
    """The :mod:`vault.errors` type the daemon mapped to this error body."""
    named = error_from_public(body)  # the records routes name the error's class
    if named is not None:
        return named
    try:
        refusal = wire.ErrorPublic.model_validate(body)
    except ValidationError:
        return errors.VaultError(f"the daemon answered HTTP {status} without an error body")
    if refusal.error is wire.Code.UNAUTHORIZED:
        return errors.DaemonUnavailable(
            f"the daemon refused the token in {runtime.RUNTIME_FILE}",
            hint="the daemon was restarted meanwhile; run the command again",
        )
    return wire.error_of(refusal)


#: The identity answer is two short hex strings; a server sending more is not the daemon.
_MAX_IDENTITY_BYTES = 4096


class DaemonBackend:
    """The owner routes of a running daemon, reached through :meth:`connect` (which proves
    the server's identity first). ``transport`` is for tests (ASGITransport)."""

    def __init__(
        self,
        url: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.url = url
        # No token yet, and no redirects ever: the token goes only to the proven server.
        self._http = httpx.Client(
            base_url=url, transport=transport, timeout=timeout, follow_redirects=False
        )

    @classmethod
    def connect(
        cls,
        published: runtime.RuntimeFile,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
        challenge_timeout: float = 5.0,
    ) -> DaemonBackend:
        """The daemon that wrote ``published``, once it has proved it (THREATS row 34).

        :class:`DaemonUnverified` when the server answers but not with the proof: it has
        been sent a nonce and nothing else. :class:`DaemonUnavailable` when nothing answers.
        """
        backend = cls(published.url, transport=transport, timeout=timeout)
        try:
            backend._prove_identity(published, timeout=challenge_timeout)
        except BaseException:
            backend.close()
            raise
        backend._http.headers["Authorization"] = f"Bearer {published.token.reveal()}"
        return backend

    def _prove_identity(self, published: runtime.RuntimeFile, *, timeout: float) -> None:
        nonce = secrets.token_bytes(runtime.NONCE_BYTES)
        try:
            with self._http.stream(
                "POST", "/v1/identity", json={"nonce": "0x" + nonce.hex()}, timeout=timeout
            ) as response:
                status = response.status_code
                raw = b""
                for chunk in response.iter_bytes():
                    raw += chunk
                    if len(raw) > _MAX_IDENTITY_BYTES:
                        break
        except httpx.HTTPError as error:
            raise errors.DaemonUnavailable(
                f"the daemon (pid {published.pid}) holds the vault but does not answer at "
                f"{self.url} ({type(error).__name__})",
                hint="wait for it to finish starting, or stop it and run the command again",
            ) from None
        if not (status == 200 and len(raw) <= _MAX_IDENTITY_BYTES
                and _proves(raw, published, nonce)):
            raise errors.DaemonUnverified(
                f"the server at {self.url} did not prove it is this vault's daemon;"
                " it was sent no token"
            )

    def __repr__(self) -> str:
        return f"DaemonBackend({self.url})"

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise errors.DaemonUnavailable(
                f"the daemon at {self.url} did not answer ({type(error).__name__})"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            raise error_from_wire(response.status_code, body)
        return body

    def _one(self, model: type[_M], method: str, path: str, **kwargs: Any) -> _M:
        return model.model_validate(self._call(method, path, **kwargs))

    def _many(self, model: type[_M], path: str, **kwargs: Any) -> list[_M]:
        return TypeAdapter(list[model]).validate_python(  # type: ignore[valid-type]
            self._call("GET", path, **kwargs)
        )

    def health(self) -> dict[str, Any]:
        body = self._call("GET", "/v1/health")
        return body if isinstance(body, dict) else {}

    def requests(self, status: str = "pending") -> list[RequestPublic]:
        return self._many(RequestPublic, "/v1/owner/requests", params={"status": status})

    def request(self, request_id: int) -> RequestPublic:
        return self._one(RequestPublic, "GET", f"/v1/owner/requests/{request_id}")

    def approve(self, request_id: int, *, submit: bool = False) -> ApproveResult:
        return self._one(
            ApproveResult, "POST", f"/v1/owner/requests/{request_id}/approve",
            json={"submit": submit},
        )

    def deny(self, request_id: int) -> DenyResult:
        return self._one(DenyResult, "POST", f"/v1/owner/requests/{request_id}/deny")

    def revoke(self, request_id: int) -> RevokeResult:
        return self._one(RevokeResult, "POST", f"/v1/owner/grants/{request_id}/revoke")

    def grants(self) -> list[RequestPublic]:
        return self._many(RequestPublic, "/v1/owner/grants")

    def earnings(self) -> EarningsPublic:
        return self._one(EarningsPublic, "GET", "/v1/owner/earnings")

    def balance(self) -> BalancePublic:
        return self._one(BalancePublic, "GET", "/v1/owner/balance")

    def claim(self, ids: list[int] | None = None) -> ClaimResult:
        return self._one(ClaimResult, "POST", "/v1/owner/claim", json={"ids": ids})

    def withdraw(self) -> WithdrawResult:
        return self._one(WithdrawResult, "POST", "/v1/owner/withdraw")

    def terms(self) -> Terms:
        return self._one(Terms, "GET", "/v1/owner/terms")

    def set_terms(self, terms: Terms) -> Terms:
        return self._one(Terms, "PUT", "/v1/owner/terms", json=terms.model_dump())

    def publish_terms(self, endpoint: str) -> PublishResult:
        return self._one(
            PublishResult, "POST", "/v1/owner/terms/publish", json={"endpoint": endpoint}
        )

    def rules(self) -> RuleSet:
        return self._one(RuleSet, "GET", "/v1/owner/rules")

    def set_rules(self, rules: RuleSet) -> RuleSet:
        return self._one(RuleSet, "PUT", "/v1/owner/rules", json=rules.model_dump())

    def log(self, limit: int = 100) -> list[LogEntryPublic]:
        return self._many(LogEntryPublic, "/v1/owner/log", params={"limit": limit})

    def verify_log(self) -> VerifyPublic:
        return self._one(VerifyPublic, "GET", "/v1/owner/log/verify")

    def privacy(self) -> PrivacyPublic:
        return self._one(PrivacyPublic, "GET", "/v1/owner/privacy")

    def match_preview(self, body: MatchPreviewBody) -> MatchPreviewPublic:
        return self._one(MatchPreviewPublic, "POST", "/v1/owner/match/preview",
                         content=body.model_dump_json(exclude_unset=True),
                         headers={"content-type": "application/json"})

    # --- the owner's records (vault.records.RecordsService over HTTP) ---

    def import_export(
        self, path: Path, *, kind: str | None, profile: str | None, all_profiles: bool
    ) -> ImportReport:
        return self._one(ImportReport, "POST", "/v1/owner/records/import", json={
            "path": str(path.resolve()), "kind": kind, "profile": profile,
            "all_profiles": all_profiles})

    def record_mood(self, mood: str, *, at: int | None) -> None:
        self._call("POST", "/v1/owner/records/mood", json={"mood": mood, "at": at})

    def facts(self) -> dict[str, Any]:
        return TypeAdapter(dict[str, Any]).validate_python(
            self._call("GET", "/v1/owner/records/facts"))

    def set_fact(self, name: str, value: Any) -> None:
        self._call("PUT", f"/v1/owner/records/facts/{name}", json={"value": value})

    def stats(self) -> dict[str, Any]:
        return TypeAdapter(dict[str, Any]).validate_python(
            self._call("GET", "/v1/owner/records/stats"))

    def check(self) -> list[DamagePublic]:
        return self._many(DamagePublic, "/v1/owner/records/check")

    def genres(self) -> GenresPublic:
        return self._one(GenresPublic, "GET", "/v1/owner/records/genres")

    def teach_genre(self, kind: str, name: str, genre: str | None) -> GenresPublic:
        return self._one(GenresPublic, "PUT", "/v1/owner/records/genres",
                         json={"kind": kind, "name": name, "genre": genre})

    def preview(self, names: list[str], *, released: bool, now: int) -> dict[str, Any]:
        return TypeAdapter(dict[str, Any]).validate_python(self._call(
            "POST", "/v1/owner/records/preview",
            json={"scopes": names, "released": released, "at": now}))

    def forget(self, target: ForgetTarget, name: str, *, dry_run: bool) -> ForgetPublic:
        return self._one(ForgetPublic, "POST", "/v1/owner/records/forget",
                         json={"target": target, "name": name, "dry_run": dry_run})

    def export_backup(self, path: Path, passphrase: str) -> BackupPublic:
        return self._one(BackupPublic, "POST", "/v1/owner/records/export",
                         json={"path": str(path.resolve()), "passphrase": passphrase})

    def login_link(self) -> str:
        """A one-time login link to the daemon's dashboard (daemon only: ``vault open``)."""
        link = self._one(LoginLinkPublic, "POST", "/v1/owner/dashboard/login")
        return self.url + link.path


def _proves(raw: bytes, published: runtime.RuntimeFile, nonce: bytes) -> bool:
    """Whether an identity answer names this vault's owner and carries the HMAC of
    ``nonce`` under the published token (compared in constant time)."""
    try:
        answer = IdentityPublic.model_validate_json(raw)
    except ValueError:
        return False
    # The owner is public; only the proof needs a constant-time compare. Both are checked
    # whatever the first one's outcome, so a failure takes the same path either way.
    same_owner = answer.owner.lower() == published.owner.lower()
    proven = runtime.proof_matches(
        published.token, nonce, published.owner, bytes.fromhex(answer.proof[2:])
    )
    return same_owner and proven


def running_daemon(settings: Settings, *, timeout: float = 5.0) -> DaemonBackend | None:
    """A backend for the daemon serving this home, or None when no daemon runs.

    The daemon is the one its runtime file names, and only once it has answered the
    identity challenge — never just "something listens on the port". A runtime file left by
    a daemon that is gone (its pid ended, or nothing holds the vault's lock) is removed.
    """
    home = Path(settings.home)
    try:
        published = runtime.read(home)
    except errors.CorruptFile as error:
        if runtime.vault_in_use(home):
            raise errors.DaemonUnavailable(
                str(error), hint="stop the daemon, then start it again with `vault serve`"
            ) from None
        runtime.discard(home, stale=None)
        return None
    if published is None:
        return None
    if runtime.is_stale(home, published):
        runtime.discard(home, stale=published)
        return None
    return DaemonBackend.connect(published, challenge_timeout=timeout)


@contextmanager
def open_backend(
    settings: Settings, passphrase: Any, *, require_daemon: bool = False
) -> Iterator[OwnerBackend]:
    """The running daemon if there is one, else the vault opened in this process.

    ``passphrase`` is a callable returning it, so that it is asked for only when needed.
    ``require_daemon`` turns "no daemon" into :class:`DaemonUnavailable`.
    """
    with _daemon_if_running(settings, require_daemon=require_daemon) as daemon:
        if daemon is not None:
            yield daemon
            return
    with _in_process(settings, passphrase()) as service:
        yield service


@contextmanager
def open_reader(
    settings: Settings, passphrase: Any, *, require_daemon: bool = False
) -> Iterator[OwnerReader]:
    """:func:`open_backend` for what needs no chain (the log, its verification, terms,
    rules): without a daemon the vault is opened with no chain at all, so these work while
    the chain is unreachable."""
    with _daemon_if_running(settings, require_daemon=require_daemon) as daemon:
        if daemon is not None:
            yield daemon
            return
    from vault.owner import opened_offline

    with _unlocked(settings, passphrase()) as vault, opened_offline(vault) as reader:
        yield reader


@contextmanager
def _daemon_if_running(
    settings: Settings, *, require_daemon: bool
) -> Iterator[DaemonBackend | None]:
    daemon = running_daemon(settings)
    if daemon is None:
        if require_daemon:
            raise errors.DaemonUnavailable(
                f"no vault daemon answers for the vault in {settings.home}"
            )
        yield None
        return
    try:
        yield daemon
    finally:
        daemon.close()


@contextmanager
def _unlocked(settings: Settings, passphrase: str) -> Iterator[Vault]:
    # Imported here: only the no-daemon path needs the store.
    from vault.store import Vault

    try:
        vault = Vault.open(Path(settings.home), passphrase)
    except errors.VaultBusy:
        raise errors.DaemonUnavailable(
            f"another process is using the vault in {settings.home}, and no daemon answers",
            hint="wait for the other command (or a daemon still starting) and run this again",
        ) from None
    try:
        yield vault
    finally:
        vault.close()


@contextmanager
def _in_process(settings: Settings, passphrase: str) -> Iterator[OwnerBackend]:
    # Imported here: only the no-daemon path needs the chain and the owner service.
    from vault.eth.chain import open_chain
    from vault.owner import opened

    with _unlocked(settings, passphrase) as vault:
        chain = open_chain(settings)
        try:
            with opened(settings, vault, chain) as service:
                yield service
        finally:
            chain.close()
