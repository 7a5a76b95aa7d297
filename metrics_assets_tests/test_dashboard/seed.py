"""A small warehouse for the dashboard pages, with every figure computable by hand.

Rows are written in the columns of each domain's migration (``metrics_assets/<domain>/
migrations``), which is all the dashboard reads.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def seed(warehouse) -> None:
    # offspot: two days of the box "default" and one day of "box-2" (JSON exactly as
    # offspot_kpis writes it), and the fleet over both, as offspot_fleet_kpis writes it
    def values(visits: int, minutes_on: int) -> list[tuple[int, str, str]]:
        return [
            (
                2001,
                "package_popularity",
                f'{{"items":[{{"package":"Wikipedia","visits":{visits}}}],"totalVisits":{visits}}}',
            ),
            (2003, "total_usage", '{"items":[{"package":"Wikipedia","minutesActivity":30}],"totalMinutesActivity":30}'),
            (2004, "uptime", f'{{"nbMinutesOn":{minutes_on}}}'),
            (2005, "shared_files", '{"filesCreated":2,"filesDeleted":1}'),
        ]

    kpis, fleet = [], []
    for day, week, minutes_on, visits in (("2026-01-04", "2026 W01", 720, 4), ("2026-01-05", "2026 W02", 1440, 5)):
        for kind, period in (("D", day), ("W", week)):  # each day is alone in its ISO week
            kpis += [("default", k, n, kind, period, v) for k, n, v in values(visits, minutes_on)]
    for kind, period in (("D", "2026-01-05"), ("W", "2026 W02")):
        kpis += [("box-2", k, n, kind, period, v) for k, n, v in values(1, 360)]
    for kind, period, visits, minutes_on, boxes in (
        ("D", "2026-01-04", 4, 720, 1),
        ("D", "2026-01-05", 6, 1800, 2),
        ("W", "2026 W01", 4, 720, 1),
        ("W", "2026 W02", 6, 1800, 2),
    ):
        per_box = (
            '[{"box":"box-2","nbMinutesOn":360,"lastSeen":"2026-01-05T06:00:00Z"},'
            '{"box":"default","nbMinutesOn":1440,"lastSeen":"2026-01-06T00:00:00Z"}]'
            if boxes == 2
            else '[{"box":"default","nbMinutesOn":720,"lastSeen":"2026-01-04T12:00:00Z"}]'
        )
        fleet += [
            {
                "kpi_id": k,
                "kpi_name": n,
                "agg_kind": kind,
                "agg_value": period,
                "kpi_value": v.replace('"minutesActivity":30', f'"minutesActivity":{30 * boxes}')
                .replace('"totalMinutesActivity":30', f'"totalMinutesActivity":{30 * boxes}')
                .replace('"filesCreated":2,"filesDeleted":1', f'"filesCreated":{2 * boxes},"filesDeleted":{boxes}'),
                "boxes": boxes,
                "per_box_uptime": per_box if k == 2004 else None,
            }
            for k, n, v in values(visits, minutes_on)
        ]
    warehouse.append(
        "offspot_kpis",
        [
            dict(zip(("box_id", "kpi_id", "kpi_name", "agg_kind", "agg_value", "kpi_value"), k, strict=True))
            for k in kpis
        ],
    )
    warehouse.append("offspot_fleet_kpis", fleet)

    # storage: two snapshot days, live usage now, this month's bill
    created = _t("2026-01-02 23:45:00")
    usage = [
        (date(2026, 1, 1), "UPLOAD", "u1", "alice", 1_500_000_000),
        (date(2026, 1, 1), "UPLOAD", "u2", "bob", 500_000_000),
        (date(2026, 1, 1), "UNATTRIBUTED", "platform-uploads", None, 1_000),
        (date(2026, 1, 2), "UPLOAD", "u1", "alice", 2_000_000_000),
        (date(2026, 1, 2), "UPLOAD", "u3", "alice", 250_000_000),
        (date(2026, 1, 2), "UPLOAD", "u2", "bob", 500_000_000),
    ]
    warehouse.append(
        "usage_data",
        [
            {
                "snapshot_date": d,
                "usage_type": "STORAGE",
                "metered_object_type": t,
                "object_id": o,
                "owner": w,
                "object_location": f"s3://platform-uploads/uploads/{w}/{o}",
                "usage_amount": b,
                "object_count": 1,
                "created_at": created,
            }
            for d, t, o, w, b in usage
        ],
    )
    warehouse.append(
        "usage_live",
        [
            {
                "usage_type": "STORAGE",
                "metered_object_type": "UPLOAD",
                "object_id": o,
                "owner": w,
                "usage_amount": b,
                "object_count": 1,
                "as_of": _t("2026-01-03 08:00:00"),
            }
            for o, w, b in (("u1", "alice", 2_000_000_000), ("u3", "alice", 500_000_000), ("u2", "bob", 400_000_000))
        ],
    )
    warehouse.append(
        "storage_billing_monthly",
        [
            {
                "month": date(2026, 1, 1),
                "owner": "alice",
                "byte_days": 3_750_000_000,
                "gb_days": 3.75,
                "days_measured": 2,
                "computed_at": created,
            },
            {
                "month": date(2026, 1, 1),
                "owner": "bob",
                "byte_days": 1_000_000_000,
                "gb_days": 1.0,
                "days_measured": 2,
                "computed_at": created,
            },
        ],
    )

    # probes: one product, one window, two days of views, one release
    window = {"window_start": _t("2025-12-27 00:00:00"), "window_end": _t("2026-01-03 00:00:00")}
    warehouse.append(
        "probe_popularity",
        [
            {
                "product": "fenix",
                "window_days": 7,
                "probe_name": name,
                **window,
                "views": views,
                "sessions": views,
                "rank": rank,
                "previous_views": prev_views,
                "previous_rank": prev_rank,
                "rank_change": change,
                "is_most_viewed": most,
                "is_least_viewed": least,
                "in_catalogue": True,
            }
            for name, views, rank, prev_views, prev_rank, change, most, least in (
                ("gc_ms", 10, 1, 3, 2, 1, True, False),
                ("dom_ms", 5, 2, 8, 1, -1, True, False),
                ("never_seen", 0, 3, 0, None, None, False, True),
            )
        ],
    )
    warehouse.append(
        "probe_views_daily",
        [
            {
                "period_start": _t(day),
                "product": "fenix",
                "probe_name": probe,
                "action_type": action,
                "events": events,
                "sessions": 1,
                "tracking_ids": 1,
            }
            for day, probe, action, events in (
                ("2026-01-01 00:00:00", "gc_ms", "PROBE_VIEW", 3),
                ("2026-01-01 00:00:00", "dom_ms", "PROBE_VIEW", 2),
                ("2026-01-02 00:00:00", "gc_ms", "PROBE_VIEW", 4),
                ("2026-01-02 00:00:00", "gc_ms", "PROBE_SEARCH", 9),
            )
        ],
    )
    warehouse.append(
        "release_correlation",
        [
            {
                "product": "fenix",
                "version": "130",
                "channel": "release",
                "release_date": date(2026, 1, 2),
                "probe_name": "*",
                "views_before": 5,
                "views_after": 4,
                "daily_views_before": 5 / 14,
                "daily_views_after": 4 / 14,
                "after_before_ratio": 0.8,
                "complete": False,
            },
        ],
    )

    # events: three hourly rollup groups over two days, and one metric
    warehouse.append(
        "event_rollups_hourly",
        [
            {
                "period_start": _t(hour),
                "customer_id": customer,
                "service": service,
                "event_type": kind,
                "schema_version": version,
                "event_count": count,
                "distinct_resources": 1,
                "min_lag_s": 1.0,
                "max_lag_s": lag,
            }
            for hour, customer, service, kind, version, count, lag in (
                ("2026-01-05 10:00:00", 1, "auth0", "login", "v0", 3, 120.0),
                ("2026-01-05 11:00:00", 2, "auth0", "login", "v1", 2, 30.0),
                ("2026-01-06 00:00:00", 1, "tiles", "tile_request", "v1", 7, 600.0),
            )
        ],
    )
    warehouse.append(
        "metrics",
        [
            {
                "period_start": _t(day),
                "period_end": _t(day) + timedelta(days=1),
                "metric_name": "logins",
                "metric_event": "{}",
                "requester": who,
                "metric_value": value,
            }
            for day, who, value in (
                ("2026-01-05 00:00:00", "alice", 2),
                ("2026-01-05 00:00:00", "bob", 1),
                ("2026-01-06 00:00:00", "alice", 4),
            )
        ],
    )
