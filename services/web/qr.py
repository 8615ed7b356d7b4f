"""QR codes as SVG with segno (pinned in pyproject), for household slips."""

import io
from functools import lru_cache

import segno


@lru_cache(maxsize=4096)
def qr_svg(data: str, scale: int = 4) -> bytes:
    out = io.BytesIO()
    segno.make(data, error="m", micro=False).save(out, kind="svg", scale=scale, border=2, xmldecl=False,
                                                   svgns=True, title=None)
    return out.getvalue()
