"""GET /admin/accounts, GET/PUT /admin/accounts/{id}: the accounts' profiles in force, and a change of one.

A profile is read from the ``accounts`` read model (the latest ``account.configured``). A PUT takes the profile as
JSON with the keys of an ``[[account]]`` table of ``accounts.toml``, validates it exactly as the file is validated
(every problem one line naming the account and the field; nothing is written while there is one), and records it
as ``account.configured`` (source ``admin``), guarded by the account's last configuration; every service follows
the log, so the change reaches them without a restart.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path, status
from fastapi.responses import JSONResponse

from shared.accounts import AccountProfile, AccountsError, decode_profile, profile_digest, validate_document
from shared.accounts.book import publish_configured, read_book
from shared.bus import WrongSequence
from shared.events import ACCOUNT_PATTERN
from shared.events.subjects import AGGREGATES
from shared.flags import SPECS, parse_value

from ..deps import AdminActor, GatewayDep
from ..schemas import AccountProblems, AccountSaved, AccountSummary, AccountUnchanged, Problem
from .jobs import ADMIN_ERRORS

router = APIRouter(tags=["accounts"])

AccountId = Annotated[str, Path(pattern=ACCOUNT_PATTERN, description="the account's id")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "no such account"}}
#: the source recorded for a change through this API
ADMIN_SOURCE = "admin"


def profile_table(profile: AccountProfile) -> dict[str, Any]:
    """A profile as the keys of its ``[[account]]`` table (what ``dump_accounts`` writes): a PUT of it changes
    nothing."""
    out: dict[str, Any] = {
        "id": profile.id, "username": profile.username, "publisher": profile.publisher, "session": profile.session,
        "languages": list(profile.languages), "timezone": profile.timezone,
        "active_hours": list(profile.active_hours), "topics": list(profile.topics), "angles": list(profile.angles),
        "facts": list(profile.facts), "example_posts": list(profile.example_posts),
        "banned_phrases": list(profile.banned_phrases),
    }
    out = {k: v for k, v in out.items() if v is not None}
    for name in ("persona", "limits", "replies", "llm"):
        part = getattr(profile, name)
        out[name] = {f: (list(v) if isinstance(v, tuple) else v)
                     for f, v in ((f, getattr(part, f)) for f in part.__struct_fields__)}
    out["flags"] = {k: parse_value(SPECS[k], v) for k, v in sorted(profile.flags.items())}
    return out


@router.get("/admin/accounts", response_model=list[AccountSummary], responses=ADMIN_ERRORS,
            summary="Every configured account: id, X handle, publisher, digest, where it came from and when")
async def list_accounts(gw: GatewayDep, actor: AdminActor) -> list[AccountSummary]:
    async with gw.pool.acquire() as conn:
        rows = await conn.fetch("SELECT account, username, publisher, digest, source, actor, configured_at "
                                "FROM accounts ORDER BY account")
    return [AccountSummary(id=r["account"], **{k: r[k] for k in r.keys() if k != "account"}) for r in rows]


async def _profile(gw: GatewayDep, account: str) -> AccountProfile | None:
    async with gw.pool.acquire() as conn:
        raw = await conn.fetchval("SELECT profile FROM accounts WHERE account = $1", account)
    return None if raw is None else decode_profile(raw if isinstance(raw, str | bytes) else json.dumps(raw))


@router.get("/admin/accounts/{account}", responses={**ADMIN_ERRORS, **NOT_FOUND},
            summary="One account's profile in force, as the keys of its [[account]] table")
async def get_account(gw: GatewayDep, actor: AdminActor, account: AccountId) -> dict[str, Any]:
    profile = await _profile(gw, account)
    if profile is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no account {account!r}")
    return profile_table(profile)


def _problems(account: str, problems: list[str]) -> JSONResponse:
    return JSONResponse(AccountProblems(detail="\n".join(problems), problems=problems).model_dump(),
                        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


@router.put(
    "/admin/accounts/{account}", response_model=AccountSaved | AccountUnchanged,
    responses={**ADMIN_ERRORS, 409: {"model": Problem, "description": "the account's configuration kept changing"},
               422: {"model": AccountProblems, "description": "every problem of the profile, one line each "
                                                              "naming the account and the field"}},
    summary="Set an account's profile (the keys of an [[account]] table); recorded as account.configured",
)
async def put_account(
    gw: GatewayDep, actor: AdminActor, account: AccountId,
    body: Annotated[dict[str, Any], Body(description="the profile: the keys of an [[account]] table of "
                                                     "accounts.toml, as JSON")],
) -> Any:
    where = f"{ADMIN_SOURCE}: account {account!r}"
    given = body.get("id", account)
    if given != account:
        return _problems(account, [f"{where}: id: {given!r} is not the account of the path ({account!r})"])
    if account in AGGREGATES:
        return _problems(account, [f"{where}: id: {account!r} is the name of an aggregate (its subjects would "
                                   f"read as another shape's)"])
    try:
        (profile,) = validate_document({"account": [{**body, "id": account}]}, ADMIN_SOURCE, gw.environ)
    except AccountsError as exc:
        return _problems(account, exc.problems)
    digest = profile_digest(profile)
    for _ in range(3):
        book = await read_book(gw.bus)
        problems = _clashes(book, profile, where)
        if problems:
            return _problems(account, problems)
        current = book.get(account)
        if current is not None and profile_digest(current) == digest:
            return AccountUnchanged(account=account, digest=digest)
        try:
            seq = await publish_configured(gw.bus, book, profile, source=ADMIN_SOURCE, actor=actor)
        except WrongSequence:
            continue  # another writer configured the account meanwhile: look again
        if gw.projector is not None:
            await gw.projector.wait_for(seq, timeout=3.0)  # read-your-writes for GET, bounded
        return AccountSaved(account=account, digest=digest, seq=seq)
    raise HTTPException(status.HTTP_409_CONFLICT, f"account {account!r} kept changing; look again and retry")


def _clashes(book: Any, profile: AccountProfile, where: str) -> list[str]:
    """What the file's validation would say across accounts: a handle another account has, a reply target that
    is one of ours (our accounts never reply to each other)."""
    others = {p.username.casefold().lstrip("@"): p.id for p in book if p.id != profile.id and p.username}
    out: list[str] = []
    if profile.username and profile.username.casefold() in others:
        out.append(f"{where}: username: {profile.username!r} is also the username of account "
                   f"{others[profile.username.casefold()]!r}")
    for target in profile.replies.targets:
        if target.casefold() in others:
            out.append(f"{where}: replies.targets: {target!r} is our own account {others[target.casefold()]!r} "
                       f"(our accounts never reply to each other)")
    return out
