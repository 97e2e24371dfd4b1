"""The queue and each decision's whole timeline; the operator's approve / reject / schedule (post now), and
the answer to an attempt in doubt (resolve: retry or abandon)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path, Query, status

from shared.bus import WrongSequence, after
from shared.events import (
    DecisionApproved,
    DecisionDoubtResolved,
    DecisionRejected,
    DecisionRescheduled,
    Event,
    new_event_id,
)

from ..deps import AccountParam, AdminActor, GatewayDep, ensure_account
from ..domain import IN_DOUBT, decision_status
from ..queries import BadCursor, decision_account, decision_detail, decision_history, list_decisions, valid_id
from ..schemas import (
    Accepted,
    DecisionDetail,
    DecisionPage,
    DecisionType,
    Problem,
    RejectRequest,
    ResolveRequest,
    ScheduleRequest,
    Status,
)
from .jobs import ADMIN_ERRORS

router = APIRouter(tags=["decisions"])

DecisionId = Annotated[str, Path(min_length=1, max_length=128, description="the decision's id (a UUID)")]

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "no such decision"}}
TRANSITION_ERRORS: dict[int | str, dict[str, Any]] = {
    **ADMIN_ERRORS, **NOT_FOUND,
    409: {"model": Problem, "description": "the decision is not queued (posted, skipped, failed or rejected)"},
    422: {"model": Problem, "description": "malformed id or body"},
}
RESOLVE_ERRORS: dict[int | str, dict[str, Any]] = {
    **TRANSITION_ERRORS,
    409: {"model": Problem, "description": "the decision is not in doubt (queued, posted, skipped or failed)"},
    422: {"model": Problem, "description": "malformed id, or an action other than retry or abandon"},
}


def _check_id(decision_id: str) -> None:
    if not valid_id(decision_id):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"{decision_id!r} is not a decision id (letters, digits, - and _ only)")


@router.get(
    "/api/decisions", response_model=DecisionPage,
    responses={404: {"model": Problem, "description": "no such account (named)"},
               422: {"model": Problem, "description": "bad filter, account id or cursor"}},
    summary="Decisions of every account (or ?account=<id>'s), newest first; with status=queued, the queue in "
            "posting order",
)
async def get_decisions(
    gw: GatewayDep,
    account: AccountParam = None,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    type_: Annotated[DecisionType | None, Query(alias="type")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=400, description="next_cursor of the previous page")] = None,
) -> DecisionPage:
    await ensure_account(gw, account)
    try:
        page = await list_decisions(gw, status=status_, kind=type_, limit=limit, cursor=cursor, account=account)
    except BadCursor as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return DecisionPage(**page)


@router.get(
    "/api/decisions/{decision_id}", response_model=DecisionDetail,
    responses={**NOT_FOUND, 422: {"model": Problem, "description": "malformed id"}},
    summary="One decision: its row and its whole event timeline (queued, claims, attempts, posted, outcomes)",
)
async def get_decision(gw: GatewayDep, decision_id: DecisionId) -> DecisionDetail:
    _check_id(decision_id)
    detail = await decision_detail(gw, decision_id)
    if detail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no decision {decision_id}")
    return DecisionDetail(**detail)


async def _transition(
    gw: GatewayDep, decision_id: str, build: Callable[[str, str], Event], new_status: str, *, when: str = "queued",
) -> Accepted:
    """Publish an operator event on a decision whose status is ``when`` (queued, or in doubt for the answer to
    a doubt), in the decision's account, guarded by the decision's last sequence (a claim, a post or the poster's
    reconcile racing with us makes the server refuse our write, and we look again)."""
    _check_id(decision_id)
    account = await decision_account(gw, decision_id)
    for _ in range(3):
        form, history = await decision_history(gw, decision_id, account=account)
        current = decision_status(i.event for i in history if i.event is not None)
        if current is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no decision {decision_id}")
        if current != when:
            raise HTTPException(status.HTTP_409_CONFLICT, f"decision {decision_id} is {current}, not {when}")
        event = build(form, account)
        try:
            seq = await gw.bus.publish(event, expect=after(history[-1].seq))
        except WrongSequence:
            continue
        if gw.projector is not None:
            await gw.projector.wait_for(seq, timeout=3.0)  # read-your-writes for the dashboard, bounded
        return Accepted(decision_id=form, event=event.type, seq=seq, status=new_status)
    raise HTTPException(status.HTTP_409_CONFLICT, f"decision {decision_id} kept changing; look again and retry")


def _meta(gw: GatewayDep, account: str) -> dict[str, Any]:
    return {"event_id": new_event_id(), "occurred_at": gw.clock.now(), "account": account}


@router.post("/admin/decisions/{decision_id}/approve", response_model=Accepted, responses=TRANSITION_ERRORS,
             summary="Approve a queued decision (the poster honours approvals when REQUIRE_APPROVAL is on)")
async def approve(gw: GatewayDep, actor: AdminActor, decision_id: DecisionId) -> Accepted:
    return await _transition(
        gw, decision_id, lambda d, a: DecisionApproved(**_meta(gw, a), decision_id=d, actor=actor), "queued")


@router.post("/admin/decisions/{decision_id}/reject", response_model=Accepted, responses=TRANSITION_ERRORS,
             summary="Reject a queued decision: it will never be posted")
async def reject(
    gw: GatewayDep, actor: AdminActor, decision_id: DecisionId,
    body: Annotated[RejectRequest | None, Body()] = None,
) -> Accepted:
    reason = body.reason if body else ""
    return await _transition(
        gw, decision_id, lambda d, a: DecisionRejected(**_meta(gw, a), decision_id=d, actor=actor, reason=reason), "skipped")


@router.post("/admin/decisions/{decision_id}/schedule", response_model=Accepted, responses=TRANSITION_ERRORS,
             summary="Move a queued decision to a new time, or 'now' (the operator's post-now)")
async def schedule(gw: GatewayDep, actor: AdminActor, decision_id: DecisionId, body: ScheduleRequest) -> Accepted:
    if body.scheduled_at == "now":
        at = gw.clock.now()
    else:
        at = body.scheduled_at  # type: ignore[assignment]
        try:
            at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        except (OverflowError, ValueError):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "scheduled_at is out of range") from None
    when: datetime = at
    return await _transition(
        gw, decision_id,
        lambda d, a: DecisionRescheduled(**_meta(gw, a), decision_id=d, scheduled_at=when, actor=actor), "queued")


@router.post(
    "/admin/decisions/{decision_id}/resolve", response_model=Accepted, responses=RESOLVE_ERRORS,
    summary="Answer an attempt in doubt: retry (it is not on X: post again) or abandon (give it up: failed)",
    description="For a decision whose attempt is in doubt (status in_doubt), typically one the poster asks about "
    "(attentionNeeded in /api/metrics). Look for the tweet on X by hand first: a retry of a tweet that is on "
    "X posts it twice. Publishes decision.doubt_resolved with the actor (X-Actor) and the note.",
)
async def resolve(gw: GatewayDep, actor: AdminActor, decision_id: DecisionId, body: ResolveRequest) -> Accepted:
    action, note = body.action, body.note
    return await _transition(
        gw, decision_id,
        lambda d, a: DecisionDoubtResolved(**_meta(gw, a), decision_id=d, action=action, actor=actor, note=note),
        "queued" if action == "retry" else "failed", when=IN_DOUBT)
