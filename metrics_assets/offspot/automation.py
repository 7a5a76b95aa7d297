"""When the offspot assets run: each closed hour, shortly after it closes, then the KPIs; and
the hours that newly uploaded files of any box touch, as soon as the sensor sees them."""

import hashlib
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from metrics_assets.offspot.assets import (
    HOURLY,
    offspot_fleet_kpis,
    offspot_indicators,
    offspot_kpis,
)
from metrics_assets.offspot.logfiles import classify
from metrics_assets.offspot.sources import box_folders
from metrics_assets.offspot.uploads import (
    closed_hours,
    hour_start,
    hours_touched,
    ranges,
)
from metrics_assets.resources import ObjectStore
from metrics_assets.settings import ConfigurationError

HOUR_FORMAT = "%Y-%m-%d-%H:%M"
WRITES_TAG = "offspot/writes"

offspot_hourly_job = dg.define_asset_job(
    "offspot_hourly_job",
    selection=dg.AssetSelection.assets(offspot_indicators, offspot_kpis, offspot_fleet_kpis),
    description="One closed hour of offspot indicators for every box, then the per-box and fleet KPIs recomputed from them.",
    # runs of this job queue one at a time (dagster.yaml's tag_concurrency_limits): the schedule
    # and the uploads sensor can ask for the same hour, and both replace every box's slice of it
    tags={WRITES_TAG: "offspot_indicator_records"},
)

#: Five minutes past each hour, the hour that just closed (Caddy flushes each line as written;
#: the margin covers heartbeat timers and clock drift). Late logs: rematerialize their hours.
offspot_hourly_schedule = dg.build_schedule_from_partitioned_job(
    offspot_hourly_job,
    name="offspot_hourly_schedule",
    minute_of_hour=5,
    description="Materializes each closed hour's offspot indicators five minutes after it closes, then the KPIs.",
)


#: The sensor's cursor: ``{"files": {"<box>/<name>": [size, mtime, last hour seen]}}``.
UPLOADS_SENSOR_INTERVAL = 120


@dg.sensor(
    name="offspot_uploads_sensor",
    job=offspot_hourly_job,
    minimum_interval_seconds=UPLOADS_SENSOR_INTERVAL,
    description=(
        "Watches every box's folder (OFFSPOT_FLEET_ROOT, or OFFSPOT_LOG_DIR for one box) and, for log or "
        "heartbeat files that are new or changed since it last looked, requests offspot_hourly_job for "
        "exactly the closed hours those files hold lines of (one run per run of consecutive hours), so a "
        "box that was offline is counted when its logs arrive."
    ),
)
def offspot_uploads_sensor(context: dg.SensorEvaluationContext, object_store: ObjectStore):
    now = datetime.now(UTC)
    cursor = json.loads(context.cursor) if context.cursor else {}
    seen: dict[str, list] = cursor.get("files", {})
    current: dict[str, list] = {}
    touched: dict[int, set[str]] = {}
    with tempfile.TemporaryDirectory(prefix="offspot_sensor_") as scratch:
        try:
            folders = box_folders(object_store, Path(scratch))
        except ConfigurationError as error:
            return dg.SkipReason(str(error))
        for box, folder in folders:
            inventory = classify(folder.names)
            tracked = [(f.name, False) for f in inventory.access]
            if inventory.heartbeat:
                tracked.append((inventory.heartbeat, True))
            for name, heartbeat in tracked:
                key = f"{box}/{name}"
                size, mtime = folder.stats[name]
                before = seen.get(key)
                if before and before[0] == size and before[1] == mtime:
                    current[key] = before
                    continue
                # a file that only grew: from the last hour seen in it; otherwise all of it
                since = before[2] if before and size >= before[0] and before[2] is not None else None
                hours = hours_touched(folder.local(name), heartbeat, since)
                for h in hours:
                    touched.setdefault(h, set()).add(box)
                # next time, read from the oldest hour not closed yet (the schedule's, or later
                # lines), else from the newest hour seen
                still_open = hours - closed_hours(hours, now, HOURLY.start)
                still_open = {h for h in still_open if hour_start(h) >= HOURLY.start}
                current[key] = [size, mtime, min(still_open) if still_open else max(hours, default=since)]
                context.log.info(f"{key}: {'grown' if before else 'new'}, {len(hours)} hour(s) touched")
    hours = closed_hours(set(touched), now, HOURLY.start)
    new_cursor = json.dumps({"files": current}, sort_keys=True)
    tick = hashlib.sha1(new_cursor.encode()).hexdigest()[:12]
    requests = []
    for first, last in ranges(hours):
        start_key = hour_start(first).strftime(HOUR_FORMAT)
        end_key = hour_start(last).strftime(HOUR_FORMAT)
        boxes = sorted(set().union(*(touched[h] for h in range(first, last + 1) if h in touched)))
        requests.append(
            dg.RunRequest(
                run_key=f"{start_key}..{end_key}@{tick}",
                tags={
                    "dagster/asset_partition_range_start": start_key,
                    "dagster/asset_partition_range_end": end_key,
                    "offspot/boxes": ",".join(boxes)[:200],
                },
            )
        )
    if not requests:
        return dg.SensorResult(skip_reason=dg.SkipReason("no new log lines in a closed hour"), cursor=new_cursor)
    return dg.SensorResult(run_requests=requests, cursor=new_cursor)
