"""/api/<service>/<path>: passed as is to the service, Authorization and Idempotency-Key included.

Same origin for pages and API keeps the phone's offline queue and service worker simple (no CORS).
A service that does not answer is a 502/504 with a Vietnamese and English message, never a hang.
"""

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTask

router = APIRouter(prefix="/api", include_in_schema=False)

REQUEST_HEADERS = ("authorization", "content-type", "idempotency-key", "accept", "accept-language", "x-actor",
                   "x-access-reason")
RESPONSE_HEADERS = ("content-type", "content-disposition", "content-encoding", "retry-after", "www-authenticate",
                    "cache-control")
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def _unavailable(service: str, status: int, vi: str, en: str) -> JSONResponse:
    return JSONResponse({"error": "upstream_unavailable", "service": service,
                         "message": vi, "message_en": en}, status_code=status)


@router.api_route("/{service}/{path:path}", methods=METHODS)
async def proxy(service: str, path: str, request: Request) -> Response:
    upstreams: dict[str, str] = request.app.state.settings.upstreams
    if service not in upstreams:
        return JSONResponse({"detail": "Không có dịch vụ này / no such service"}, status_code=404)
    client: httpx.AsyncClient = request.app.state.http
    headers = {k: v for k, v in request.headers.items() if k.lower() in REQUEST_HEADERS}
    url = f"{upstreams[service]}/{path}"
    outgoing = client.build_request(request.method, url, params=request.query_params, headers=headers,
                                    content=await request.body())
    try:  # streamed: the ledger export can be large
        upstream = await client.send(outgoing, stream=True)
    except httpx.TimeoutException:
        return _unavailable(service, 504, f"Dịch vụ {service} không trả lời kịp; thử lại sau.",
                            f"The {service} service did not answer in time; try again.")
    except httpx.HTTPError:
        return _unavailable(service, 502, f"Không kết nối được dịch vụ {service}.",
                            f"Cannot reach the {service} service.")
    out = {k: v for k, v in upstream.headers.items() if k.lower() in RESPONSE_HEADERS}
    location = upstream.headers.get("location")
    if location and location.startswith("/"):
        out["location"] = f"/api/{service}{location}"
    out.setdefault("cache-control", "no-store")
    return StreamingResponse(upstream.aiter_raw(), status_code=upstream.status_code, headers=out,
                             background=BackgroundTask(upstream.aclose))
