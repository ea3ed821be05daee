"""The dashboard's *Terms and rules* page: the owner's terms and auto-approval rules, viewed,
edited and published (docs/dashboard.md). The session, CSRF and rendering are
`routes/dashboard`'s."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from vault import errors, scopes
from vault.daemon.deps import OwnerDep
from vault.daemon.guard import FORM_PREFIX
from vault.daemon.routes.dashboard import FormDep, SessionDep, render, see_other, sentence
from vault.owner import OwnerService
from vault.owner.state import PUBLISH
from vault.policy import Rule, RuleSet
from vault.wire import Terms, code_of

router = APIRouter(include_in_schema=False)
T = TypeVar("T")

_AMOUNT = re.compile(r"^\s*[0-9]+(\.[0-9]+)?\s*$")


def _wei(text: str, what: str) -> int:
    """An amount typed in ETH (``0.0001``) in wei."""
    if not _AMOUNT.match(text):
        raise errors.InputError(f"{what} {text.strip()!r} is not an amount in ETH (e.g. 0.0001)")
    wei = Decimal(text.strip()).scaleb(18)
    if wei != wei.to_integral_value():
        raise errors.InputError(f"{what} {text.strip()!r} is finer than 1 wei")
    return int(wei)


def _seconds(text: str, what: str) -> int:
    """A duration typed in days (``30``, ``0.5``) in whole seconds, at least one."""
    if not _AMOUNT.match(text):
        raise errors.InputError(f"{what} {text.strip()!r} is not a number of days (e.g. 30)")
    seconds = int((Decimal(text.strip()) * 86_400).to_integral_value())  # the page's own 0.5
    if seconds < 1:
        raise errors.InputError(f"{what} must be longer than zero")
    return seconds


def _whole(text: str, what: str) -> int:
    if not text.strip().isdigit():
        raise errors.InputError(f"{what} {text.strip()!r} is not a whole number")
    return int(text)


def _checked(form: dict[str, str], prefix: str) -> list[str]:
    """The scopes ticked in a group of checkboxes named ``<prefix>:<scope>``, in catalog
    order (an unknown name is not in the catalog, so never returned)."""
    return [entry.name for entry in scopes.CATALOG if form.get(f"{prefix}:{entry.name}") == "on"]


def _valid(model: Callable[..., T], what: str, **values: Any) -> T:
    try:
        return model(**values)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise errors.InputError(f"invalid {what}: {where}: {first['msg']}") from None


def _published(owner: OwnerService) -> dict[str, Any] | None:
    """The newest publication the access log holds (its endpoint and terms hash)."""
    newest = owner.state.audit.entries(limit=1, kind=PUBLISH)
    return dict(newest[-1].detail) if newest else None


def _terms_page(request: Request, owner: OwnerService, *, status: int = 200,
                saved: str = "", error: str = "") -> Response:
    public = owner.public_terms()
    return render(
        request, "terms.html", status=status, terms=public.terms, rules=owner.rules(),
        terms_hash=public.terms_hash, published=_published(owner),
        endpoint=public.endpoint or f"{request.url.scheme}://{request.url.netloc}",
        catalog=scopes.CATALOG, saved=saved, error=error,
    )


#: The notice each save shows (``/terms?saved=…``); anything else shows none.
SAVED = {"terms": "Your terms are saved. Publish them to put their hash on the ledger.",
         "rules": "Your auto-approval rules are saved.",
         "published": "Published: companies can now check your terms against the ledger."}


@router.get("/terms")
def terms_page(
    request: Request, owner: OwnerDep, _: SessionDep,
    saved: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    return _terms_page(request, owner, saved=SAVED.get(saved, ""))


def _terms_action(change: Callable[[OwnerService, dict[str, str]], object], saved: str
                  ) -> Callable[..., Awaitable[Response]]:
    """A Terms-and-rules form: ``change`` runs (in a thread: it may wait on the chain), the
    owner lands on the page with its notice; a refusal shows the page and its one line."""
    async def act(request: Request, owner: OwnerDep, form: FormDep) -> Response:
        try:
            await run_in_threadpool(change, owner, form)
        except errors.VaultError as error:
            return _terms_page(request, owner, status=code_of(error).status,
                               error=sentence(error))
        return see_other(f"/terms?saved={saved}")
    return act


def _set_terms(owner: OwnerService, form: dict[str, str]) -> None:
    owner.set_terms(_valid(
        Terms, "terms",
        min_price_per_day_wei=_wei(form.get("min_price_per_day", ""), "The floor price"),
        max_duration_seconds=_seconds(form.get("max_duration_days", ""), "The longest grant"),
        scopes_offered=_checked(form, "offer"), scopes_never=_checked(form, "never"),
        note=form.get("note", ""),
        matches_per_epoch=_whole(form.get("matches_per_epoch", ""), "Matches per epoch"),
    ))


def _publish(owner: OwnerService, form: dict[str, str]) -> None:
    endpoint = form.get("endpoint", "").strip()
    if not re.fullmatch(r"https?://[^\s]{1,200}", endpoint):
        raise errors.InputError("the endpoint must be an http:// or https:// URL "
                                "(your vault's address, as companies reach it)")
    owner.publish_terms(endpoint)


def _add_rule(owner: OwnerService, form: dict[str, str]) -> None:
    companies = form.get("companies", "").split()
    limit = form.get("max_releases", "").strip()
    rule = _valid(
        Rule, "rule", name=form.get("name", "").strip(), scopes=_checked(form, "scope"),
        min_price_per_day_wei=_wei(form.get("min_price_per_day", ""), "The rule's floor price"),
        min_duration_seconds=_seconds(form.get("min_duration_days", ""), "The shortest grant"),
        max_duration_seconds=_seconds(form.get("max_duration_days", ""), "The longest grant"),
        companies_allow=companies or None,
        max_releases_at_most=_whole(limit, "The release limit") if limit else None,
    )
    if not rule.scopes:
        raise errors.InputError("a rule needs at least one scope: tick the scopes it approves")
    current = owner.rules()
    owner.set_rules(RuleSet(rules=[*current.rules, rule], never_share=current.never_share))


def _remove_rule(owner: OwnerService, form: dict[str, str]) -> None:
    current = owner.rules()
    index = _whole(form.get("index", ""), "The rule number")
    if index >= len(current.rules) or current.rules[index].name != form.get("name"):
        raise errors.NotFound("that rule is no longer there: the rules changed since this "
                              "page was shown; reload it")
    kept = [rule for i, rule in enumerate(current.rules) if i != index]
    owner.set_rules(RuleSet(rules=kept, never_share=current.never_share))


def _set_never_share(owner: OwnerService, form: dict[str, str]) -> None:
    current = owner.rules()
    owner.set_rules(RuleSet(rules=current.rules, never_share=_checked(form, "rule-never")))


for _path, _change, _saved in (
    ("terms", _set_terms, "terms"), ("terms/publish", _publish, "published"),
    ("rules", _add_rule, "rules"), ("rules/remove", _remove_rule, "rules"),
    ("rules/never", _set_never_share, "rules"),
):
    router.add_api_route(FORM_PREFIX + _path, _terms_action(_change, _saved), methods=["POST"])
