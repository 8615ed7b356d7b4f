"""The web front without a browser or services: a service that does not answer is a plain 502,
the language switch stays on this site, QR codes are SVG, and the disclosure figures add up."""

from fastapi.testclient import TestClient

from services.common.natsserver import free_port
from services.web.main import create
from services.web.public import disclosure_figures
from services.web.settings import WebSettings


def web() -> TestClient:
    dead = f"http://127.0.0.1:{free_port()}"
    return TestClient(create(WebSettings(port=0, upstreams={"households": dead, "relief": dead, "ledger": dead},
                                         timeout=2)))


def test_a_service_that_does_not_answer_is_a_502_in_words():
    with web() as client:
        response = client.get("/api/ledger/ledger/info", headers={"Authorization": "Bearer x"})
        assert response.status_code == 502
        assert response.json()["message"].startswith("Không kết nối được") and response.json()["message_en"]
        assert client.get("/api/nothing/x").status_code == 404
        page = client.get("/public")  # a public page says what it could not load
        assert page.status_code == 502 and "Không lấy được" in page.text


def test_settings_follow_the_service_ports():
    settings = WebSettings.from_env({"WEB_PORT": "8100", "RELIEF_PORT": "9002", "LEDGER_URL": "http://ledger:8003/"})
    assert settings.port == 8100
    assert settings.upstreams == {"households": "http://127.0.0.1:8001", "relief": "http://127.0.0.1:9002",
                                  "ledger": "http://ledger:8003"}


def test_language_switch_qr_and_pages():
    with web() as client:
        vietnamese = client.get("/staff")
        assert "Tìm hộ gia đình" in vietnamese.text  # Vietnamese first
        assert "script-src 'self'" in vietnamese.headers["content-security-policy"]
        switched = client.get("/lang/en?next=/staff", follow_redirects=False)
        assert switched.status_code == 303 and switched.headers["location"] == "/staff"
        assert "lang=en" in switched.headers["set-cookie"]
        assert client.get("/lang/en?next=//evil.example/", follow_redirects=False).headers["location"] == "/"
        assert "Find a household" in client.get("/staff").text  # the cookie stays
        qr = client.get("/qr.svg", params={"d": "http://127.0.0.1:8000/volunteer#h=x"})
        assert qr.status_code == 200 and qr.headers["content-type"] == "image/svg+xml" and b"<svg" in qr.content
        assert client.get("/sw.js").headers["content-type"].startswith("text/javascript")
        for path in ("/", "/login", "/volunteer", "/staff/import", "/staff/slips", "/staff/not-served", "/officer",
                     "/staff/households/abc", "/officer/campaigns/abc", "/officer/rounds/abc"):
            assert client.get(path).status_code == 200, path


def test_disclosure_figures_add_up():
    d = {"received": {"donations": {"count": 2, "cash_vnd": 5_000_000, "goods_value_vnd": 1_000_000,
                                    "total_vnd": 6_000_000},
                      "state_budget": {"count": 0, "total_vnd": 0}},
         "distribution": [{"commune_code": "00070", "commune_name": "Phường Hoàn Kiếm", "households": 3,
                           "households_served": 2,
                           "items": [{"item_code": "cash", "delivered": 600_000, "value_delivered_vnd": 600_000},
                                     {"item_code": "rice", "delivered": 20, "value_delivered_vnd": 300_000}]}],
         "stock": [{"name": "Gạo", "unit": "kg", "received": 100, "delivered": 20}]}
    f = disclosure_figures(d, "vi")
    assert (f["total_received"], f["cash_delivered"], f["value_delivered"], f["entitled"], f["served"]) == (
        6_000_000, 600_000, 900_000, 3, 2)
    assert f["charts"]["money"].startswith("<svg") and "Phường Hoàn Kiếm" in f["charts"]["communes"]
    charts = "".join(f["charts"].values())
    assert "<script" not in charts and "http" not in charts.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert 'class="axis x"' not in charts  # no value axis: the values are printed on the bars
    assert ">600.000 đ</text>" in f["charts"]["money"] and ">2 hộ</text>" in f["charts"]["communes"]
    assert ">100</text>" in f["charts"]["goods"] and ">20</text>" in f["charts"]["goods"]  # kg, as received/delivered
