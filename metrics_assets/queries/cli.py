"""``metrics-query``: ad hoc queries over the event lake (see the queries issue)."""

import sys


def main(argv: list[str] | None = None) -> int:
    print("metrics-query: not available yet", file=sys.stderr)
    return 2
