/* Relief officers: campaigns, donations with printable receipts, stock with near-expiry
   warnings, rounds with a preview before issuing, and top-ups. */
"use strict";
(function () {
  const page = document.body.dataset.page;
  requireUser($("#signin-msg"));
  const ITEMS = JSON.parse($("#catalogue").textContent);
  const itemName = (c) => ITEMS[c] ? (LANG === "en" ? ITEMS[c].en : ITEMS[c].vi) : c;
  const lines = (o) => Object.entries(o || {}).map(([c, q]) => c === "cash" ? T("tiền ", "cash ") + vnd(q) + " đ" : itemName(c) + " " + vnd(q) + " " + (ITEMS[c] ? ITEMS[c].unit : "")).join("; ");
  const data = (form) => Object.fromEntries(new FormData(form).entries());
  const fail = (el, r) => showProblem(el, r ? r.status : 0, r && r.data);
  const call = (service, path, options) => api(service, path, options).catch(() => null);

  if (page === "officer-campaigns") {
    (async () => {
      const r = await call("relief", "/campaigns");
      if (!r || !r.ok) return fail($("#signin-msg"), r);
      $("#campaigns").innerHTML = r.data.map(c => '<li><a href="/officer/campaigns/' + esc(c.id) + '"><strong>' + esc(c.name) + "</strong></a> · " + esc(c.committee || c.unit_code) + " · " + esc(c.opens_on) + " – " + esc(c.closes_on) + "</li>").join("")
        || '<li class="muted">' + esc(T("Chưa có đợt nào.", "No campaign yet.")) + "</li>";
    })();
    $("#campaign-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = data(e.target);
      const body = {level: f.level, unit_code: f.unit_code, name: f.name, purpose: f.purpose, legal_basis: f.legal_basis, call_document: f.call_document,
                    opens_on: f.opens_on, closes_on: f.closes_on, accounts: [{kind: "bank", number: f.account, bank_name: f.bank || null}]};
      const r = await call("relief", "/campaigns", {method: "POST", body});
      if (r && r.ok) location.href = "/officer/campaigns/" + r.data.id; else fail($("#campaign-msg"), r);
    });
  }

  if (page === "officer-campaign") {
    const id = $("#campaign").dataset.id;
    async function load() {
      const [c, d, s, x, rounds] = await Promise.all([call("relief", "/campaigns/" + id), call("relief", "/campaigns/" + id + "/donations?page_size=200"),
        call("relief", "/campaigns/" + id + "/stock"), call("relief", "/campaigns/" + id + "/stock/near-expiry?days=7"), call("relief", "/rounds?campaign_id=" + id)]);
      if (!c || !c.ok) return fail($("#signin-msg"), c);
      $("#name").textContent = c.data.name;
      const t = c.data.totals.donations;
      $("#totals").innerHTML = "<div>" + esc(T("Lượt đóng góp", "Donations")) + "<strong>" + t.count + "</strong></div><div>" + esc(T("Tiền", "Cash")) + "<strong>" + vnd(t.cash_vnd) +
        " đ</strong></div><div>" + esc(T("Giá trị hàng", "Goods value")) + "<strong>" + vnd(t.goods_value_vnd) + " đ</strong></div>";
      if (d && d.ok) $("#donations tbody").innerHTML = d.data.items.map(x => "<tr><td>" + x.receipt_number + "</td><td>" + esc(x.received_on) + "</td><td>" + esc(x.donor.name || T("ẩn danh", "anonymous")) +
        '</td><td class="n">' + vnd(x.cash_vnd) + "</td><td>" + esc(lines(Object.fromEntries(x.goods.map(g => [g.item_code, g.quantity])))) + '</td><td><button type="button" class="secondary receipt" data-n="' + x.receipt_number + '">' + esc(T("In biên nhận", "Print receipt")) + "</button></td></tr>").join("");
      if (s && s.ok) $("#stock tbody").innerHTML = Object.entries(s.data.items).map(([code, l]) => '<tr data-item="' + esc(code) + '"><td>' + esc(itemName(code)) + '</td><td class="n received">' + vnd(l.received) + '</td><td class="n">' + vnd(l.allocated) +
        '</td><td class="n">' + vnd(l.delivered) + '</td><td class="n">' + vnd(l.written_off) + '</td><td class="n transferred">' + vnd(l.transferred_out) + '</td><td class="n free">' + vnd(l.free) + "</td></tr>").join("");
      loadTransfers(s && s.ok ? s.data : null);
      if (x && x.ok && x.data.lots.length) $("#near-expiry").innerHTML = '<div class="warn"><strong>' + esc(T("Sắp hết hạn (7 ngày) hoặc đã hết hạn:", "Expiring within 7 days, or expired:")) + "</strong><ul>" +
        x.data.lots.map(l => "<li>" + esc(itemName(l.item_code)) + " " + vnd(l.available) + " " + esc(l.unit) + " · " + esc(l.expiry_date) + " (" + (l.days_left < 0 ? esc(T("đã hết hạn ", "expired ")) + (-l.days_left) + esc(T(" ngày", " days ago")) : l.days_left + esc(T(" ngày nữa", " days left"))) + ")" +
          (l.days_left < 0 ? ' <button type="button" class="secondary write-off" data-item="' + esc(l.item_code) + '" data-lot="' + esc(l.lot) + '" data-quantity="' + esc(l.available) + '">' + esc(T("Ghi huỷ (hết hạn)", "Write off (expired)")) + "</button>" : "") +
          "</li>").join("") + '</ul><div id="write-off-msg" class="msg"></div></div>';
      else $("#near-expiry").innerHTML = "";
      if (rounds && rounds.ok) $("#rounds").innerHTML = rounds.data.rounds.map(r => '<li><a href="/officer/rounds/' + esc(r.id) + '"><strong>' + esc(r.name) + "</strong></a> · " + esc(r.planned_on) + " · " + esc(r.status) + "</li>").join("")
        || '<li class="muted">' + esc(T("Chưa có đợt phát.", "No round yet.")) + "</li>";
    }
    $("#near-expiry").addEventListener("click", async (e) => {  // an expired lot leaves the stock, with a reason
      const b = e.target.closest(".write-off");
      if (!b) return;
      const note = prompt(T("Ghi chú (biên bản huỷ số…)", "Note (write-off record no.…)"), "");
      if (note === null) return;
      const r = await call("relief", "/campaigns/" + id + "/stock/write-offs", {method: "POST", body: {item_code: b.dataset.item,
        quantity: Number(b.dataset.quantity), reason: "expired", note: note || T("Hết hạn sử dụng", "Expired"), lot: b.dataset.lot}});
      if (r && r.ok) load(); else fail($("#write-off-msg"), r);
    });
    // ---- transfers between committees: relief lists those sent from and to this campaign
    // (GET /stock/transfers, newest first); the transfer code (or its link / QR code) goes with
    // the handover record, and a code typed or opened by link is the fallback for receiving.
    let transfers = [];
    const campaigns = {};
    const campaignName = (cid) => campaigns[cid] ? (campaigns[cid].committee || campaigns[cid].unit_code) + " · " + campaigns[cid].name : cid;
    const transferLines = (t) => t.lines.map(l => itemName(l.item_code) + " " + vnd(l.quantity) + " " + (ITEMS[l.item_code] ? ITEMS[l.item_code].unit : "") +
      (l.expiry ? " (" + T("hạn ", "expires ") + l.expiry + ")" : "")).join("; ");
    const receiveLink = (t) => location.origin + "/officer/campaigns/" + t.to_campaign_id + "?receive=" + t.transfer_id + "#transfers";
    const sentLine = (t) => esc(T("Ngày gửi ", "Sent on ")) + esc(t.sent_on) + " · " + esc(T("người gửi ", "sent by ")) + esc(t.sent_by) + " · " + esc(T("biên bản ", "record ")) + esc(t.document_ref) + (t.note ? " · " + esc(t.note) : "");
    const receiveButton = () => ' <button type="button" class="receive">' + esc(T("Nhận vào kho", "Receive into stock")) + "</button>";
    const wanted = new Set();  // transfer codes this page was asked to receive (typed, or by link)
    function showTransfers() {
      const pendingOut = transfers.filter(t => t.direction === "out" && t.status === "pending");
      const pendingIn = transfers.filter(t => t.direction === "in" && t.status === "pending");
      const done = transfers.filter(t => t.status === "received");
      $("#sent-list").innerHTML = pendingOut.map(t => '<li class="sent" data-id="' + esc(t.transfer_id) + '"><strong>' + esc(transferLines(t)) + "</strong> → " + esc(campaignName(t.to_campaign_id)) +
        "<br>" + sentLine(t) + "<br>" + esc(T("Mã lô chuyển giao: ", "Transfer code: ")) + '<span class="mono transfer-code">' + esc(t.transfer_id) + "</span>" +
        ' <a href="' + esc(receiveLink(t)) + '">' + esc(T("liên kết cho bên nhận", "link for the receiver")) + "</a>" +
        '<br><img alt="QR" width="96" height="96" src="/qr.svg?d=' + encodeURIComponent(receiveLink(t)) + '"></li>').join("")
        || '<li class="muted">' + esc(T("Không có lô nào đang chờ.", "Nothing awaiting receipt.")) + "</li>";
      const listed = new Map(transfers.map(t => [t.transfer_id, t]));
      const typed = Array.from(wanted).filter(code => !(listed.has(code) && listed.get(code).direction === "in" && listed.get(code).status === "pending"));
      $("#incoming-list").innerHTML = pendingIn.map(t => '<li class="incoming' + (wanted.has(t.transfer_id) ? " asked" : "") + '" data-id="' + esc(t.transfer_id) + '"><strong>' + esc(transferLines(t)) + "</strong> ← " + esc(campaignName(t.from_campaign_id)) +
        "<br>" + sentLine(t) + "<br>" + esc(T("Mã lô ", "Transfer ")) + '<span class="mono">' + esc(t.transfer_id) + "</span>" + receiveButton() + "</li>").join("") +
        typed.map(code => {
          const t = listed.get(code);
          if (t && t.status === "received") return '<li class="typed" data-id="' + esc(code) + '">' + esc(T("Mã lô ", "Transfer ")) + '<span class="mono">' + esc(code) + "</span>: " +
            esc(T("đã được nhận ngày ", "already received on ")) + esc(t.received_on) + " · " + esc(t.received_by) + "</li>";
          return '<li class="typed" data-id="' + esc(code) + '">' + esc(T("Mã lô ", "Transfer ")) + '<span class="mono">' + esc(code) + "</span>" + receiveButton() + "</li>";
        }).join("");
      $("#incoming").hidden = !pendingIn.length && !typed.length;
      $("#done-list").innerHTML = done.map(t => '<li class="done" data-id="' + esc(t.transfer_id) + '"><strong>' + esc(transferLines(t)) + "</strong> " +
        (t.direction === "out" ? "→ " + esc(campaignName(t.to_campaign_id)) : "← " + esc(campaignName(t.from_campaign_id))) +
        "<br>" + sentLine(t) + "<br>" + esc(T("Đã nhận ngày ", "Received on ")) + esc(t.received_on) + " · " + esc(T("người nhận ", "received by ")) + esc(t.received_by) + "</li>").join("")
        || '<li class="muted">' + esc(T("Chưa có.", "None yet.")) + "</li>";
    }
    async function loadTransfers(stock) {
      const items = $("#transfer-form [name=item_code]"), chosen = items.value;
      items.innerHTML = '<option value="">—</option>' + Object.entries((stock && stock.items) || {}).filter(([, l]) => l.free > 0)
        .map(([code, l]) => '<option value="' + esc(code) + '">' + esc(itemName(code)) + " (" + esc(T("còn trống ", "free ")) + vnd(l.free) + " " + esc(ITEMS[code] ? ITEMS[code].unit : "") + ")</option>").join("");
      items.value = chosen;
      const [all, listed] = await Promise.all([call("relief", "/campaigns"), call("relief", "/campaigns/" + id + "/stock/transfers")]);
      if (all && all.ok) {
        for (const c of all.data) campaigns[c.id] = c;
        const to = $("#transfer-form [name=to_campaign_id]"), picked = to.value;
        to.innerHTML = '<option value="">—</option>' + all.data.filter(c => c.id !== id).map(c => '<option value="' + esc(c.id) + '">' + esc(campaignName(c.id)) + "</option>").join("");
        to.value = picked;
      }
      if (listed && listed.ok) transfers = listed.data.items; else if (listed) fail($("#receive-msg"), listed);
      showTransfers();
    }
    $("#transfer-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = data(e.target), msg = $("#transfer-msg");
      const quantity = Number(f.quantity);
      if (!Number.isInteger(quantity) || quantity <= 0) return showProblem(msg, 422, {detail: [{loc: ["body", "quantity"], msg: "must be a whole number above 0", msg_vi: "phải là số nguyên lớn hơn 0"}]});
      const body = {to_campaign_id: f.to_campaign_id, lines: [{item_code: f.item_code, quantity}], document_ref: f.document_ref, note: f.note || ""};
      const r = await call("relief", "/campaigns/" + id + "/stock/transfers", {method: "POST", body});
      if (!r || !r.ok) return fail(msg, r);
      showOk(msg, esc(T("Đã gửi; mã lô chuyển giao ", "Sent; transfer code ")) + '<span class="mono">' + esc(r.data.transfer_id) + "</span>");
      e.target.reset();
      load();
    });
    $("#incoming-list").addEventListener("click", async (e) => {
      const b = e.target.closest(".receive");
      if (!b) return;
      const tid = b.closest("li").dataset.id, msg = $("#receive-msg");
      b.disabled = true;
      const r = await call("relief", "/campaigns/" + id + "/stock/transfers/" + encodeURIComponent(tid) + "/receive", {method: "POST"});
      b.disabled = false;
      if (!r || !r.ok) return fail(msg, r);
      wanted.delete(tid);
      showOk(msg, esc(T("Đã nhận vào kho: ", "Received into stock: ")) + esc(transferLines(r.data)) + " · " + esc(T("từ ", "from ")) + esc(campaignName(r.data.from_campaign_id)) +
        " · " + esc(T("người gửi ", "sent by ")) + esc(r.data.sent_by) + " · " + esc(T("biên bản ", "record ")) + esc(r.data.document_ref));
      load();
    });
    $("#receive-form").addEventListener("submit", (e) => {
      e.preventDefault();
      wanted.add(e.target.transfer_id.value.trim().toLowerCase()); showTransfers(); e.target.reset();
    });
    const asked = new URLSearchParams(location.search).get("receive");
    if (asked && /^[0-9a-fA-F-]{36}$/.test(asked)) wanted.add(asked.toLowerCase());

    $("#donations").addEventListener("click", (e) => { const b = e.target.closest(".receipt"); if (b) openHtml("relief", "/campaigns/" + id + "/donations/" + b.dataset.n + "/receipt"); });
    $("#donation-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = data(e.target);
      const body = {donor: {kind: f.kind, name: f.name || null, public_consent: !!f.public_consent}, received_on: f.received_on, channel: f.channel, cash_vnd: Number(f.cash_vnd || 0), goods: []};
      if (f.item_code && f.quantity) body.goods.push(Object.assign({item_code: f.item_code, quantity: Number(f.quantity), unit_value_vnd: Number(f.unit_value_vnd || 0)}, f.expiry_date ? {expiry_date: f.expiry_date} : {}));
      const key = "web-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 8);
      const r = await call("relief", "/campaigns/" + id + "/donations", {method: "POST", body, headers: {"Idempotency-Key": key}});
      if (r && r.ok) { showOk($("#donation-msg"), esc(T("Đã ghi, biên nhận số ", "Recorded, receipt number ")) + r.data.receipt_number); e.target.reset(); load(); } else fail($("#donation-msg"), r);
    });
    $("#round-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = data(e.target);
      const body = {campaign_id: id, name: f.name, planned_on: f.planned_on,
                    package: {items: Number(f.rice) ? {rice: Number(f.rice)} : {}, cash_vnd: Number(f.cash_vnd || 0)},
                    eligibility: Object.assign({commune_codes: f.communes.split(",").map(s => s.trim()).filter(Boolean)}, f.quarantine_on ? {quarantine_on: f.quarantine_on} : {})};
      const r = await call("relief", "/rounds", {method: "POST", body});
      if (r && r.ok) location.href = "/officer/rounds/" + r.data.id; else fail($("#round-msg"), r);
    });
    load();
  }

  if (page === "officer-round") {
    const id = $("#round").dataset.id;
    async function load() {
      const r = await call("relief", "/rounds/" + id);
      if (!r || !r.ok) return fail($("#signin-msg"), r);
      const round = r.data, issued = round.status === "issued";
      $("#back").href = "/officer/campaigns/" + round.campaign_id;
      $("#name").textContent = round.name;
      $("#round-info").textContent = round.planned_on + " · " + T("trạng thái: ", "status: ") + round.status + " · " + T("suất: ", "package: ") + lines(Object.assign({}, round.package.items || {}, round.package.cash_vnd ? {cash: round.package.cash_vnd} : {}));
      $("#issue").hidden = issued; $("#top-up").hidden = !issued;
      $("#preview-title").textContent = issued ? T("Xem trước bổ sung (hộ mới đủ điều kiện)", "Top-up preview (newly eligible households)") : T("Xem trước khi phát", "Preview before issuing");
      const p = await call("relief", "/rounds/" + id + (issued ? "/top-up/preview" : "/preview"));
      if (!p || !p.ok) return fail($("#preview"), p);
      const v = p.data, short = Object.keys(v.shortfall || {}).length;
      $("#preview").innerHTML = '<div class="figures"><div>' + esc(T("Hộ đủ điều kiện", "Eligible households")) + '<strong id="eligible">' + v.eligible + "</strong></div><div>" + esc(T("Cần", "Needs")) + "<strong>" + esc(lines(v.needs)) +
        "</strong></div><div>" + esc(T("Kho còn", "In stock")) + "<strong>" + esc(lines(v.stock)) + "</strong></div></div>" +
        (short ? '<div class="error" id="shortfall"><strong>' + esc(T("Thiếu: ", "Short: ")) + "</strong>" + esc(lines(v.shortfall)) + "</div>" : '<div class="ok" id="covered">' + esc(T("Kho đủ cho mọi hộ.", "Stock covers every household.")) + "</div>") +
        "<h3>" + esc(T("Theo thôn", "Per village")) + "</h3><table><thead><tr><th>" + esc(T("Xã", "Commune")) + "</th><th>" + esc(T("Thôn/tổ", "Village")) + '</th><th class="n">' + esc(T("Hộ", "Households")) + "</th></tr></thead><tbody>" +
        v.by_place.map(x => "<tr><td>" + esc(x.commune_code) + "</td><td>" + esc(x.village) + '</td><td class="n">' + x.households + "</td></tr>").join("") + "</tbody></table>" +
        (v.excluded && v.excluded.length ? '<p class="muted">' + esc(T("Loại trừ: ", "Excluded: ")) + v.excluded.length + "</p>" : "");
    }
    async function act(path) {
      const msg = $("#issue-msg");
      if (!confirm(T("Phát suất ngay? Không thể hoàn tác (chỉ huỷ từng suất).", "Issue now? This cannot be undone (only entitlement by entitlement)."))) return;
      const r = await call("relief", "/rounds/" + id + path + ($("#prioritise").checked ? "?prioritise=true" : ""), {method: "POST"});
      if (r && r.ok) { showOk(msg, esc(T("Đã phát ", "Issued ")) + r.data.issued + esc(T(" suất.", " entitlements.")) + (r.data.waiting && r.data.waiting.length ? " " + esc(T("Chờ thêm hàng: ", "Waiting for stock: ")) + r.data.waiting.length : "")); load(); }
      else fail(msg, r);
    }
    $("#issue").addEventListener("click", () => act("/issue"));
    $("#top-up").addEventListener("click", () => act("/top-up"));
    load();
  }
})();
