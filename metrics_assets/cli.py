"""``metrics-assets``: the project's command line.

metrics-assets demo [--home DIR]   sample data for every domain, then materialize it all
metrics-assets upgrade             create or upgrade the warehouse schema in place
metrics-assets dashboard [--host 127.0.0.1] [--port 8050]
                                   the dashboards and the offspot KPI API (read-only)
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="metrics-assets", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="generate sample data and materialize every asset")
    demo.add_argument("--home", help="METRICS_HOME to use (default ./.metrics_home)")
    sub.add_parser("upgrade", help="create or upgrade the warehouse schema")
    dashboard = sub.add_parser("dashboard", help="serve the dashboards and the offspot KPI API")
    dashboard.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    dashboard.add_argument("--port", type=int, default=8050, help="port (default 8050)")
    args = parser.parse_args(argv)

    if args.command == "demo":
        import warnings

        import dagster as dg

        # BackfillPolicy is still labelled beta in Dagster 1.13; the demo's reader needs no notice.
        warnings.filterwarnings("ignore", category=dg.BetaWarning)
        from metrics_assets import demo as demo_module

        return demo_module.main(args.home)
    if args.command == "upgrade":
        from metrics_assets import settings
        from metrics_assets.resources.warehouse import engine_for

        url = settings.warehouse_url()
        engine_for(url)
        print(f"warehouse schema is up to date: {url}")
        return 0
    if args.command == "dashboard":
        from metrics_assets import settings
        from metrics_assets.dashboard.app import serve

        try:
            serve(args.host, args.port)
        except settings.ConfigurationError as error:
            print(f"metrics-assets: {error}", file=sys.stderr)
            return 2
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
