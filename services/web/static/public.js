/* /public for someone signed in: the campaigns list, which relief gives to signed-in readers only. */
"use strict";
(async function () {
  if (!Session.token()) return;
  const r = await api("relief", "/campaigns").catch(() => null);
  if (!r || !r.ok) return;
  $("#list-note").hidden = true;
  $("#campaigns").innerHTML = r.data.map(c => '<li><a href="/public/campaigns/' + esc(c.id) + '"><strong>' + esc(c.name) + "</strong></a> · " +
    esc(c.committee || c.unit_code) + " · " + esc(c.opens_on) + " – " + esc(c.closes_on) + "</li>").join("");
})();
