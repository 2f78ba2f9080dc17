"""The page of the day at the dashboard's ``/sync``: one HTML page, drawn by the server.

Per stream: last success, status, staleness and the next planned run; per quota pool:
the requests SmartUp counted today against the quota minus the reserve, as an SVG bar;
the last runs with their counts and errors. No script, no stylesheet or font from
elsewhere: the page works offline. Everything shown comes from
:func:`jobs.sync_overview` (also served as ``/sync.json``) and the run table.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from jobs.models import SyncRun
from jobs.run.rows import FAILED, PARTIAL, RUNNING, SUCCESS, counts_of

BAR_WIDTH, BAR_HEIGHT = 360, 22

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1f2328; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 24px 0 8px; }
table { border-collapse: collapse; } th, td { padding: 4px 10px; text-align: left;
  border-bottom: 1px solid #d0d7de; vertical-align: top; } th { background: #f6f8fa; }
.ok { color: #1a7f37; } .bad { color: #cf222e; font-weight: 600; } .warn { color: #9a6700; }
.muted { color: #656d76; } .nowrap { white-space: nowrap; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
"""

STATUS_CLASS = {SUCCESS: "ok", PARTIAL: "warn", FAILED: "bad", RUNNING: "muted"}


def render_sync_page(overview: dict[str, Any], runs: Sequence[SyncRun]) -> str:
    """The whole page, from ``overview`` (:func:`jobs.sync_overview`) and the latest runs."""
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>smartup-sync: the day</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>smartup-sync: the day</h1>",
        f"<div class='muted'>as of {_text(overview.get('generated_at'))}"
        " &middot; <a href='sync.json'>sync.json</a> &middot; <a href='./'>queues</a></div>",
    ]
    if overview.get("redis_error"):
        parts.append(f"<p class='warn'>{_text(overview['redis_error'])}</p>")
    parts += _streams(overview["kinds"]), _pools(overview), _runs(runs)
    parts.append("</body></html>")
    return "\n".join(parts)


def _text(value: Any) -> str:
    return "&ndash;" if value is None else escape(str(value))


def _moment(iso: str | None) -> str:
    """``2026-12-06T23:16:59+00:00`` as ``2026-12-06 23:16:59 UTC``."""
    if iso is None:
        return _text(None)
    return escape(iso.replace("T", " ").replace("+00:00", " UTC"))


def _age(seconds: int | None) -> str:
    if seconds is None:
        return ""
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds / 3600:.1f} h ago"


def _status(status: str | None) -> str:
    if status is None:
        return _text(None)
    return f"<span class='{STATUS_CLASS.get(status, '')}'>{escape(status)}</span>"


def _streams(kinds: dict[str, Any]) -> str:
    rows = []
    for kind, seen in kinds.items():
        success, last = seen["last_success"], seen["last_run"]
        stale = seen["stale"]
        staleness = (
            "<span class='muted'>no plan registered</span>"
            if stale is None
            else "<span class='bad'>stale</span>"
            if stale
            else "<span class='ok'>fresh</span>"
        )
        plan = seen.get("plan") or {}
        job = seen.get("running") or seen.get("waiting")
        rows.append(
            "<tr>"
            f"<td>{escape(kind)}</td>"
            f"<td>{_moment(success and success['finished_at'])}"
            f" <span class='muted'>{_age(success and success['age_s'])}</span></td>"
            f"<td>{_status(last and last['status'])}"
            f"{' ' + _text(job['status']) + ' job' if job else ''}</td>"
            f"<td>{staleness}</td>"
            f"<td>{_moment(seen.get('next_run_at'))}</td>"
            f"<td class='num'>{_text(plan.get('interval_used_s'))}</td>"
            "</tr>"
        )
    return (
        "<h2>Streams</h2><table><tr><th>stream</th><th>last success</th><th>last run</th>"
        "<th>staleness</th><th>next planned run</th><th>every (s)</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def quota_bar(used: int, budget: int, reserve: int) -> str:
    """An SVG bar: ``used`` requests against ``budget`` (quota minus reserve), the reserve
    drawn after it; red once the budget is spent."""
    total = max(budget + reserve, used, 1)
    scale = BAR_WIDTH / total
    used_width = round(min(used, total) * scale)
    budget_width = round(budget * scale)
    colour = "#cf222e" if used >= budget else "#2da44e"
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{BAR_WIDTH}' height='{BAR_HEIGHT}'"
        f" role='img' aria-label='{used} of {budget} requests'>"
        f"<rect width='{BAR_WIDTH}' height='{BAR_HEIGHT}' fill='#eaeef2'/>"
        f"<rect x='{budget_width}' width='{BAR_WIDTH - budget_width}' height='{BAR_HEIGHT}'"
        " fill='#fff8c5'/>"
        f"<rect width='{used_width}' height='{BAR_HEIGHT}' fill='{colour}'/>"
        f"<line x1='{budget_width}' x2='{budget_width}' y1='0' y2='{BAR_HEIGHT}'"
        " stroke='#1f2328' stroke-width='2'/></svg>"
    )


def _pools(overview: dict[str, Any]) -> str:
    """One bar per quota pool: requests spent today (as SmartUp last said, every program on
    the login included) against the pool's quota minus its reserve."""
    kinds = overview["kinds"]
    rows = []
    for pool in overview.get("pools") or []:
        name = str(pool["name"])
        seen = next(
            (kinds[s]["quota"] for s in pool["streams"] if (kinds.get(s) or {}).get("quota")),
            None,
        )
        limit = (seen or {}).get("limit") or pool.get("quota")
        reserve = pool.get("reserve") or 0
        used = (seen or {}).get("used") or 0
        streams = escape(", ".join(pool["streams"]))
        if not limit:
            rows.append(
                f"<tr><td>{escape(name)}<br><span class='muted'>{streams}</span></td>"
                "<td colspan='2' class='muted'>no quota seen yet</td></tr>"
            )
            continue
        budget = int(limit) - int(reserve)
        rows.append(
            f"<tr><td>{escape(name)}<br><span class='muted'>{streams}</span></td>"
            f"<td>{quota_bar(int(used), budget, int(reserve))}</td>"
            f"<td class='num'>{used} / {budget} (+{reserve} reserve)"
            f"{' <span class=bad>spent</span>' if (seen or {}).get('exhausted') else ''}</td>"
            f"<td class='num'>{_text(pool.get('requests_per_day'))}</td></tr>"
        )
    if not rows:
        rows.append("<tr><td colspan='4' class='muted'>no plan registered yet</td></tr>")
    return (
        "<h2>Quota today</h2><table><tr><th>pool</th><th>requests spent</th>"
        "<th>spent / quota &minus; reserve</th><th>planned a day</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _runs(runs: Sequence[SyncRun]) -> str:
    rows = []
    for run in runs:
        counts = []
        streams = list(run.details) if isinstance(run.details, dict) else []
        for stream in streams or [run.run_type]:
            found = counts_of(run, stream)
            count = {
                word: found[column]
                for word, column in (
                    ("received", "received"),
                    ("new", "inserted"),
                    ("changed", "updated"),
                    ("same", "unchanged"),
                    ("rejected", "rejected"),
                )
            }
            counts.append(f"{stream}: " + ", ".join(f"{n} {word}" for word, n in count.items()))
        started = run.started_at.isoformat(timespec="seconds") if run.started_at else None
        rows.append(
            f"<tr><td class='num'>{run.id}</td><td>{escape(run.run_type)}</td>"
            f"<td>{_status(run.status)}</td><td class='nowrap'>{_moment(started)}</td>"
            f"<td class='num'>{_text(run.duration_s)}</td>"
            f"<td>{'<br>'.join(escape(line) for line in counts)}</td>"
            f"<td class='bad'>{escape(run.error_message or '')}</td></tr>"
        )
    return (
        "<h2>Last runs</h2><table><tr><th>run</th><th>type</th><th>status</th>"
        "<th>started</th><th>s</th><th>records</th>"
        "<th>error</th></tr>" + "".join(rows) + "</table>"
    )
