"""Opaque paging tokens. A token names the query and the last row number already returned;
the next page is the keyset ``row_number > last`` of that query, so page 1,000 costs what
page 1 costs (an index range scan on the primary key).

Format: URL-safe base64 (no padding) of ``v1:<query_id>:<last_row_number>``. Clients must not
build or read them; the server checks a token decodes, is for the query asked about, and
points inside the result.
"""

from __future__ import annotations

import base64
import binascii
import re

_TOKEN = re.compile(r"^v1:([0-9a-f-]{36}):(\d{1,18})$")


class BadPagingToken(ValueError):
    pass


def encode(query_id: str, last_row_number: int) -> str:
    raw = f"v1:{query_id}:{int(last_row_number)}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str, query_id: str) -> int:
    """The last row number the token stands for; raises :class:`BadPagingToken`."""
    if not isinstance(token, str) or not token or len(token) > 200:
        raise BadPagingToken("paging_token is malformed")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise BadPagingToken("paging_token is malformed") from error
    match = _TOKEN.match(raw)
    if not match:
        raise BadPagingToken("paging_token is malformed")
    if match.group(1) != query_id:
        raise BadPagingToken("paging_token belongs to another query")
    return int(match.group(2))
