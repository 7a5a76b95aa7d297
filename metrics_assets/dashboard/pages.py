"""The dashboard's pages: server-rendered HTML with Plotly charts.

Each page is one function returning HTML. Figures are built here with plotly.graph_objects;
the browser draws them with the plotly.min.js that ships inside the plotly wheel, served by the
dashboard itself at ``/static/plotly.min.js`` (nothing is loaded from anywhere else). A chart
with no data is not drawn: the page says "no data" in its place.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import pandas as pd
import plotly.graph_objects as go

from metrics_assets.dashboard import data, freshness, kpi_api
from metrics_assets.probes.config import view_actions
from metrics_assets.probes.glam_schema import DEFAULT_PRODUCT
from metrics_assets.resources.warehouse import Warehouse

PAGES = (
    ("offspot", "Offspot KPIs", ("offspot_indicators", "offspot_kpis", "offspot_fleet_kpis")),
    ("storage", "Storage", ("usage_snapshot", "usage_live", "storage_billing_monthly")),
    ("probes", "Probes", ("probe_views_daily", "probe_popularity", "release_correlation")),
    ("events", "Events", ("event_rollups_hourly", "metrics")),
)
AGG_KIND_NAMES = {"D": "day", "W": "week", "M": "month", "Y": "year"}
_PLOT_CONFIG = {"displaylogo": False, "responsive": True, "displayModeBar": False}

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;background:#f6f7f9}
header{background:#24324a;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1.2rem;align-items:baseline;flex-wrap:wrap}
header a{color:#cfe0ff;text-decoration:none}header a.current{color:#fff;font-weight:600;border-bottom:2px solid #fff}
header .brand{font-weight:700;margin-right:1rem}
main{padding:1rem 1.2rem;max-width:1400px}
.fresh{color:#555;font-size:.9rem;margin:.2rem 0 1rem}
.choices{margin:.4rem 0 1rem;display:flex;gap:.4rem;flex-wrap:wrap;align-items:center}
.choices a{padding:.2rem .6rem;border:1px solid #b8c2d6;border-radius:4px;text-decoration:none;color:#24324a;background:#fff}
.choices a.current{background:#24324a;color:#fff}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:1rem}
section.chart,section.table{min-width:0;overflow:hidden;background:#fff;border:1px solid #dde2ea;border-radius:6px;padding:.6rem}
section h2{font-size:1rem;margin:.2rem 0 .4rem}
.nodata{color:#888;padding:2rem;text-align:center}
table{border-collapse:collapse;font-size:.9rem}td,th{padding:.2rem .6rem;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child{text-align:left}
code{background:#eef1f6;padding:0 .2rem}
"""


# -- formatting ------------------------------------------------------------------------------
def fmt_int(value: float) -> str:
    return f"{int(value):,}"


def _when(moment: datetime | None) -> str:
    return "never" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def _esc(text: object) -> str:
    return html.escape(str(text))


# -- building blocks -------------------------------------------------------------------------
def chart(name: str, title: str, fig: go.Figure | None, *, y_title: str | None = None, category_x: bool = False) -> str:
    """A titled chart section; ``fig`` None (no data) renders a "no data" note instead."""
    head = f'<section class="chart" data-chart="{_esc(name)}"><h2>{_esc(title)}</h2>'
    if fig is None:
        return head + '<div class="nodata">no data</div></section>'
    height = fig.layout.height or 340
    fig.update_layout(
        margin={"l": 60, "r": 20, "t": 10, "b": 50},
        height=height,
        autosize=True,
        legend={"orientation": "h", "y": -0.2},
        template="plotly_white",
    )
    if y_title:
        fig.update_yaxes(title_text=y_title)
    if category_x:
        fig.update_xaxes(type="category")
    body = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        config=_PLOT_CONFIG,
        div_id=f"chart-{name}",
        default_width="100%",
        default_height=f"{height}px",
    )
    return head + body + "</section>"


def table(name: str, title: str, frame: pd.DataFrame, columns: Sequence[tuple[str, str, Callable[[Any], str]]]) -> str:
    """A small table: ``columns`` are (column, header with unit, formatter)."""
    rows = "".join(
        "<tr>"
        + "".join(f"<td>{_esc(fmt(row[col]) if not pd.isna(row[col]) else '–')}</td>" for col, _h, fmt in columns)
        + "</tr>"
        for _, row in frame.iterrows()
    )
    header = "".join(f"<th>{_esc(h)}</th>" for _c, h, _f in columns)
    return (
        f'<section class="table" data-table="{_esc(name)}"><h2>{_esc(title)}</h2>'
        f"<table><thead><tr>{header}</tr></thead><tbody>{rows}</tbody></table></section>"
    )


def choices(label: str, options: Sequence[tuple[str, str]], current: str, base: str, params: dict, key: str) -> str:
    links = []
    for value, text in options:
        query = urlencode({**params, key: value})
        cls = ' class="current"' if value == current else ""
        links.append(f'<a{cls} href="{_esc(base)}?{_esc(query)}">{_esc(text)}</a>')
    return f'<div class="choices"><span>{_esc(label)}:</span>{"".join(links)}</div>'


def layout(page: str, title: str, body: str, *, asset_keys: Sequence[str] = ()) -> str:
    nav = "".join(
        f'<a{" class=current" if slug == page else ""} href="/{slug}">{_esc(name)}</a>' for slug, name, _keys in PAGES
    )
    fresh = ""
    if asset_keys:
        try:
            when = freshness.last_materialized(list(asset_keys))
            parts = [f"<code>{_esc(k)}</code> {_esc(_when(when[k]))}" for k in asset_keys]
            fresh = f'<p class="fresh" data-freshness>Last materialized: {" · ".join(parts)}</p>'
        except Exception as error:
            fresh = (
                f'<p class="fresh" data-freshness>Last materialized: unknown, the Dagster instance '
                f"could not be read ({_esc(type(error).__name__)}: {_esc(error)})</p>"
            )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_esc(title)} · metrics_assets</title><link rel="icon" href="data:,">
<style>{CSS}</style><script src="/static/plotly.min.js"></script></head>
<body><header><span class="brand"><a href="/">metrics_assets</a></span>{nav}</header>
<main><h1>{_esc(title)}</h1>{fresh}{body}</main></body></html>"""


def _bar(x, y, name: str | None = None, **kwargs) -> go.Bar:
    return go.Bar(x=list(x), y=list(y), name=name, **kwargs)


# -- pages -----------------------------------------------------------------------------------
def index_page() -> str:
    items = "".join(f'<li><a href="/{slug}">{_esc(name)}</a></li>' for slug, name, _k in PAGES)
    roots = "".join(f"<li><code>{_esc(prefix)}</code></li>" for prefix, _kind in kpi_api.KPI_API_ROOTS)
    body = (
        f"<ul>{items}</ul><h2>The offspot box's KPI API</h2><p>Same routes and JSON as the box's "
        f"own backend (<code>/aggregations</code>, <code>/aggregations/{{agg_kind}}</code>, "
        f"<code>/kpis/{{kpi_id}}/values?agg_kind=&amp;agg_value=</code>) under:</p><ul>{roots}</ul>"
        f'<p>OpenAPI document: <a href="/openapi.json">/openapi.json</a>, docs: <a href="/docs">/docs</a>.</p>'
    )
    return layout("", "Dashboards", body)


def offspot_page(warehouse: Warehouse, box: str | None, agg_kind: str) -> str:
    boxes = kpi_api.known_boxes(warehouse)
    if box is None:  # the single box, else the fleet
        box = kpi_api.DEFAULT_BOX if boxes in ([], [kpi_api.DEFAULT_BOX]) else "fleet"
    scope = kpi_api.FLEET if box == "fleet" else kpi_api.resolve_scope(warehouse, box)
    frames = data.offspot_kpis(warehouse, scope, agg_kind)
    unit = AGG_KIND_NAMES[agg_kind]
    params = {"box": box, "kind": agg_kind}
    body = choices("Box", [(b, b) for b in boxes] + [("fleet", "fleet (every box)")], box, "/offspot", params, "box")
    body += choices("Period", [(k, AGG_KIND_NAMES[k]) for k in kpi_api.AGG_KINDS], agg_kind, "/offspot", params, "kind")
    count = f" ({len(boxes)} box{'es' if len(boxes) != 1 else ''})" if scope.is_fleet else ""
    body += (
        f"<p>KPIs of {_esc(scope.label)}{count}, one bar per {unit}. The box's own API for this view: "
        f"<code>{_esc(_api_root(box))}/aggregations/{agg_kind}</code></p>"
    )
    charts = []

    up = frames["uptime"]
    fig = None
    if not up.empty:
        fig = go.Figure(
            _bar(
                up["period"],
                up["hours_on"],
                "hours on",
                text=[f"{p:.0f} %" for p in up["uptime_pct"]],
                textposition="auto",
                customdata=up[["minutes_on", "uptime_pct"]].values,
                hovertemplate="%{x}: %{customdata[0]:,} minutes on (%{customdata[1]:.1f} %)<extra></extra>",
            )
        )
    what = "box-hours on, % of boxes × the " + unit if scope.is_fleet else f"hours on, % of the {unit}"
    charts.append(chart("uptime", f"Uptime per {unit} ({what})", fig, y_title="hours", category_x=True))

    if scope.is_fleet:
        per_box = frames["per_box"]
        fig, latest = None, ""
        if not per_box.empty:
            latest = per_box["period"].max()
            part = per_box[per_box["period"] == latest].sort_values("box")
            fig = go.Figure(
                go.Bar(
                    x=list(part["box"]),
                    y=list(part["hours_on"]),
                    text=[f"{p:.0f} %" for p in part["uptime_pct"]],
                    textposition="auto",
                    customdata=part[["minutes_on", "last_seen"]].fillna("").values,
                    hovertemplate="%{x}: %{customdata[0]:,} minutes on, last seen %{customdata[1]}<extra></extra>",
                )
            )
        charts.append(
            chart(
                "uptime_per_box",
                f"Uptime per box, {latest} (hours on, % of the {unit})",
                fig,
                y_title="hours",
                category_x=True,
            )
        )

    usage, items = frames["usage"], frames["usage_items"]
    fig = None
    if not usage.empty:
        fig = go.Figure()
        for package in items.groupby("package")["minutes"].sum().sort_values(ascending=False).index:
            part = items[items["package"] == package]
            fig.add_trace(
                _bar(
                    part["period"],
                    part["minutes"],
                    package,
                    hovertemplate="%{x}: %{y:,} minutes<extra>" + _esc(package) + "</extra>",
                )
            )
        fig.add_trace(
            go.Scatter(
                x=list(usage["period"]),
                y=list(usage["total_min"]),
                name="total (any package)",
                mode="lines+markers",
                line={"color": "#222"},
                hovertemplate="%{x}: %{y:,} minutes in all<extra></extra>",
            )
        )
        fig.update_layout(barmode="group")
    charts.append(
        chart(
            "total_usage",
            f"Total usage per {unit} (minutes of activity, top packages)",
            fig,
            y_title="minutes",
            category_x=True,
        )
    )

    pop, pitems = frames["popularity"], frames["popularity_items"]
    fig = None
    if not pop.empty:
        latest = pop["period"].iloc[-1]
        top = pitems[pitems["period"] == latest].sort_values("visits")
        total = int(pop["total_visits"].iloc[-1])
        fig = go.Figure(
            go.Bar(
                x=list(top["visits"]),
                y=list(top["package"]),
                orientation="h",
                text=[f"{v:,} ({100 * v / total:.0f} %)" if total else f"{v:,}" for v in top["visits"]],
                textposition="auto",
                hovertemplate="%{y}: %{x:,} home visits<extra></extra>",
            )
        )
        fig.update_xaxes(title_text="home visits")
        title = f"Package popularity, {latest} ({total:,} home visits in all)"
    else:
        title = "Package popularity"
    charts.append(chart("package_popularity", title, fig))

    fig = None
    if not pop.empty:
        fig = go.Figure(
            _bar(
                pop["period"],
                pop["total_visits"],
                "home visits",
                hovertemplate="%{x}: %{y:,} home visits<extra></extra>",
            )
        )
    charts.append(
        chart("home_visits", f"Home visits per {unit} (every package)", fig, y_title="visits", category_x=True)
    )

    shared = frames["shared_files"]
    fig = None
    if not shared.empty:
        fig = go.Figure(
            [
                go.Scatter(
                    x=list(shared["period"]),
                    y=list(shared["created"]),
                    name="files created",
                    mode="lines+markers",
                    hovertemplate="%{x}: %{y:,} files created<extra></extra>",
                ),
                go.Scatter(
                    x=list(shared["period"]),
                    y=list(shared["deleted"]),
                    name="files deleted",
                    mode="lines+markers",
                    hovertemplate="%{x}: %{y:,} files deleted<extra></extra>",
                ),
            ]
        )
    charts.append(chart("shared_files", f"Shared files per {unit} (files)", fig, y_title="files", category_x=True))

    body += f'<div class="grid">{"".join(charts)}</div>'
    return layout("offspot", f"Offspot KPIs: {scope.label}", body, asset_keys=PAGES[0][2])


def _api_root(box: str) -> str:
    if box == "fleet":
        return "/offspot/fleet/api"
    return "/offspot/api" if box == kpi_api.DEFAULT_BOX else f"/offspot/boxes/{box}/api"


def storage_page(warehouse: Warehouse) -> str:
    charts = []
    owners = data.storage_bytes_per_owner(warehouse)
    fig = None
    if not owners.empty:
        fig = go.Figure(
            [
                go.Scatter(
                    x=list(part["snapshot_date"]),
                    y=list(part["gb"]),
                    name=owner,
                    mode="lines+markers",
                    hovertemplate="%{x}: %{y:,.3f} GB<extra>" + _esc(owner) + "</extra>",
                )
                for owner, part in owners.groupby("owner", sort=True)
            ]
        )
        fig.update_xaxes(type="category")
    charts.append(chart("bytes_per_owner", "Bytes held per owner (daily snapshots, GB)", fig, y_title="GB"))

    billing = data.storage_billing_latest_month(warehouse)
    fig, month = None, ""
    if not billing.empty:
        month = billing["month"].iloc[0]
        fig = go.Figure(
            go.Bar(
                x=list(billing["owner"]),
                y=list(billing["gb_days"]),
                text=[f"{v:,.2f} GB-days" for v in billing["gb_days"]],
                textposition="auto",
                customdata=billing[["days_measured"]].values,
                hovertemplate="%{x}: %{y:,.3f} GB-days over %{customdata[0]} snapshot days<extra></extra>",
            )
        )
    charts.append(chart("gb_days", f"GB-days per owner, {month or 'this month'} (billed)", fig, y_title="GB-days"))

    drift = data.storage_drift(warehouse)
    fig = None
    snapshot_day = data.storage_snapshot_date(warehouse)
    if not drift.empty:
        fig = go.Figure(
            [
                go.Bar(
                    x=list(drift["owner"]),
                    y=list(drift["snapshot_gb"]),
                    name=f"snapshot {snapshot_day}",
                    hovertemplate="%{x}: %{y:,.3f} GB in the snapshot<extra></extra>",
                ),
                go.Bar(
                    x=list(drift["owner"]),
                    y=list(drift["live_gb"]),
                    name="live now",
                    text=[("–" if p is None else f"{p:+.2f} %") for p in drift["drift_pct"]],
                    textposition="outside",
                    hovertemplate="%{x}: %{y:,.3f} GB live (%{text} vs the snapshot)<extra></extra>",
                ),
            ]
        )
        fig.update_layout(barmode="group")
    charts.append(chart("drift", "Live vs latest snapshot per owner (GB; label: drift %)", fig, y_title="GB"))

    tables = []
    if not billing.empty:
        tables.append(
            table(
                "gb_days",
                f"Billing {month}",
                billing,
                [
                    ("owner", "owner", str),
                    ("gb_days", "GB-days", lambda v: f"{v:,.3f}"),
                    ("days_measured", "snapshot days", fmt_int),
                ],
            )
        )
    if not drift.empty:
        tables.append(
            table(
                "drift",
                f"Drift: live now vs snapshot {snapshot_day}",
                drift,
                [
                    ("owner", "owner", str),
                    ("snapshot_gb", "snapshot (GB)", lambda v: f"{v:,.3f}"),
                    ("live_gb", "live (GB)", lambda v: f"{v:,.3f}"),
                    ("drift_gb", "drift (GB)", lambda v: f"{v:+,.3f}"),
                    ("drift_pct", "drift (%)", lambda v: f"{v:+.2f} %"),
                ],
            )
        )
    body = (
        "<p>1 GB = 10<sup>9</sup> bytes, as billed. The drift compares live usage now with the newest "
        "snapshot; the <code>live_matches_snapshot</code> check compares them as of the snapshot's time.</p>"
        f'<div class="grid">{"".join(charts + tables)}</div>'
    )
    return layout("storage", "Storage", body, asset_keys=PAGES[1][2])


def probes_page(warehouse: Warehouse, product: str | None, window: int | None) -> str:
    products = data.probe_products(warehouse)
    windows = data.probe_windows(warehouse)
    # GLAM's default product first when no product is asked for
    default = DEFAULT_PRODUCT if DEFAULT_PRODUCT in products else (products[0] if products else None)
    product = product if product in products else default
    window = window if window in windows else (windows[0] if windows else None)
    if product is None or window is None:
        return layout(
            "probes", "Probes", '<p class="nodata">no data: materialize probe_popularity</p>', asset_keys=PAGES[2][2]
        )
    params = {"product": product, "window": window}
    body = choices("Product", [(p, p) for p in products], product, "/probes", params, "product")
    body += choices("Window", [(str(w), f"{w} days") for w in windows], str(window), "/probes", params, "window")
    pop = data.probe_popularity(warehouse, product, window)
    charts = []
    if not pop.empty:
        body += (
            f"<p>Window {pd.Timestamp(pop['window_start'].iloc[0]):%Y-%m-%d} to "
            f"{pd.Timestamp(pop['window_end'].iloc[0]):%Y-%m-%d} (end excluded); a view is an event whose action is one of "
            f"{', '.join(view_actions())} (PROBES_VIEW_ACTIONS).</p>"
        )

    def ranked(frame: pd.DataFrame, name: str, title: str) -> str:
        if frame.empty:
            return chart(name, title, None)
        frame = frame.iloc[::-1]
        fig = go.Figure(
            go.Scatter(
                x=list(frame["views"]),
                y=[f"#{r} {p}" for r, p in zip(frame["rank"], frame["probe_name"], strict=True)],
                mode="markers+text",
                text=[f"{v:,}" for v in frame["views"]],
                textposition="middle right",
                marker={"size": 10},
                hovertemplate="%{y}: %{x:,} views<extra></extra>",
            )
        )
        fig.update_xaxes(title_text="views", rangemode="tozero")
        fig.update_layout(height=max(340, 22 * len(frame) + 80))
        return chart(name, title, fig)

    most = pop[pop["is_most_viewed"]].head(20)
    least = pop[pop["is_least_viewed"]].sort_values(["rank", "probe_name"]).tail(20)
    charts.append(ranked(most, "most_viewed", f"Most viewed probes, last {window} days (views)"))
    charts.append(ranked(least, "least_viewed", f"Least viewed probes, last {window} days (views)"))

    moved = pop.dropna(subset=["rank_change"])
    moved = moved[moved["rank_change"] != 0]
    fig = None
    if not moved.empty:
        movers = (
            pd.concat([moved.nlargest(10, "rank_change"), moved.nsmallest(10, "rank_change")])
            .drop_duplicates("probe_name")
            .sort_values("rank_change")
        )
        fig = go.Figure(
            go.Bar(
                x=list(movers["rank_change"].astype(int)),
                y=list(movers["probe_name"]),
                orientation="h",
                marker={"color": ["#2a9d4b" if c > 0 else "#c0392b" for c in movers["rank_change"]]},
                customdata=movers[["previous_rank", "rank"]].values,
                hovertemplate="%{y}: rank %{customdata[0]} → %{customdata[1]} (%{x:+d} places)<extra></extra>",
            )
        )
        fig.update_xaxes(title_text="places moved up (+) or down (−) vs the previous window")
        fig.update_layout(height=max(340, 22 * len(movers) + 80))
    charts.append(chart("rank_changes", f"Biggest rank changes, last {window} days vs the {window} days before", fig))

    daily = data.probe_daily_views(warehouse, product)
    releases = data.probe_releases(warehouse, product)
    fig = None
    if not daily.empty:
        fig = go.Figure(
            go.Scatter(
                x=list(daily["day"]),
                y=list(daily["views"]),
                mode="lines+markers",
                marker={"size": 4},
                name="views per day",
                hovertemplate="%{x}: %{y:,} views<extra></extra>",
            )
        )
        for _, rel in releases.iterrows():
            fig.add_vline(x=rel["release_date"], line_dash="dot", line_color="#888")
            fig.add_annotation(
                x=rel["release_date"],
                y=1,
                yref="paper",
                text=f"v{rel['version']} ({rel['channel']})",
                showarrow=False,
                yanchor="bottom",
                font={"size": 10},
            )
    charts.append(
        chart(
            "daily_views_releases",
            f"Daily views of every {product} probe, releases marked (views/day)",
            fig,
            y_title="views per day",
        )
    )

    if releases.empty:
        # nothing to draw: say why instead of an empty chart
        body += (
            f'<p class="nodata">No release of {product} is known: the release windows come from '
            "product-details (GLAM_RELEASES_PATH, asset product_releases).</p>"
        )
    else:
        labels = [f"v{v} ({d})" for v, d in zip(releases["version"], releases["release_date"], strict=True)]
        fig = go.Figure(
            [
                go.Bar(
                    x=labels,
                    y=list(releases["daily_views_before"]),
                    name="14 days before",
                    hovertemplate="%{x}: %{y:,.1f} views/day before<extra></extra>",
                ),
                go.Bar(
                    x=labels,
                    y=list(releases["daily_views_after"]),
                    name="14 days from the release",
                    text=[("–" if pd.isna(r) else f"×{r:.2f}") for r in releases["after_before_ratio"]],
                    textposition="outside",
                    hovertemplate="%{x}: %{y:,.1f} views/day after (%{text})<extra></extra>",
                ),
            ]
        )
        fig.update_layout(barmode="group")
        charts.append(
            chart(
                "release_effect",
                "Views per day before and after each release (label: after / before)",
                fig,
                y_title="views per day",
            )
        )
    body += f'<div class="grid">{"".join(charts)}</div>'
    return layout("probes", f"Probes: {product}", body, asset_keys=PAGES[2][2])


def events_page(warehouse: Warehouse) -> str:
    charts = []
    per_day = data.events_per_day(warehouse)
    fig = None
    if not per_day.empty:
        fig = go.Figure(
            [
                go.Bar(
                    x=list(part["day"]),
                    y=list(part["events"]),
                    name=series,
                    hovertemplate="%{x}: %{y:,} events<extra>" + _esc(series) + "</extra>",
                )
                for series, part in per_day.groupby("series", sort=True)
            ]
        )
        fig.update_layout(barmode="stack")
        fig.update_xaxes(type="category")
    charts.append(chart("events_per_day", "Events per day, by service / event type (events)", fig, y_title="events"))

    lag = data.events_lag(warehouse)
    fig = None
    if not lag.empty:
        fig = go.Figure(
            go.Histogram(
                x=list(lag["max_lag_min"]),
                nbinsx=30,
                name="rollup groups",
                hovertemplate="max lag %{x} minutes: %{y:,} hourly groups<extra></extra>",
            )
        )
        fig.update_xaxes(title_text="maximum arrival lag in the hourly group (minutes)")
        fig.update_yaxes(type="log")
        p50, p95, top = lag["max_lag_min"].quantile(0.5), lag["max_lag_min"].quantile(0.95), lag["max_lag_min"].max()
        title = f"Arrival lag (created → arrived): median {p50:,.1f} min, p95 {p95:,.1f} min, max {top:,.1f} min"
    else:
        title = "Arrival lag (minutes)"
    charts.append(chart("lag_distribution", title, fig, y_title="hourly rollup groups (log scale)"))

    metrics = data.metrics_per_day(warehouse)
    fig = None
    if not metrics.empty:
        fig = go.Figure(
            [
                go.Scatter(
                    x=list(part["day"]),
                    y=list(part["value"]),
                    name=name,
                    mode="lines+markers",
                    hovertemplate="%{x}: %{y:,}<extra>" + _esc(name) + "</extra>",
                )
                for name, part in metrics.groupby("metric_name", sort=True)
            ]
        )
        fig.update_xaxes(type="category")
    charts.append(chart("metrics_per_day", "Metrics per day (sum over requesters)", fig, y_title="value"))
    body = f'<p>Days are UTC days of the events\' created time.</p><div class="grid">{"".join(charts)}</div>'
    return layout("events", "Events", body, asset_keys=PAGES[3][2])
