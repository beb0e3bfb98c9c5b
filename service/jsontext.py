"""JSON from outside the process (request bodies, AWS answers), parsed with a depth bound.

CPython's ``json`` parser recurses once per nested array or object and raises
``RecursionError`` past the interpreter's recursion limit (1,000 frames by default, less the
stack already in use). That limit is the depth bound; this module only makes crossing it a
``ValueError``, like any other text that is not the JSON we take, so that a document nested
100,000 deep is refused as bad input instead of escaping as an unexpected error. Every real
document read here (an ECR event, an SNS envelope, a lifecycle policy, an API answer) is
fewer than ten levels deep. The size bound is the caller's (``events.max_body_bytes`` for
request bodies).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["TOO_DEEP", "loads"]

TOO_DEEP = "nested too deeply"


def loads(text: str | bytes) -> Any:
    """``json.loads``; a document nested too deeply raises ValueError (``TOO_DEEP``)."""
    try:
        return json.loads(text)
    except RecursionError:
        # The interpreter's limit, met at the nesting level past it: nothing deeper is read.
        raise ValueError(TOO_DEEP) from None
