"""The `queries` domain. Its assets, checks, schedules and sensors are exported as `defs`."""

import dagster as dg

defs = dg.Definitions()
