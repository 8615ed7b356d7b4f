"""Issue 6, the other pages in headless chromium: sign-in, commune staff search without diacritics
and the household page, QR slips, the officer's round preview, the public disclosure with the
right totals, and the ledger explorer checking a receipt in the browser. Screenshots of each go
to docs/screenshots/."""

import json
import re
from datetime import datetime, timezone

import httpx
import pytest
from playwright.sync_api import expect

from services.common.auth import Role
from tests.browser.conftest import COMMUNE, eventually, screenshot

pytestmark = pytest.mark.nats


def deliver(stack, household: str, username: str = "tnv-api") -> dict:
    """A delivery recorded straight at the ledger, as a volunteer's phone would."""
    entitlement = stack.seed["entitlements"][household]
    volunteer = stack.headers(Role.volunteer, (COMMUNE,), username)
    package = httpx.get(f"{stack.urls['ledger']}/entitlements/{entitlement}", headers=volunteer).json()
    response = httpx.post(f"{stack.urls['ledger']}/deliveries", headers={**volunteer, "Idempotency-Key": f"t-{household}"},
                          json={"entitlement_id": entitlement, "items": package["items"], "cash_vnd": package["cash_vnd"],
                                "device_id": "test-phone", "delivered_at": datetime.now(timezone.utc).isoformat()})
    assert response.status_code in (200, 201, 409), response.text
    return response.json()


def test_sign_in_with_a_password_keeps_the_token(stack, open_as):
    admin = stack.headers()
    created = httpx.post(f"{stack.urls['households']}/users", headers=admin, json={
        "username": "tnv-login", "password": "mat-khau-dai-1", "role": "volunteer", "communes": [COMMUNE]})
    assert created.status_code in (201, 409), created.text
    page = open_as().new_page()
    page.goto("/login")
    page.fill("input[name=username]", "tnv-login")
    page.fill("input[name=password]", "sai-mat-khau-9")
    page.click("button[type=submit]")
    expect(page.locator("#login-msg")).to_contain_text("Sai tên đăng nhập hoặc mật khẩu")
    page.fill("input[name=password]", "mat-khau-dai-1")
    page.click("button[type=submit]")
    page.wait_for_url("**/volunteer")
    session = json.loads(page.evaluate("localStorage.getItem('session')"))
    assert session["user"]["role"] == "volunteer" and session["access_token"]
    expect(page.locator("#who")).to_contain_text("tnv-login")


def test_commune_staff_find_households_without_diacritics(stack, open_as):
    page = open_as(Role.commune_staff, username="can-bo-xa").new_page()
    page.goto("/staff")
    page.fill("#q", "nguyen van")
    rows = page.locator("#found tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#found")).to_contain_text("Nguyễn Văn An")
    expect(page.locator("#found")).to_contain_text("Nguyễn Văn Phúc")
    expect(page.locator("#found")).not_to_contain_text("Trần Thị Bình")
    page.fill("#q", "do thi giang")
    expect(rows).to_have_count(1)
    expect(page.locator("#found")).to_contain_text("Đỗ Thị Giang")
    page.fill("#q", "nguyen van")
    expect(rows).to_have_count(2)
    screenshot(page, "staff-search")

    page.locator("#found a", has_text="Nguyễn Văn An").click()
    expect(page.locator("#head")).to_have_text("Nguyễn Văn An")
    expect(page.locator("#members")).to_contain_text("Con 0")
    expect(page.locator("#quarantines")).to_contain_text("2021-07-20")
    expect(page.locator("#history tbody tr").first).to_be_visible()
    screenshot(page, "household")


def test_staff_register_a_household_and_correct_it(stack, open_as):
    page = open_as(Role.commune_staff, communes=(COMMUNE, "00073"), username="can-bo-xa-2").new_page()
    page.goto("/staff/register")
    form = page.locator("#register-form")
    form.locator("[name=head_name]").fill("Bùi Văn Quang")
    form.locator("[name=cccd]").fill("001077000321")
    form.locator("[name=birth_year]").fill("1977")
    form.locator("[name=commune_code]").fill("00073")
    form.locator("[name=village]").fill("Tổ 3")
    page.click("#add-member")
    form.locator("[name=m_name]").fill("Bùi Thị Hoa")
    form.locator("[name=m_relation]").select_option("spouse")
    page.click("#register-form button[type=submit]")
    expect(page.locator("#register-msg")).to_contain_text("Đã đăng ký")
    page.locator("#register-msg a").click()
    expect(page.locator("#head")).to_have_text("Bùi Văn Quang")
    expect(page.locator("#members")).to_contain_text("Bùi Thị Hoa")

    page.locator("summary", has_text="Sửa thông tin hộ").click()
    page.fill("#correct-form [name=address]", "Số 12 ngõ 4")
    page.fill("#correct-form [name=reason]", "Hộ báo địa chỉ mới")
    page.click("#correct-form button")
    expect(page.locator("#correct-msg")).to_contain_text("Đã lưu")
    expect(page.locator("#summary")).to_contain_text("Số 12 ngõ 4")

    page.goto("/staff/register")  # the same head again: 409, with a link to the household
    form.locator("[name=head_name]").fill("Bùi Văn Quang")
    form.locator("[name=cccd]").fill("001077000321")
    form.locator("[name=commune_code]").fill("00073")
    form.locator("[name=village]").fill("Tổ 3")
    page.click("#register-form button[type=submit]")
    expect(page.locator("#register-msg.error")).to_contain_text("Trùng")


IMPORT_CSV = """household_ref,relation,full_name,birth_year,cccd,commune_code,village,legal_basis,legal_reference
K1,chủ hộ,Lý Văn Khoa,1970,001070000901,00073,Tổ 9,public_task,Chỉ thị 16/CT-TTg
K1,con,Lý Thị Lan,2012,,,,,
K2,chủ hộ,Mai Văn Minh,1975,12345,00073,Tổ 9,public_task,Chỉ thị 16/CT-TTg
"""


def test_import_shows_progress_and_row_errors(stack, open_as, tmp_path):
    csv = tmp_path / "danh-sach.csv"
    csv.write_text(IMPORT_CSV, encoding="utf-8")
    page = open_as(Role.admin, communes=("*",), username="quan-tri").new_page()
    page.goto("/staff/import")
    page.set_input_files("input[type=file]", str(csv))
    page.click("#import-form button")
    expect(page.locator("#import-status")).to_contain_text("done", timeout=30_000)
    expect(page.locator("#row-errors")).to_be_visible()
    expect(page.locator("#row-errors tbody")).to_contain_text("cccd")
    assert page.locator("#progress").evaluate("p => p.value === p.max")


def test_slips_one_page_per_village_with_qr_codes(stack, open_as):
    page = open_as(Role.commune_staff, username="can-bo-xa").new_page()
    page.goto("/staff/slips")
    page.fill("input[name=commune_code]", COMMUNE)
    page.click("#slips-form button:not([type=button])")
    expect(page.locator(".slip")).to_have_count(len(stack.seed["households"]))
    expect(page.locator("section.village")).to_have_count(2)
    image = page.locator(".slip img").first.get_attribute("src")
    assert image.startswith("/qr.svg?d=")
    svg = httpx.get(stack.web + image)
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    screenshot(page, "slips")
    pdf = page.pdf(format="A4")  # printed: one page per village
    assert len(re.findall(rb"/Type\s*/Page\b", pdf)) == 2


def test_not_served_list_per_village_is_printable(stack, open_as):
    staff = stack.headers(Role.commune_staff, (COMMUNE,), "can-bo-xa")
    expected = httpx.get(f"{stack.urls['relief']}/reports/not-served", params={"commune_code": COMMUNE},
                         headers=staff).json()
    page = open_as(Role.commune_staff, username="can-bo-xa").new_page()
    page.goto("/staff/not-served")
    page.click("#not-served-form button:not([type=button])")
    expect(page.locator("#not-served section.village")).to_have_count(len({h["village"] for h in expected["households"]}))
    expect(page.locator("#not-served tbody tr")).to_have_count(expected["total"])
    expect(page.locator("#not-served")).to_contain_text("Đỗ Thị Giang")  # names from households, not relief
    screenshot(page, "not-served")
    with page.expect_popup() as popup:  # the daily report, printable, opened with the staff's token
        page.click("#daily")
    expect(popup.value.locator("h1")).to_contain_text("BÁO CÁO NHANH")


def test_officer_previews_a_round_before_issuing(stack, open_as):
    page = open_as(Role.relief_officer, username="can-bo-cuu-tro").new_page()
    page.goto(f"/officer/campaigns/{stack.seed['campaign_id']}")
    expect(page.locator("#donations tbody tr")).to_have_count(2)
    expect(page.locator("#near-expiry")).to_contain_text("Sữa")
    page.on("dialog", lambda dialog: dialog.accept("Biên bản huỷ 01/BB"))
    page.locator("#near-expiry button.write-off").click()  # expired milk leaves the stock
    expect(page.locator("#stock tbody tr", has_text="Sữa")).to_contain_text("30")
    expect(page.locator("#near-expiry")).to_be_empty()
    page.goto(f"/officer/rounds/{stack.seed['draft_round_id']}")
    expect(page.locator("#eligible")).to_have_text(str(len(stack.seed["households"])))
    expect(page.locator("#shortfall")).to_contain_text("Gạo")  # 20 kg free, 40 kg needed
    expect(page.locator("#issue")).to_be_visible()
    screenshot(page, "officer-round")
    page.click("#issue")  # not enough rice: refused, nothing issued, said plainly
    expect(page.locator("#issue-msg.error")).to_contain_text("Không đủ hàng")
    assert httpx.get(f"{stack.urls['relief']}/rounds/{stack.seed['draft_round_id']}",
                     headers=stack.headers()).json()["status"] == "draft"

    page.goto(f"/officer/rounds/{stack.seed['round_id']}")  # issued: what a top-up would add
    expect(page.locator("#preview-title")).to_contain_text("bổ sung")
    expect(page.locator("#eligible")).to_have_text("0")
    expect(page.locator("#top-up")).to_be_visible()
    expect(page.locator("#issue")).to_be_hidden()


def test_officer_records_a_donation_and_prints_its_receipt(stack, open_as):
    campaign = httpx.post(f"{stack.urls['relief']}/campaigns", headers=stack.headers(), json={
        "level": "commune", "unit_code": COMMUNE, "name": "Áo ấm cho bà con", "purpose": "Chăn, áo ấm mùa đông",
        "legal_basis": "decree_93_2021", "call_document": "Thư kêu gọi 02/TKG-MTTQ", "opens_on": "2022-01-01",
        "closes_on": "2022-03-31", "accounts": [{"kind": "bank", "number": "0022", "bank_name": "Agribank"}]})
    assert campaign.status_code == 201, campaign.text
    page = open_as(Role.relief_officer, username="can-bo-cuu-tro").new_page()
    page.goto("/officer")
    page.locator("#campaigns a", has_text="Áo ấm cho bà con").click()
    expect(page.locator("#name")).to_have_text("Áo ấm cho bà con")
    page.locator("summary", has_text="Ghi nhận đóng góp").click()
    form = page.locator("#donation-form")
    form.locator("[name=name]").fill("Hợp tác xã Thành Công")
    form.locator("[name=received_on]").fill("2022-01-05")
    form.locator("[name=channel]").select_option("goods")
    form.locator("[name=item_code]").select_option("milk")
    form.locator("[name=quantity]").fill("300")
    form.locator("[name=unit_value_vnd]").fill("8000")
    form.locator("button").click()  # milk perishes: the expiry date is asked for, plainly
    expect(page.locator("#donation-msg.error")).to_contain_text("hạn sử dụng")
    form.locator("[name=expiry_date]").fill("2022-02-28")
    form.locator("button").click()
    expect(page.locator("#donation-msg")).to_contain_text("biên nhận số 1")
    expect(page.locator("#donations tbody tr")).to_have_count(1)
    expect(page.locator("#totals")).to_contain_text("2.400.000")
    with page.expect_popup() as popup:
        page.locator("#donations button.receipt").last.click()
    receipt = popup.value
    expect(receipt.locator("body")).to_contain_text("Hợp tác xã Thành Công")

    page.goto("/public")  # signed in: the campaigns are listed (relief lists them to officers only)
    expect(page.locator("#campaigns")).to_contain_text("Áo ấm cho bà con")


def test_disclosure_page_shows_the_right_totals(stack, open_as):
    deliver(stack, stack.seed["households"]["Vũ Văn Hùng"])
    admin = stack.headers()
    served = eventually(lambda: (n := sum(httpx.get(f"{stack.urls['ledger']}/entitlements/{e}", headers=admin)
                                          .json()["state"] == "served" for e in stack.seed["entitlements"].values()))
                        and n, "deliveries in the ledger")
    campaign = stack.seed["campaign_id"]
    eventually(lambda: httpx.get(f"{stack.urls['relief']}/campaigns/{campaign}/disclosure").json()["distribution"][0]
               ["households_served"] == served, "relief counts what the ledger holds")

    page = open_as().new_page()  # the public: nobody signed in, from the code on the notice board
    page.goto("/public")
    page.fill("#campaign-code", campaign)
    page.click("form.card button")
    page.wait_for_url(f"**/public/campaigns/{campaign}")
    # 5.000.000 đ cash + goods 100 kg rice x 15.000 + 20 kg sugar x 20.000 + 30 milk x 8.000
    expect(page.locator("#total-received")).to_have_text("7.140.000 đ")
    expect(page.locator("#cash-received")).to_have_text("5.000.000 đ")
    expect(page.locator("#households-entitled")).to_have_text(str(len(stack.seed["households"])))
    expect(page.locator("#households-served")).to_have_text(str(served))
    expect(page.locator("#cash-delivered")).to_have_text(f"{served * 300_000:,} đ".replace(",", "."))
    expect(page.locator("svg.chart").first).to_be_visible()
    expect(page.locator("#beneficiaries tbody tr")).to_have_count(len(stack.seed["households"]))
    expect(page.locator("#beneficiaries")).to_contain_text("Vũ Văn Hùng")
    csv_link = page.locator("#downloads a", has_text="Danh sách hộ").get_attribute("href")
    csv = httpx.get(stack.web + csv_link).content.decode("utf-8-sig").splitlines()
    assert csv[1].startswith("#adm2+code") and len(csv) == 2 + len(stack.seed["households"])
    screenshot(page, "disclosure")

    page.goto("/lang/en?next=/public/campaigns/" + campaign)
    expect(page.locator("h1")).to_contain_text("Public disclosure")
    expect(page.locator("#households-served")).to_have_text(str(served))


def test_ledger_explorer_checks_a_receipt_in_the_browser(stack, open_as):
    deliver(stack, stack.seed["households"]["Hoàng Văn Em"])
    eventually(lambda: (httpx.get(f"{stack.urls['ledger']}/ledger/info").json()["latest_checkpoint"] or {})
               .get("tree_size", 0) >= 1, "a checkpoint")
    page = open_as().new_page()
    page.goto("/ledger")
    expect(page.locator("#entries-table tbody tr").first).to_contain_text("delivery")
    page.fill("#seq", "1")
    page.click("#fetch-receipt")
    expect(page.locator("#verdict")).to_contain_text("Biên nhận hợp lệ")
    expect(page.locator("#check-result li.error")).to_have_count(0)
    screenshot(page, "ledger")
    audit = page.context.new_page()  # relief-audit report, as HTML, from the ledger's export
    assert audit.goto("/ledger/audit").status == 200
    expect(audit.locator("body")).to_contain_text(f"eligible: {len(stack.seed['households'])}")
    screenshot(audit, "audit-report")

    receipt = json.loads(page.input_value("#receipt"))
    receipt["entry"]["cash_vnd"] += 1  # a receipt someone edited
    page.fill("#receipt", json.dumps(receipt))
    page.click("#check")
    expect(page.locator("#verdict")).to_contain_text("KHÔNG hợp lệ")


def reverse_through_the_form(page, reason: str) -> None:
    page.locator("#deliveries button.reverse").click()
    form = page.locator("#reverse-form")
    expect(form).to_be_visible()
    form.locator(f"input[name=reason][value={reason}]").check()
    form.locator("button[type=submit]").click()
    expect(page.locator("#reverse-question")).to_contain_text("không xoá được")  # the confirmation step
    page.click("#reverse-yes")


def test_a_wrong_delivery_is_reversed_by_an_officer_not_by_commune_staff(stack, open_as):
    household = stack.seed["households"]["Nguyễn Văn Phúc"]
    seq = deliver(stack, household)["seq"]
    eventually(lambda: httpx.get(f"{stack.urls['households']}/households/{household}/deliveries",
                                 headers=stack.headers()).json()["deliveries"], "households hears of the delivery")
    eventually(lambda: not any(x["household_id"] == household for x in httpx.get(
        f"{stack.urls['relief']}/reports/not-served", params={"commune_code": COMMUNE},
        headers=stack.headers()).json()["households"]), "relief hears of the delivery")

    staff = open_as(Role.commune_staff, username="can-bo-xa").new_page()
    staff.on("dialog", lambda dialog: pytest.fail(f"a browser dialog: {dialog.message}"))
    staff.goto(f"/staff/households/{household}")
    reverse_through_the_form(staff, "wrong_household")
    expect(staff.locator("#reverse-msg.error")).to_contain_text("không có quyền")

    officer = open_as(Role.relief_officer, username="can-bo-cuu-tro").new_page()
    officer.on("dialog", lambda dialog: pytest.fail(f"a browser dialog: {dialog.message}"))
    officer.goto(f"/staff/households/{household}")
    expect(officer.locator("#eligibility")).to_contain_text("Không có suất nào đang chờ nhận")
    officer.locator("#deliveries button.reverse").click()  # changing one's mind: Back, then Cancel
    officer.locator("#reverse-form input[value=recorded_in_error]").check()
    officer.locator("#reverse-form button[type=submit]").click()
    officer.click("#reverse-back")
    officer.locator("#reverse-form .reverse-cancel").click()
    expect(officer.locator("#reverse-form")).to_be_hidden()
    reverse_through_the_form(officer, "wrong_household")
    expect(officer.locator("#signin-msg")).to_contain_text("Đã đảo ngược")
    # the page shows it re-opened: the entry marked reversed, the entitlement waiting again
    expect(officer.locator("#deliveries")).to_contain_text("đã đảo", timeout=30_000)
    expect(officer.locator("#deliveries button.reverse")).to_have_count(0)
    expect(officer.locator("#eligibility")).to_contain_text("có suất, chưa nhận")
    entitlement = stack.seed["entitlements"][household]
    assert httpx.get(f"{stack.urls['ledger']}/entitlements/{entitlement}", headers=stack.headers()).json()["state"] == "open"
    export = httpx.get(f"{stack.urls['ledger']}/ledger/export").text
    assert f'"reverses_seq":{seq}' in export and "wrong_household" in export


def stock_row(page, item: str):
    return page.locator(f"#stock tbody tr[data-item={item}]")


def test_an_officer_sends_a_transfer_and_the_other_committee_receives_it(stack, open_as):
    other = "00073"  # Phường Cửa Nam: another commune's committee
    campaign = httpx.post(f"{stack.urls['relief']}/campaigns", headers=stack.headers(), json={
        "level": "commune", "unit_code": other, "name": "Cửa Nam chung tay", "purpose": "Hộ cách ly tại nhà",
        "legal_basis": "decree_64_2008", "call_document": "Thư kêu gọi 03/TKG-MTTQ", "opens_on": "2021-07-01",
        "closes_on": "2021-09-30", "accounts": [{"kind": "bank", "number": "0033", "bank_name": "BIDV"}]})
    assert campaign.status_code == 201, campaign.text
    receiving, sending = campaign.json()["id"], stack.seed["campaign_id"]

    sender = open_as(Role.relief_officer, username="can-bo-cuu-tro").new_page()
    sender.goto(f"/officer/campaigns/{sending}")
    expect(stock_row(sender, "sugar").locator(".transferred")).to_have_text("0")
    free = int(stock_row(sender, "sugar").locator(".free").inner_text().replace(".", ""))
    assert free >= 3
    sender.locator("summary", has_text="Chuyển hàng cho ban khác").click()
    form = sender.locator("#transfer-form")
    form.locator("[name=to_campaign_id]").select_option(receiving)
    form.locator("[name=item_code]").select_option("sugar")
    form.locator("[name=quantity]").fill(str(free + 1000))  # more than is free: refused, naming what is short
    form.locator("[name=document_ref]").fill("BB 05/BBBG")
    form.locator("[name=note]").fill("Hỗ trợ phường bạn")
    form.locator("button").click()
    expect(sender.locator("#transfer-msg.error")).to_contain_text("Không đủ hàng")
    form.locator("[name=quantity]").fill("3")
    form.locator("button").click()
    expect(sender.locator("#transfer-msg.ok")).to_contain_text("Đã gửi")
    expect(stock_row(sender, "sugar").locator(".transferred")).to_have_text("3")
    expect(stock_row(sender, "sugar").locator(".free")).to_have_text(str(free - 3))
    sent = sender.locator("#sent-list li.sent")
    expect(sent).to_have_count(1)
    expect(sent).to_contain_text("Cửa Nam chung tay")
    code = sent.locator(".transfer-code").inner_text()
    link = sent.locator("a").get_attribute("href")
    assert link.endswith(f"/officer/campaigns/{receiving}?receive={code}#transfers")
    screenshot(sender, "officer-transfer-sent")

    # the sender cannot receive it (not their committee): relief lists it on the receiving page
    sender.goto(link)
    expect(sender.locator("#incoming-list li.incoming.asked")).to_have_count(1)
    sender.locator("#incoming-list button.receive").click()
    expect(sender.locator("#receive-msg.error")).to_contain_text("không có quyền")

    receiver = open_as(Role.relief_officer, communes=(other,), username="can-bo-cua-nam").new_page()
    receiver.goto(f"/officer/campaigns/{receiving}")  # no code needed: the pending transfer is listed
    expect(receiver.locator("#stock tbody tr")).to_have_count(0)
    incoming = receiver.locator("#incoming-list li.incoming")
    expect(incoming).to_have_count(1)
    expect(incoming).to_contain_text("BB 05/BBBG")
    expect(incoming).to_contain_text("can-bo-cuu-tro")
    expect(incoming).to_contain_text(code)
    # the code entry stays as a fallback: an unknown code is shown and relief answers for it
    receiver.locator("summary", has_text="Nhận hàng chuyển đến").click()
    receiver.fill("#receive-form [name=transfer_id]", "00000000-0000-4000-8000-000000000000")
    receiver.locator("#receive-form button").click()
    receiver.locator("#incoming-list li.typed button.receive").click()
    expect(receiver.locator("#receive-msg.error")).to_contain_text("Không tìm thấy")
    incoming.locator("button.receive").click()
    expect(receiver.locator("#receive-msg.ok")).to_contain_text("Đã nhận vào kho")
    expect(receiver.locator("#receive-msg")).to_contain_text("BB 05/BBBG")
    expect(stock_row(receiver, "sugar").locator(".received")).to_have_text("3")
    expect(stock_row(receiver, "sugar").locator(".free")).to_have_text("3")
    expect(incoming).to_have_count(0)
    expect(receiver.locator("#done-list li.done")).to_contain_text("can-bo-cua-nam")
    screenshot(receiver, "officer-transfer-received")
    receiver.goto(link)  # a second time: the page says it was already received, no button
    expect(receiver.locator("#incoming-list li.typed")).to_contain_text("đã được nhận")
    expect(receiver.locator("#incoming-list button.receive")).to_have_count(0)

    sender.goto(f"/officer/campaigns/{sending}")
    expect(stock_row(sender, "sugar").locator(".transferred")).to_have_text("3")
    expect(sender.locator("#sent-list li.sent")).to_have_count(0)  # relief says it arrived
    expect(sender.locator("#done-list li.done")).to_contain_text("can-bo-cua-nam")
