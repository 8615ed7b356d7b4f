/* Commune staff: instant search, the household page, registering and correcting, import with
   progress, QR slips per village, and who is not yet served. Everything through /api with the
   signed-in token; refusals are shown as the services word them. */
"use strict";
(function () {
  const page = document.body.dataset.page;
  requireUser($("#signin-msg"));
  const POVERTY = {none: T("không", "none"), near_poor: T("cận nghèo", "near poor"), poor: T("nghèo", "poor")};
  const short = (id) => String(id).replace(/-/g, "").slice(0, 8).toUpperCase();
  const formData = (form) => Object.fromEntries(new FormData(form).entries());
  const mine = ((Session.user() || {}).communes || []).filter(c => c !== "*");
  for (const input of document.querySelectorAll("input[name=commune_code]")) if (!input.value && mine.length) input.value = mine[0];
  const READ_REASON = T("Cán bộ xã tra cứu hồ sơ hộ", "Commune staff looked the household up");

  async function allHouseholds(params) {  // every page of a lookup (slips)
    let page = 1, items = [], total = 0;
    do {
      const r = await api("households", "/households?page_size=100&page=" + page + "&" + new URLSearchParams(params));
      if (!r.ok) return r;
      items = items.concat(r.data.items); total = r.data.total; page += 1;
    } while (items.length < total && page <= 100);
    return {ok: true, data: items};
  }

  // ---- instant search
  if (page === "staff-search") {
    let timer = null, asked = 0;
    const run = async () => {
      const q = $("#q").value.trim(), commune = $("#commune").value.trim(), on = $("#on").value;
      const table = $("#found"), count = $("#count");
      if (q.length < 2 && !on) { table.hidden = true; count.textContent = ""; return; }
      const params = new URLSearchParams({page_size: "50"});
      if (q) params.set("q", q);
      if (/^\d{5}$/.test(commune)) params.set("commune_code", commune);
      if (on) params.set("in_quarantine_on", on);
      const mine = ++asked;
      let r;
      try { r = await api("households", "/households?" + params); } catch (e) { count.textContent = T("Mất kết nối.", "No connection."); return; }
      if (mine !== asked) return;  // a later keystroke already asked
      if (!r.ok) { showProblem(count, r.status, r.data); table.hidden = true; return; }
      count.className = "muted";
      count.textContent = T("Tìm thấy ", "Found ") + r.data.total + (r.data.total_is_exact === false ? "+" : "") + T(" hộ", " households");
      table.querySelector("tbody").innerHTML = r.data.items.map(h =>
        '<tr><td><a href="/staff/households/' + esc(h.id) + '">' + esc(h.head_name) + "</a></td><td>" + esc(h.village) + ' <span class="muted">' + esc(h.commune_name || "") +
        '</span></td><td class="n">' + esc(h.member_count) + "</td><td>" + esc(h.phone || "") + "</td></tr>").join("");
      table.hidden = false;
    };
    for (const id of ["#q", "#commune", "#on"]) $(id).addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(run, 200); });
    const q = new URLSearchParams(location.search).get("q");
    if (q) { $("#q").value = q; run(); }
  }

  // ---- the household page
  if (page === "staff-household") {
    const id = $("#household").dataset.id;
    const flags = (m) => ["elderly", "child_under_6", "pregnant", "disabled", "chronic_illness"].filter(f => m[f]).join(", ");
    const rows = (sel, list, cells) => { $(sel + " tbody").innerHTML = list.map(x => "<tr>" + cells(x).map(c => "<td>" + c + "</td>").join("") + "</tr>").join("") || '<tr><td colspan="5" class="muted">—</td></tr>'; };
    async function load() {
      const r = await api("households", "/households/" + id + "?reason=" + encodeURIComponent(READ_REASON));
      if (!r.ok) { showProblem($("#signin-msg"), r.status, r.data); $("#head").textContent = T("Hộ gia đình", "Household"); return; }
      const h = r.data;
      $("#head").textContent = h.head_name;
      $("#summary").innerHTML = "<div>" + esc(h.village) + " · " + esc(h.commune_name) + " (" + esc(h.commune_code) + ")</div>" +
        "<div>" + esc(T("Địa chỉ: ", "Address: ")) + esc(h.address || "—") + " · " + esc(T("Điện thoại: ", "Phone: ")) + esc(h.phone || "—") + "</div>" +
        "<div>" + esc(T("Hộ nghèo: ", "Poverty: ")) + esc(POVERTY[h.poverty_status] || h.poverty_status) + " · " + esc(T("Mã ngắn: ", "Short code: ")) + '<span class="mono">' + short(h.id) + "</span></div>" +
        (h.merged_into ? '<div class="warn">' + esc(T("Hộ này đã gộp vào hộ khác.", "Merged into another household.")) + "</div>" : "");
      const form = $("#correct-form");
      for (const k of ["phone", "village", "address", "poverty_status"]) if (h[k] != null && form[k]) form[k].value = h[k];
      const members = [Object.assign({relation: "head"}, h.head || {})].concat(h.members || []);
      rows("#members", members, m => [esc(m.name), esc(m.relation), esc(m.birth_year || ""), esc(flags(m))]);
      const KIND = {f1_home_quarantine: T("F1 cách ly tại nhà", "F1 home quarantine"), f0_home_treatment: T("F0 điều trị tại nhà", "F0 home treatment"), lockdown_area: T("vùng phong toả", "lockdown area")};
      rows("#quarantines", h.quarantines || [], q => [esc(q.decision_number || ""), esc(KIND[q.kind] || q.kind || ""), esc(q.starts_on), esc(q.expected_end_on), esc(q.ended_on || "")]);
      const [d, hist, elig] = await Promise.all([api("households", "/households/" + id + "/deliveries"), api("households", "/households/" + id + "/history"),
                                                 api("relief", "/eligibility/households/" + id)]);
      const ITEMS = JSON.parse(($("#catalogue") || {}).textContent || "{}");
      const goods = (x) => x.items.map(i => (ITEMS[i.item_code] ? (LANG === "en" ? ITEMS[i.item_code].en : ITEMS[i.item_code].vi) : i.item_code) + " " + i.quantity + " " + i.unit)
        .concat(x.cash_vnd ? [T("tiền ", "cash ") + vnd(x.cash_vnd) + " đ"] : []).join("; ");
      if (d.ok) rows("#deliveries", d.data.deliveries, x => ['<a href="/ledger?seq=' + esc(x.entry_seq) + '">' + esc(x.entry_seq) + "</a>" +
                                                           (x.reversed_by_seq ? " " + esc(T("(đã đảo, mục ", "(reversed, entry ")) + esc(x.reversed_by_seq) + ")"
                                                            : ' <button type="button" class="secondary reverse noprint" data-seq="' + esc(x.entry_seq) + '">' + esc(T("Đảo ngược", "Reverse")) + "</button>"),
                                                         esc(when(x.delivered_at)), esc(x.volunteer_id || ""), esc(goods(x))]);
      else showProblem($("#deliveries tbody"), d.status, d.data);
      const brief = (details) => Object.entries(details || {}).filter(([, v]) => v !== null && typeof v !== "object").map(([k, v]) => k + ": " + v).join(", ").slice(0, 200);
      if (hist.ok) rows("#history", hist.data.events.slice().reverse(), e => [esc(when(e.at)), esc(e.actor || ""), esc(e.event) + ' <span class="muted">' + esc(brief(e.details)) + "</span>"]);
      const el = $("#eligibility"), parts = [];
      const open = await api("relief", "/reports/not-served?commune_code=" + h.commune_code).catch(() => null);
      if (open && open.ok) {
        const mine = open.data.households.filter(x => x.household_id === h.id);
        parts.push(mine.length ? "<ul>" + mine.map(x => "<li>" + esc(x.round_name) + ": " + esc(x.state === "entitled" ? T("có suất, chưa nhận", "entitled, not yet served") : T("đủ điều kiện, chưa có suất", "eligible, no entitlement yet")) +
          " · " + esc(T("chờ ", "waiting ")) + x.waiting_days + esc(T(" ngày", " days")) + "</li>").join("") + "</ul>" : esc(T("Không có suất nào đang chờ nhận.", "No entitlement waiting.")));
      } else if (open) parts.push(esc(problemText(open.status, open.data)));
      if (elig.ok) parts.push(esc(T("Cứu trợ biết: ", "Relief knows: ")) + elig.data.member_count + esc(T(" khẩu, ", " members, ")) + (elig.data.quarantine_episodes || []).length + esc(T(" đợt cách ly", " quarantine episodes")));
      el.className = "card"; el.innerHTML = parts.join("<br>");
      return {deliveries: d.ok ? d.data.deliveries : [], waiting: open && open.ok ? open.data.households.filter(x => x.household_id === h.id).length : 0};
    }
    // relief officers re-open a wrong delivery: a reason from the ledger's list, then a confirmation
    const rev = $("#reverse-form");
    const reverseStep = (confirming) => { $("#reverse-step1").hidden = confirming; $("#reverse-confirm").hidden = !confirming; $("#reverse-reasons").disabled = confirming; };
    $("#deliveries").addEventListener("click", (e) => {
      const b = e.target.closest(".reverse");
      if (!b) return;
      rev.reset(); rev.dataset.seq = b.dataset.seq; $("#reverse-seq").textContent = b.dataset.seq;
      $("#reverse-msg").className = "msg"; $("#reverse-msg").textContent = "";
      reverseStep(false); rev.hidden = false; rev.scrollIntoView({block: "nearest"});
    });
    rev.addEventListener("submit", (e) => {
      e.preventDefault();
      const reason = rev.querySelector("input[name=reason]:checked");
      if (!reason) return;
      $("#reverse-question").textContent = T("Đảo ngược mục sổ cái số ", "Reverse ledger entry ") + rev.dataset.seq + T(" với lý do “", " because “") +
        reason.closest("label").textContent.trim() + T("”? Việc này được ghi công khai và không xoá được.", "”? This is recorded publicly and cannot be erased.");
      reverseStep(true);
    });
    $("#reverse-back").addEventListener("click", () => reverseStep(false));
    rev.querySelector(".reverse-cancel").addEventListener("click", () => { rev.hidden = true; });
    $("#reverse-yes").addEventListener("click", async () => {
      const seq = rev.dataset.seq, reason = rev.querySelector("input[name=reason]:checked").value, msg = $("#reverse-msg"), yes = $("#reverse-yes");
      yes.disabled = true;
      const r = await api("ledger", "/deliveries/" + seq + "/reversal", {method: "POST", body: {reason},
                          headers: {"Idempotency-Key": "reverse-" + seq + "-" + reason}}).catch(() => null);
      yes.disabled = false;
      if (!r || !r.ok) { reverseStep(false); return showProblem(msg, r ? r.status : 0, r && r.data); }
      rev.hidden = true;
      showOk($("#signin-msg"), esc(T("Đã đảo ngược; sổ cái ghi mục ", "Reversed; ledger entry ")) + esc(r.data.seq) + esc(T(". Suất được mở lại.", ". The entitlement is open again.")));
      for (let i = 0; i < 20; i++) {  // households and relief hear of it through the bus: a moment
        await new Promise(res => setTimeout(res, 700));
        const shown = await load().catch(() => null);
        if (shown && shown.waiting && shown.deliveries.some(x => String(x.entry_seq) === String(seq) && x.reversed_by_seq)) break;
      }
    });
    $("#correct-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = formData(e.target), body = {reason: f.reason};
      for (const k of ["phone", "village", "address", "poverty_status"]) if (f[k] !== "") body[k] = f[k];
      const r = await api("households", "/households/" + id + "/corrections", {method: "POST", body}).catch(() => null);
      if (!r) return showProblem($("#correct-msg"), 0, null);
      if (r.ok) { showOk($("#correct-msg"), esc(T("Đã lưu.", "Saved."))); load(); } else showProblem($("#correct-msg"), r.status, r.data);
    });
    $("#quarantine-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const r = await api("households", "/households/" + id + "/quarantines", {method: "POST", body: formData(e.target)}).catch(() => null);
      if (r && r.ok) { showOk($("#quarantine-msg"), esc(T("Đã lưu.", "Saved."))); load(); } else showProblem($("#quarantine-msg"), r ? r.status : 0, r && r.data);
    });
    load();
  }

  // ---- register
  if (page === "staff-register") {
    $("#add-member").addEventListener("click", () => $("#members").appendChild($("#member-row").content.cloneNode(true)));
    $("#register-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = e.target, msg = $("#register-msg");
      const members = Array.from(f.querySelectorAll(".member")).map(row => {
        const m = {name: row.querySelector("[name=m_name]").value, relation: row.querySelector("[name=m_relation]").value};
        const by = row.querySelector("[name=m_birth_year]").value; if (by) m.birth_year = Number(by);
        return m;
      });
      const body = {head: {name: f.head_name.value, cccd: f.cccd.value}, members, commune_code: f.commune_code.value, village: f.village.value,
                    address: f.address.value, poverty_status: f.poverty_status.value,
                    legal_basis: {ground: "public_task", reference: f.legal_reference.value}};
      if (f.birth_year.value) body.head.birth_year = Number(f.birth_year.value);
      if (f.phone.value) body.phone = f.phone.value;
      const r = await api("households", "/households", {method: "POST", body}).catch(() => null);
      if (!r) { msg.className = "msg error"; msg.textContent = T("Mất kết nối, chưa lưu.", "No connection; not saved."); return; }
      if (r.ok) { showOk(msg, esc(T("Đã đăng ký: ", "Registered: ")) + '<a href="/staff/households/' + esc(r.data.id) + '">' + esc(r.data.head_name) + "</a>"); f.reset(); $("#members").innerHTML = ""; }
      else if (r.status === 409 && r.data && r.data.household) {
        showProblem(msg, r.status, r.data);
        msg.innerHTML += ' <a href="/staff/households/' + esc(r.data.household.id) + '">' + esc(T("Xem hộ đã có", "See the existing household")) + "</a>";
      } else showProblem(msg, r.status, r.data);
    });
  }

  // ---- import with progress
  if (page === "staff-import") {
    $("#import-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const card = $("#progress-card"), status = $("#import-status"), bar = $("#progress");
      card.hidden = false; status.className = ""; status.textContent = T("Đang tải lên…", "Uploading…");
      const r = await api("households", "/households/import", {method: "POST", body: new FormData(e.target)}).catch(() => null);
      if (!r || !r.ok) { showProblem(status, r ? r.status : 0, r && r.data); return; }
      let job = r.data;
      while (true) {
        const total = job.rows || 1;
        bar.max = total; bar.value = Math.max(job.checked || 0, job.processed || 0);
        status.textContent = T("Trạng thái: ", "Status: ") + job.status + " · " + T("đã kiểm ", "checked ") + job.checked + "/" + job.rows +
          " · " + T("tạo mới ", "created ") + job.created + " · " + T("đã có ", "already present ") + job.already_present + " · " + T("lỗi ", "errors ") + job.error_count;
        if (job.errors && job.errors.length) {
          $("#row-errors").hidden = false;
          $("#row-errors tbody").innerHTML = job.errors.map(x => "<tr><td>" + esc(x.row) + "</td><td>" + esc(x.column) + "</td><td>" + esc(LANG === "en" ? x.message_en : x.message) + "</td></tr>").join("");
        }
        if (["done", "failed", "interrupted"].includes(job.status)) { if (job.status === "done") bar.value = bar.max; break; }
        await new Promise(res => setTimeout(res, 700));
        const p = await api("households", "/households/import/" + job.job_id).catch(() => null);
        if (p && p.ok) job = p.data; else if (p) { showProblem(status, p.status, p.data); break; }
      }
    });
  }

  // ---- QR slips, one page per village
  if (page === "staff-slips") {
    $("#slips-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = formData(e.target), msg = $("#slips-msg");
      const params = {commune_code: f.commune_code};
      if (f.village) params.village = f.village;
      msg.className = "msg"; msg.textContent = T("Đang tạo…", "Making…");
      const r = await allHouseholds(params).catch(() => null);
      if (!r || !r.ok) { showProblem(msg, r ? r.status : 0, r && r.data); return; }
      const villages = {};
      for (const h of r.data) (villages[h.village] = villages[h.village] || []).push(h);
      const names = Object.keys(villages).sort((a, b) => a.localeCompare(b, "vi"));
      $("#slips").innerHTML = names.map(v => '<section class="village slips"><h2>' + esc(v) + ' <span class="muted">' + esc(villages[v][0].commune_name || "") + "</span></h2>" +
        villages[v].sort((a, b) => a.head_name.localeCompare(b.head_name, "vi")).map(h =>
          '<div class="slip"><img alt="QR" src="/qr.svg?d=' + encodeURIComponent(location.origin + "/volunteer#h=" + h.id) + '"><div><strong>' + esc(h.head_name) + "</strong><br>" +
          esc(v) + "<br>" + esc(T("Mã ngắn: ", "Short code: ")) + '<span class="code">' + short(h.id) + "</span><br>" + '<span class="muted">' + esc(h.member_count) + T(" khẩu", " members") + "</span></div></div>").join("") +
        "</section>").join("");
      msg.textContent = T("Tạo ", "Made ") + r.data.length + T(" phiếu, ", " slips, ") + names.length + T(" thôn.", " villages.");
    });
  }

  // ---- not yet served, per village
  if (page === "staff-not-served") {
    const form = $("#not-served-form");
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = formData(form), msg = $("#not-served-msg");
      const params = new URLSearchParams({commune_code: f.commune_code});
      if (f.village) params.set("village", f.village);
      const r = await api("relief", "/reports/not-served?" + params).catch(() => null);
      if (!r || !r.ok) { showProblem(msg, r ? r.status : 0, r && r.data); return; }
      msg.className = "msg"; msg.textContent = "";
      // names from households' lookup of the commune (relief holds ids only), 100 a request
      const wanted = new Set(r.data.households.map(x => x.household_id)), known = {};
      for (let p = 1; wanted.size && p <= 100; p++) {
        const params = new URLSearchParams({commune_code: f.commune_code, page_size: "100", page: String(p)});
        if (f.village) params.set("village", f.village);
        const h = await api("households", "/households?" + params).catch(() => null);
        if (!h || !h.ok || !h.data.items.length) break;
        for (const x of h.data.items) { known[x.id] = x; wanted.delete(x.id); }
        if (p * 100 >= h.data.total) break;
      }
      const byVillage = {};
      for (const x of r.data.households) (byVillage[x.village] = byVillage[x.village] || []).push(x);
      $("#not-served").innerHTML = "<p>" + esc(r.data.commune_name) + " · " + esc(T("tính đến ", "as of ")) + esc(r.data.as_of) + " · " + esc(T("tổng ", "total ")) + r.data.total + "</p>" +
        Object.keys(byVillage).sort().map(v => '<section class="village"><h2>' + esc(v) + " (" + byVillage[v].length + ")</h2><table><thead><tr><th>" +
          esc(T("Chủ hộ", "Head")) + "</th><th>" + esc(T("Đợt", "Round")) + "</th><th>" + esc(T("Tình trạng", "State")) + '</th><th class="n">' + esc(T("Số ngày chờ", "Days waiting")) + "</th><th>" + esc(T("Ký nhận", "Signature")) + "</th></tr></thead><tbody>" +
          byVillage[v].map(x => "<tr><td>" + esc(known[x.household_id] ? known[x.household_id].head_name : short(x.household_id)) + "</td><td>" + esc(x.round_name) + "</td><td>" +
            esc(x.state === "entitled" ? T("có suất, chưa nhận", "entitled, not served") : T("đủ điều kiện, chưa có suất", "eligible, no entitlement yet")) + '</td><td class="n">' + esc(x.waiting_days) + "</td><td></td></tr>").join("") +
          "</tbody></table></section>").join("");
    });
    $("#daily").addEventListener("click", () => openHtml("relief", "/reports/daily.html?commune_code=" + encodeURIComponent(form.commune_code.value)));
  }
})();
