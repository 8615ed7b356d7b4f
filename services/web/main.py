"""The web front: pages for volunteers, commune staff, relief officers, auditors and the public.

Server-rendered Jinja2 pages with a little vanilla JavaScript (no build step), static files, a
service worker for the volunteer's offline queue, QR codes (segno) and SVG charts drawn here,
and /api/<service>/* passed through to the three services. No event store, no NATS.

Signed-in pages load their data in the browser with the token kept in localStorage, so the
server never holds it; public pages (disclosure, ledger explorer, audit report) are rendered
here from the services' public endpoints.
"""

from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from contracts.ledger import ReversalReason
from services.common.settings import package_version
from services.relief.catalogue import ITEMS
from services.web import public
from services.web.proxy import router as proxy_router
from services.web.qr import qr_svg
from services.web.settings import WebSettings

HERE = Path(__file__).parent
LANGS = ("vi", "en")
templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))


def lang_of(request: Request) -> str:
    lang = request.query_params.get("lang") or request.cookies.get("lang") or "vi"
    return lang if lang in LANGS else "vi"


def render(request: Request, template: str, status_code: int = 200, **context) -> HTMLResponse:
    lang = lang_of(request)
    html = templates.get_template(template).render(
        request=request, lang=lang, t=(lambda vi, en: en if lang == "en" else vi), path=request.url.path,
        version=package_version(), **context)
    return HTMLResponse(html, status_code=status_code)


# The token lives in localStorage: only this site's own scripts may run (no inline script, no CDN).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")

# The pages a signed-in user opens, all shells that load their data in the browser.
SHELLS = {
    "/login": "login.html",
    "/volunteer": "volunteer.html",
    "/staff": "staff_search.html",
    "/staff/register": "staff_register.html",
    "/staff/import": "staff_import.html",
    "/staff/slips": "staff_slips.html",
    "/staff/not-served": "staff_not_served.html",
    "/officer": "officer_campaigns.html",
}


def create(settings: WebSettings | None = None) -> FastAPI:
    settings = settings or WebSettings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with httpx.AsyncClient(timeout=settings.timeout, follow_redirects=False) as http:
            app.state.http = http
            yield

    app = FastAPI(title="Cứu trợ minh bạch — trang web / web pages", lifespan=lifespan)
    app.state.settings = settings

    @app.middleware("http")
    async def page_headers(request: Request, call_next):
        response = await call_next(request)
        if not request.url.path.startswith(("/api/", "/docs", "/redoc")):  # services' answers pass untouched
            response.headers.setdefault("Content-Security-Policy", CSP)
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Referrer-Policy", "same-origin")
        return response
    app.add_middleware(GZipMiddleware, minimum_size=1000)  # a bad connection: every byte counts
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(proxy_router)
    app.include_router(public.router)

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ready": True, "service": "web", "upstreams": settings.upstreams}

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request) -> HTMLResponse:
        return render(request, "home.html")

    @app.get("/lang/{code}")
    def switch_language(code: str, next: str = "/") -> RedirectResponse:
        target = next if next.startswith("/") and not next.startswith("//") else "/"
        response = RedirectResponse(target, status_code=303)
        response.set_cookie("lang", code if code in LANGS else "vi", max_age=365 * 86400, samesite="lax")
        return response

    def shell(template: str):
        def page(request: Request) -> HTMLResponse:
            return render(request, template, items=catalogue())
        return page

    for route, template in SHELLS.items():
        app.add_api_route(route, shell(template), methods=["GET"], response_class=HTMLResponse)

    @app.get("/staff/households/{household_id}", response_class=HTMLResponse)
    def household_page(request: Request, household_id: str) -> HTMLResponse:
        return render(request, "staff_household.html", household_id=household_id, items=catalogue(),
                      reversal_reasons=[reason.value for reason in ReversalReason], reason_labels=REVERSAL_REASONS)

    @app.get("/officer/campaigns/{campaign_id}", response_class=HTMLResponse)
    def campaign_page(request: Request, campaign_id: str) -> HTMLResponse:
        return render(request, "officer_campaign.html", campaign_id=campaign_id, items=catalogue())

    @app.get("/officer/rounds/{round_id}", response_class=HTMLResponse)
    def round_page(request: Request, round_id: str) -> HTMLResponse:
        return render(request, "officer_round.html", round_id=round_id, items=catalogue())

    @app.get("/qr.svg")
    def qr(d: str = Query(min_length=1, max_length=300), scale: int = Query(4, ge=1, le=20)) -> Response:
        return Response(qr_svg(d, scale), media_type="image/svg+xml",
                        headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/sw.js")
    def service_worker() -> FileResponse:
        # served from the root so its scope covers every page; never cached by the browser itself
        return FileResponse(HERE / "static" / "sw.js", media_type="text/javascript",
                            headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"})

    @app.get("/manifest.webmanifest")
    def manifest() -> JSONResponse:
        return JSONResponse({"name": "Cứu trợ minh bạch", "short_name": "Cứu trợ", "start_url": "/volunteer",
                             "display": "standalone", "background_color": "#ffffff", "theme_color": "#1f6fb2",
                             "icons": []}, media_type="application/manifest+json")

    app.state.render = render
    return app


# The ledger's reversal reasons (contracts.ledger.ReversalReason), in words; a reason added there
# shows as its code until it is named here.
REVERSAL_REASONS = {
    "recorded_in_error": ("Ghi nhầm (chưa phát thật)", "Recorded in error (not handed out)"),
    "wrong_household": ("Phát nhầm hộ", "Handed to the wrong household"),
    "goods_returned": ("Hộ trả lại hàng", "Goods returned by the household"),
    "other": ("Lý do khác", "Other reason"),
}


def catalogue() -> dict[str, dict]:
    return {code: {"vi": item.name_vi, "en": item.name_en, "unit": item.unit} for code, item in ITEMS.items()}
