/* The volunteer's page. Deliveries go into a queue in localStorage first, each with its own
   Idempotency-Key, and leave it only when the ledger has answered: offline they wait (the count
   shows), a reload keeps them, and sending twice is harmless (same key, same answer). */
"use strict";
(function () {
  const ITEMS = JSON.parse($("#catalogue").textContent);
  const store = {
    get(key, fallback) { try { const v = JSON.parse(localStorage.getItem(key)); return v == null ? fallback : v; } catch (e) { return fallback; } },
    set(key, value) { localStorage.setItem(key, JSON.stringify(value)); },
  };
  const user = requireUser($("#signin-msg"));
  let device = store.get("device_id", null);
  if (!device) { device = "web-" + Math.random().toString(36).slice(2, 10); store.set("device_id", device); }
  let current = null;      // {entitlement, household}
  let flushing = false;

  const short = (id) => String(id).replace(/-/g, "").slice(0, 8).toUpperCase();
  const roundId = () => $("#round").value;
  const names = () => store.get("names", {});
  function remember(h) { const n = names(); n[h.id] = {head_name: h.head_name, village: h.village, commune_name: h.commune_name}; store.set("names", n); }
  function itemName(code) { const i = ITEMS[code]; return i ? (LANG === "en" ? i.en : i.vi) : code; }
  function unit(code) { return ITEMS[code] ? ITEMS[code].unit : ""; }

  // ---- what this volunteer may hand out: relief's "not served" list of the commune (every
  // issued round), and each entitlement's package as the ledger knows it; all kept for offline use
  const commune = () => $("#commune").value.trim();
  const open = () => store.get("open:" + commune(), []);
  const entitlements = () => open().filter(x => x.round_id === roundId() && x.entitlement_id);
  const packages = () => store.get("packages", {});

  async function loadRounds() {
    const mine = ((Session.user() || {}).communes || []).filter(c => c !== "*");
    $("#my-communes").innerHTML = mine.map(c => '<option value="' + esc(c) + '">').join("");
    $("#commune").value = store.get("commune", mine[0] || "");
    await loadOpen();
  }

  function showRounds() {
    // rounds with open entitlements, and those seen before (a round all served still answers "who served it")
    const select = $("#round"), known = store.get("rounds:" + commune(), {}), seen = {};
    for (const row of open()) known[row.round_id] = row.round_name;
    store.set("rounds:" + commune(), known);
    select.length = 1;
    for (const [id, name] of Object.entries(known)) {
      seen[id] = true;
      const o = document.createElement("option");
      o.value = id; o.textContent = name;
      select.appendChild(o);
    }
    const chosen = store.get("round_id", "");
    if (seen[chosen]) select.value = chosen;
    else if (Object.keys(seen).length === 1) select.value = Object.keys(seen)[0];
    store.set("round_id", select.value);
  }

  async function loadOpen() {
    const code = commune(), info = $("#round-info");
    info.dataset.ready = "";
    if (!/^\d{5}$/.test(code)) { showRounds(); return; }
    store.set("commune", code);
    try {
      const r = await api("relief", "/reports/not-served?commune_code=" + code);
      if (!r.ok) { showProblem(info, r.status, r.data); showRounds(); return; }
      store.set("open:" + code, r.data.households.filter(x => x.state === "entitled"));
    } catch (e) {
      info.className = "muted";
      info.textContent = T("Mất mạng: dùng danh sách đã lưu (", "Offline: using the saved list (") + open().length + ")";
      showRounds(); info.dataset.ready = "1";
      return;
    }
    showRounds();
    await loadPackages();
  }

  async function loadPackage(id) {
    const r = await api("ledger", "/entitlements/" + id);
    if (!r.ok) return null;
    const kept = packages(); kept[id] = r.data; store.set("packages", kept);
    return r.data;
  }

  async function loadPackages() {
    const info = $("#round-info"), rows = open().filter(x => x.entitlement_id), kept = packages();
    const missing = rows.filter(x => !kept[x.entitlement_id] || kept[x.entitlement_id].state !== "open");
    let next = 0;
    async function worker() {
      while (next < missing.length) {
        const row = missing[next++];
        try { await loadPackage(row.entitlement_id); } catch (e) { return; }
      }
    }
    await Promise.all([worker(), worker(), worker(), worker()]);
    await loadNames(rows);
    const have = packages();
    info.className = "muted";
    info.textContent = T("Còn ", "") + entitlements().length + T(" suất chưa phát trong đợt này; đã lưu ", " entitlements open in this round; ") +
      rows.filter(x => have[x.entitlement_id]).length + T(" suất để dùng khi mất mạng.", " kept for offline use.");
    info.dataset.ready = "1";
  }

  async function loadNames(rows) {  // head names and villages of the open households, for offline search
    const wanted = new Set(rows.map(x => x.household_id).filter(id => !names()[id]));
    for (let page = 1; wanted.size && page <= 50; page++) {
      let r;
      try { r = await api("households", "/households?page_size=100&commune_code=" + commune() + "&page=" + page); } catch (e) { return; }
      if (!r.ok || !r.data.items.length) return;
      const n = names();
      for (const h of r.data.items) { n[h.id] = {head_name: h.head_name, village: h.village, commune_name: h.commune_name}; wanted.delete(h.id); }
      store.set("names", n);
      if (page * 100 >= r.data.total) return;
    }
  }

  // ---- finding the household
  let searchTimer = null;
  $("#q").addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(search, 250); });
  async function search() {
    const q = $("#q").value.trim(), list = $("#results");
    if (q.length < 2) { list.innerHTML = ""; return; }
    let found = [];
    try {
      const r = await api("households", "/households?page_size=20&q=" + encodeURIComponent(q));
      if (!r.ok) { list.innerHTML = '<li class="error">' + esc(problemText(r.status, r.data)) + "</li>"; return; }
      found = r.data.items;
      found.forEach(remember);
    } catch (e) {  // offline: names seen before, without diacritics
      const fold = s => s.normalize("NFD").replace(/[\u0300-\u036f]/g, "").replace(/đ/gi, "d").toLowerCase();
      const n = names(), words = fold(q).split(/\s+/);
      found = Object.entries(n).filter(([, h]) => words.every(w => fold(h.head_name + " " + h.village).includes(w)))
        .map(([id, h]) => Object.assign({id}, h));
    }
    list.innerHTML = found.length ? "" : '<li class="muted">' + esc(T("Không tìm thấy hộ nào.", "No household found.")) + "</li>";
    for (const h of found) {
      const li = document.createElement("li"), b = document.createElement("button");
      b.type = "button"; b.className = "pick";
      b.innerHTML = "<strong>" + esc(h.head_name) + "</strong> · " + esc(h.village) + ' <span class="muted">' + esc(h.commune_name || "") + " · " + short(h.id) + "</span>";
      b.addEventListener("click", () => choose(h.id));
      li.appendChild(b); list.appendChild(li);
    }
  }
  $("#code").addEventListener("input", () => {
    const code = $("#code").value.trim().toLowerCase().replace(/[^0-9a-f]/g, "");
    if (code.length < 8) return;
    const e = open().find(x => x.household_id.replace(/-/g, "").startsWith(code) && (!roundId() || x.round_id === roundId()));
    if (e) choose(e.household_id);
    else { $("#results").innerHTML = '<li class="error">' + esc(T("Mã này không có suất trong đợt đã chọn.", "No entitlement with this code in the chosen round.")) + "</li>"; }
  });

  // QR: the slip's code is a link to this page with #h=<household id>
  function fromHash() {
    const m = /h=([0-9a-f-]{36})/i.exec(location.hash);
    if (m) choose(m[1].toLowerCase());
  }
  addEventListener("hashchange", fromHash);
  $("#scan").addEventListener("click", async () => {
    if (!("BarcodeDetector" in window) || !navigator.mediaDevices) {
      alert(T("Máy này không quét được mã QR trong trình duyệt; dùng ứng dụng máy ảnh (mã mở thẳng trang này) hoặc gõ mã ngắn.",
              "This browser cannot scan QR codes; use the camera app (the code opens this page) or type the short code."));
      return;
    }
    const video = $("#camera");
    try {
      const stream = await navigator.mediaDevices.getUserMedia({video: {facingMode: "environment"}});
      video.srcObject = stream; video.hidden = false; await video.play();
      const detector = new BarcodeDetector({formats: ["qr_code"]});
      const stop = () => { stream.getTracks().forEach(t => t.stop()); video.hidden = true; };
      const tick = async () => {
        const codes = await detector.detect(video).catch(() => []);
        const m = codes.length && /h=([0-9a-f-]{36})/i.exec(codes[0].rawValue);
        if (m) { stop(); choose(m[1].toLowerCase()); } else if (!video.hidden) requestAnimationFrame(tick);
      };
      tick();
    } catch (e) { alert(T("Không mở được máy ảnh.", "Cannot open the camera.")); }
  });

  // ---- the household's package, and confirming
  async function uuid5(namespace, name) {  // the ledger's entitlement id: uuid5(round_id, household_id)
    if (!(window.crypto && crypto.subtle)) return null;
    const ns = namespace.replace(/-/g, "").match(/../g).map(h => parseInt(h, 16));
    const data = new Uint8Array(ns.concat(Array.from(new TextEncoder().encode(name))));
    const hash = new Uint8Array(await crypto.subtle.digest("SHA-1", data)).slice(0, 16);
    hash[6] = (hash[6] & 0x0f) | 0x50; hash[8] = (hash[8] & 0x3f) | 0x80;
    const hex = Array.from(hash, b => b.toString(16).padStart(2, "0")).join("");
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" + hex.slice(16, 20) + "-" + hex.slice(20);
  }

  async function choose(householdId) {
    const result = $("#result");
    result.className = "msg"; result.innerHTML = "";
    $("#confirm").disabled = true;
    let h = names()[householdId];
    if (!h) {
      try { const r = await api("households", "/households/" + householdId); if (r.ok) { remember(r.data); h = r.data; } } catch (err) { /* offline */ }
    }
    $("#household").hidden = false;
    $("#hh-name").textContent = h ? h.head_name : T("Hộ ", "Household ") + short(householdId);
    $("#hh-place").textContent = (h ? h.village + " · " + (h.commune_name || "") + " · " : "") + T("mã ", "code ") + short(householdId);
    const pkg = $("#package");
    pkg.innerHTML = "";
    const row = entitlements().find(x => x.household_id === householdId);
    const id = row ? row.entitlement_id : (roundId() ? await uuid5(roundId(), householdId) : null);
    current = null;
    if (!id) { result.className = "msg warn"; result.textContent = T("Chọn đợt phát trước.", "Pick a round first."); return; }
    const queued = store.get("queue", []).find(x => x.body.entitlement_id === id);
    let e = packages()[id];
    try { e = (await loadPackage(id)) || (row ? e : null); } catch (err) { /* offline: what was kept */ }
    if (!e) {
      result.className = "msg warn";
      result.textContent = T("Hộ này không có suất trong đợt đã chọn (hoặc chưa tải được suất khi có mạng).",
                             "This household has no entitlement in the chosen round (or it was not loaded while online).");
      return;
    }
    current = {entitlement: e, id, household_id: householdId};
    for (const item of e.items) {
      const li = document.createElement("li");
      li.textContent = itemName(item.item_code) + ": " + item.quantity + " " + item.unit;
      pkg.appendChild(li);
    }
    if (e.cash_vnd) { const li = document.createElement("li"); li.textContent = T("Tiền mặt: ", "Cash: ") + vnd(e.cash_vnd) + " đ"; pkg.appendChild(li); }
    $("#household").scrollIntoView({block: "nearest"});
    if (queued) { result.className = "msg warn"; result.textContent = T("Đã ghi trên máy này, đang chờ gửi.", "Recorded on this phone, waiting to be sent."); return; }
    if (e.state === "served") { duplicate(e.delivery); return; }
    if (e.state === "cancelled") { result.className = "msg error"; result.textContent = T("Suất này đã bị huỷ.", "This entitlement was cancelled."); return; }
    $("#confirm").disabled = false;
  }

  function duplicate(d) {
    const who = (d.served_by && d.served_by.volunteer_id) || d.volunteer_id || "?";
    const device = (d.served_by && d.served_by.device_id) || d.device_id;
    const result = $("#result");
    result.className = "msg dup";
    result.innerHTML = "<strong>" + esc(T("Hộ này đã nhận suất rồi.", "This household was already served.")) + "</strong><br>" +
      esc(T("Người phát: ", "Served by: ")) + '<span class="served-by">' + esc(who) + "</span>" + (device ? ' <span class="muted">(' + esc(device) + ")</span>" : "") +
      "<br>" + esc(T("Lúc: ", "At: ")) + '<span class="served-at">' + esc(when(d.delivered_at)) + "</span>" +
      (d.seq ? '<br><span class="muted">' + esc(T("Số thứ tự sổ cái: ", "Ledger entry: ")) + d.seq + "</span>" : "");
    $("#confirm").disabled = true;
  }

  $("#confirm").addEventListener("click", () => {
    if (!current || !Session.user()) { requireUser($("#result")); return; }
    const e = current.entitlement;
    const items = e.items.map(x => ({item_code: x.item_code, unit: x.unit, quantity: x.quantity}));
    const counter = store.get("counter", 0) + 1; store.set("counter", counter);
    const key = device + "-" + Date.now().toString(36) + "-" + counter;
    // no volunteer_id: the ledger records the signed-in user
    const body = {entitlement_id: current.id, items, cash_vnd: e.cash_vnd || 0, device_id: device,
                  delivered_at: new Date().toISOString()};
    const queue = store.get("queue", []);
    // who handed it over: sent only under that user's sign-in (the ledger records the token's user)
    queue.push({key, body, by: Session.user().username, household_id: current.household_id, name: $("#hh-name").textContent,
                queued_at: new Date().toISOString()});
    store.set("queue", queue);  // kept before anything is sent: a reload or a crash loses nothing
    $("#confirm").disabled = true;
    const result = $("#result");
    result.className = "msg warn"; result.textContent = T("Đã ghi trên máy, đang gửi…", "Recorded on this phone, sending…");
    showQueue();
    flush();
  });

  // ---- the queue
  function showQueue(note) {
    const queue = store.get("queue", []);
    $("#queue-count").textContent = queue.length;
    $("#queue-list").innerHTML = queue.map(x => "<li>" + esc(x.name) + " · " + esc(when(x.queued_at)) + (x.by ? " · " + esc(x.by) : "") + "</li>").join("");
    if (note !== undefined) $("#queue-msg").innerHTML = note;
  }

  function settle(item, status, body) {
    // the queue on disk may have changed while we were sending: drop this key only
    store.set("queue", store.get("queue", []).filter(x => x.key !== item.key));
    const isCurrent = current && current.id === item.body.entitlement_id;
    const result = $("#result");
    if (status === 200 || status === 201) {
      const done = store.get("done", []); done.unshift({key: item.key, seq: body.seq, entitlement_id: item.body.entitlement_id, name: item.name});
      store.set("done", done.slice(0, 50));
      const kept = packages(), entry = (body.receipt || {}).entry || {};
      if (kept[item.body.entitlement_id]) {
        kept[item.body.entitlement_id].state = "served";
        kept[item.body.entitlement_id].delivery = {seq: body.seq, volunteer_id: entry.volunteer_id, device_id: entry.device_id, delivered_at: entry.delivered_at || item.body.delivered_at};
        store.set("packages", kept);
      }
      if (isCurrent) { result.className = "msg ok"; result.innerHTML = esc(T("Đã ghi vào sổ cái, số ", "Recorded in the ledger, entry ")) + '<span class="seq">' + body.seq + "</span>."; }
    } else if (status === 409) {
      if (isCurrent) duplicate(body);
      return esc(item.name) + ": " + esc(T("đã được phát trước đó bởi ", "already served by ")) + esc((body.served_by || {}).volunteer_id || "?") + " " + esc(when(body.delivered_at));
    } else {
      const failed = store.get("failed", []); failed.unshift({item, status, body}); store.set("failed", failed.slice(0, 50));
      if (isCurrent) showProblem(result, status, body);
      return esc(item.name) + ": " + esc(problemText(status, body));
    }
    return "";
  }

  async function flush() {
    if (flushing) return;
    const me = (Session.user() || {}).username;
    const all = store.get("queue", []), queue = all.filter(x => !x.by || x.by === me);
    const others = [...new Set(all.filter(x => x.by && x.by !== me).map(x => x.by))];
    const waiting = others.length ? esc(T("Chờ người đã ghi đăng nhập lại để gửi: ", "Waiting for who recorded them to sign in again: ") + others.join(", ")) : "";
    if (!queue.length) { showQueue(waiting); return; }
    flushing = true;
    const notes = waiting ? [waiting] : [];
    try {
      for (let i = 0; i < queue.length; i += 50) {
        const chunk = queue.slice(i, i + 50);
        let r;
        try {
          r = await api("ledger", "/deliveries/batch", {method: "POST", body: {deliveries: chunk.map(x => Object.assign({idempotency_key: x.key}, x.body))}});
        } catch (e) {
          showQueue(esc(T("Mất mạng: sẽ gửi khi có kết nối.", "Offline: will send when the connection returns.")));
          if (current && store.get("queue", []).some(x => x.body.entitlement_id === current.id)) {
            $("#result").className = "msg warn";
            $("#result").textContent = T("Đã ghi trên máy; sẽ tự gửi khi có mạng.", "Recorded on this phone; it will be sent when the connection returns.");
          }
          return;
        }
        if (!r.ok) { showQueue(esc(problemText(r.status, r.data)) + (r.status === 401 ? ' <a href="/login">' + esc(T("Đăng nhập", "Sign in")) + "</a>" : "")); return; }
        r.data.results.forEach((res, j) => {
          // keep what may succeed later: not known yet (404), unavailable, or signed out
          if ([404, 401, 429].includes(res.status) || res.status >= 500) { notes.push(esc(chunk[j].name) + ": " + esc(problemText(res.status, res.body))); return; }
          const note = settle(chunk[j], res.status, res.body);
          if (note) notes.push(note);
        });
      }
      showQueue(notes.join("<br>"));
    } finally { flushing = false; }
  }

  $("#send-now").addEventListener("click", flush);
  $("#round").addEventListener("change", () => store.set("round_id", roundId()));
  $("#commune").addEventListener("change", loadOpen);
  addEventListener("online", () => { flush(); });
  setInterval(() => { if (navigator.onLine) flush(); }, 15000);
  showQueue();
  loadRounds().then(() => { fromHash(); flush(); });
})();
