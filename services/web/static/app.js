/* Shared by every page: language, sign-in kept in localStorage, /api calls, plain errors. */
"use strict";
const LANG = document.documentElement.lang === "en" ? "en" : "vi";
function T(vi, en) { return LANG === "en" ? en : vi; }
function esc(s) { return String(s == null ? "" : s).replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c])); }
function $(sel, root) { return (root || document).querySelector(sel); }
function vnd(n) { return Number(n || 0).toLocaleString("vi-VN"); }
function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString(LANG === "en" ? "en-GB" : "vi-VN", {hour: "2-digit", minute: "2-digit", day: "2-digit", month: "2-digit", year: "numeric"});
}

const Session = {
  get() {
    try {
      const s = JSON.parse(localStorage.getItem("session") || "null");
      if (s && s.expires_at && s.expires_at < Date.now()) return null;
      return s;
    } catch (e) { return null; }
  },
  token() { const s = Session.get(); return s ? s.access_token : null; },
  user() { const s = Session.get(); return s ? s.user : null; },
  set(answer) {
    const s = {access_token: answer.access_token, user: answer.user || {},
               expires_at: answer.expires_in ? Date.now() + answer.expires_in * 1000 : null};
    localStorage.setItem("session", JSON.stringify(s));
  },
  clear() { localStorage.removeItem("session"); },
};

class NetworkError extends Error {}

/* fetch /api/<service><path> with the token; resolves {ok, status, data}; rejects NetworkError offline. */
async function api(service, path, options) {
  options = options || {};
  const headers = Object.assign({}, options.headers || {});
  const token = Session.token();
  if (token) headers["Authorization"] = "Bearer " + token;
  let body = options.body;
  if (body !== undefined && !(body instanceof FormData) && !(body instanceof URLSearchParams) && typeof body !== "string") {
    body = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch("/api/" + service + path, {method: options.method || "GET", headers, body, cache: "no-store"});
  } catch (e) {
    throw new NetworkError(String(e));
  }
  let data = null;
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) { try { data = await response.json(); } catch (e) { data = null; } }
  else { data = await response.text(); }
  return {ok: response.ok, status: response.status, data};
}

/* One line a person can read for any refusal, Vietnamese first. */
function problemText(status, data) {
  const lead = {
    401: T("Cần đăng nhập (hoặc phiên đăng nhập đã hết hạn).", "Please sign in (or your sign-in expired)."),
    403: T("Bạn không có quyền làm việc này.", "You are not allowed to do this."),
    404: T("Không tìm thấy.", "Not found."),
    409: T("Trùng hoặc xung đột.", "Duplicate or conflict."),
    422: T("Dữ liệu chưa đúng.", "Some input is not right."),
    502: T("Dịch vụ không trả lời.", "A service is not answering."),
    503: T("Dịch vụ tạm thời chưa sẵn sàng.", "Service unavailable for now."),
  }[status] || (T("Lỗi", "Error") + " " + status);
  let more = "";
  if (data && typeof data === "object") {
    if (Array.isArray(data.detail)) {
      more = data.detail.map(d => (d.loc || []).filter(x => x !== "body").join(".") + ": " + (LANG === "en" ? d.msg : (d.msg_vi || d.msg))).join("; ");
    } else if (data.message || data.message_en) {
      more = LANG === "en" ? (data.message_en || data.message) : (data.message || data.message_en);
    } else if (typeof data.detail === "string") { more = data.detail; }
  }
  return lead + (more ? " " + more : "") + (status === 401 ? " " : "");
}

function showProblem(el, status, data) {
  el.className = "msg error";
  el.innerHTML = esc(problemText(status, data)) + (status === 401 ? ' <a href="/login">' + esc(T("Đăng nhập", "Sign in")) + "</a>" : "");
}
function showOk(el, html) { el.className = "msg ok"; el.innerHTML = html; }

/* An HTML document from the API (receipt, daily report) opened with the token, for printing. */
async function openHtml(service, path) {
  const w = window.open("", "_blank");
  const r = await api(service, path).catch(() => null);
  if (!r) { if (w) w.close(); alert(T("Mất kết nối.", "No connection.")); return; }
  if (!r.ok) { if (w) w.close(); alert(problemText(r.status, r.data)); return; }
  if (!w) return;
  // the window inherits this site's CSP (no inline handlers): print buttons get a listener instead
  w.document.open();
  w.document.write(String(r.data).replace(/onclick="(window\.)?print\(\)"/g, 'data-print="1"'));
  w.document.close();
  w.document.querySelectorAll("[data-print]").forEach(b => b.addEventListener("click", () => w.print()));
}

function requireUser(el) {
  const user = Session.user();
  if (!user && el) {
    el.className = "msg warn";
    el.innerHTML = esc(T("Bạn chưa đăng nhập.", "You are not signed in.")) + ' <a href="/login?next=' + encodeURIComponent(location.pathname) + '">' + esc(T("Đăng nhập", "Sign in")) + "</a>";
  }
  return user;
}

(function header() {
  const user = Session.user();
  const who = $("#who");
  if (who) who.textContent = user ? (user.username + " · " + (user.role || "")) : "";
  const net = $("#net");
  function show() {
    if (!net) return;
    net.hidden = navigator.onLine;
    net.className = "net" + (navigator.onLine ? "" : " offline");
    net.textContent = T("Mất kết nối — dữ liệu được lưu trên máy và gửi khi có mạng.", "Offline — work is kept on this phone and sent when the connection returns.");
  }
  addEventListener("online", show); addEventListener("offline", show); show();
  document.querySelectorAll(".print-button").forEach(b => b.addEventListener("click", () => print()));
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js").catch(() => {});
})();
