"use strict";
(function () {
  const form = $("#login"), msg = $("#login-msg");
  function shown() {
    const user = Session.user();
    $("#signed-in").hidden = !user;
    if (user) $("#me").textContent = user.username + " (" + user.role + "; " + (user.communes || []).join(", ") + ")";
  }
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = new URLSearchParams({username: form.username.value, password: form.password.value, grant_type: "password"});
    msg.className = "msg"; msg.textContent = T("Đang đăng nhập…", "Signing in…");
    let r;
    try { r = await api("households", "/auth/token", {method: "POST", body}); }
    catch (err) { msg.className = "msg error"; msg.textContent = T("Mất kết nối, chưa đăng nhập được.", "No connection; not signed in."); return; }
    if (!r.ok) {
      if (r.status === 401 || r.status === 400) { msg.className = "msg error"; msg.textContent = T("Sai tên đăng nhập hoặc mật khẩu.", "Wrong user name or password."); }
      else showProblem(msg, r.status, r.data);
      return;
    }
    Session.set(r.data);
    const next = new URLSearchParams(location.search).get("next");
    const home = {volunteer: "/volunteer", commune_staff: "/staff", relief_officer: "/officer", auditor: "/ledger"}[(r.data.user || {}).role] || "/";
    location.href = next && next.startsWith("/") && !next.startsWith("//") ? next : home;
  });
  $("#logout").addEventListener("click", () => { Session.clear(); shown(); location.reload(); });
  shown();
})();
