"""GET /: the dashboard for the person running the account (server-rendered; a little JS for the buttons)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape

from shared.events import DEFAULT_ACCOUNT
from shared.flags import FLAG_SPECS, env_view

from ..deps import AccountParam, GatewayDep, ensure_account
from ..queries import (
    dead_letters,
    job_runs,
    learning,
    list_decisions,
    metrics_of,
    metrics_snapshot,
    outcome_series,
    recent_posts,
)
from ..schemas import DeadLetters, LearningView
from ..svg import Bar, Point, bar_chart, scatter_chart

router = APIRouter(tags=["dashboard"])


def highlight_claims(content: str, claims: list[str]) -> Markup:
    """The draft, HTML-escaped, with every sentence the claims gate flagged wrapped in ``<mark class="claim">``
    (each occurrence; overlapping ones merged), so the person approving sees exactly what is unsupported."""
    spans: list[tuple[int, int]] = []
    for claim in claims:
        if not claim:
            continue
        start = content.find(claim)
        while start >= 0:
            spans.append((start, start + len(claim)))
            start = content.find(claim, start + len(claim))
    merged: list[list[int]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    out, pos = [], 0
    for a, b in merged:
        out.append(escape(content[pos:a]))
        out.append(Markup('<mark class="claim">%s</mark>') % content[a:b])
        pos = b
    out.append(escape(content[pos:]))
    return Markup("").join(out)


async def dashboard_context(gw: Any, account: str = DEFAULT_ACCOUNT) -> dict[str, Any]:
    """The page of one account (the default one unless ``?account=``): its figures, its queue, its drafts."""
    flags = gw.flags.current()
    env = env_view(flags)
    metrics = metrics_of(await metrics_snapshot(gw), account)
    queue = await list_decisions(gw, status="queued", kind=None, limit=12, cursor=None, account=account)
    recent = await list_decisions(gw, status=None, kind=None, limit=15, cursor=None, account=account)
    posts = await recent_posts(gw, 10)
    learn = await learning(gw)
    series = await outcome_series(gw, 400)
    dlq = await dead_letters(gw, 10)
    runs = await job_runs(gw, 12)
    er_chart = scatter_chart(
        [Point(at, er, "sim" if sim else "real") for at, er, sim, _h in series],
        title="engagement rate of each outcome over time", empty="no outcomes yet",
    )
    arm_chart = bar_chart(
        [Bar(a["arm_name"] if a["scope"] in ("content", "main") else f"{a['scope']}/{a['arm_name']}", a["mean"],
             a["sd"], f"{a['successes']}/{a['successes'] + a['failures']}") for a in learn["arms"]],
        title="arm posteriors: Beta mean ± sd", vmax=1.0, empty="no model yet",
    )
    slots = [s for s in learn["slots"] if s["scope"] == (learn["slots"][0]["scope"] if learn["slots"] else "")]
    slot_chart = bar_chart(
        [Bar(f"{s['hour']:02d}", s["mean_er"], None, f"n={s['n']}") for s in slots],
        title="mean ER by posting hour (UTC)", empty="no timing slots yet",
    )
    limit = float(flags.DAILY_OPENAI_LIMIT_USD)
    spend = metrics["spendTodayUsd"]
    return {
        "env": env,
        "flags": {s.name: getattr(flags, s.name) for s in FLAG_SPECS},
        "sources": flags.sources,
        "bool_flags": [s.name for s in FLAG_SPECS if s.kind == "bool"],
        "metrics": metrics,
        "queue": queue["items"],
        "recent": recent["items"],
        "posts": posts,
        "arms": learn["arms"],
        "models": learn["models"],
        "dead": DeadLetters(**dlq).model_dump(),
        "runs": runs,
        "er_chart": Markup(er_chart),
        "arm_chart": Markup(arm_chart),
        "slot_chart": Markup(slot_chart),
        "spend": spend,
        "limit": limit,
        "spend_pct": min(100.0, spend / limit * 100) if limit > 0 else 100.0,
        "now": gw.clock.now(),
        "learning": LearningView(**learn),
    }


@router.get("/", response_class=HTMLResponse, summary="The dashboard", include_in_schema=True)
async def dashboard(request: Request, gw: GatewayDep, account: AccountParam = None) -> HTMLResponse:
    await ensure_account(gw, account)
    ctx = await dashboard_context(gw, account or DEFAULT_ACCOUNT)
    return request.app.state.templates.TemplateResponse(request, "dashboard.html", ctx)
