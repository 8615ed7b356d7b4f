/* The receipt checker: everything recomputed in this browser with WebCrypto, trusting nothing
   the server says but the public key published above (compare it with the one at the office).
   Format: docs/ledger.md "Public format mttq-relief-ledger/v1". */
"use strict";
(function () {
  const enc = new TextEncoder();
  const hex = (buf) => Array.from(new Uint8Array(buf), b => b.toString(16).padStart(2, "0")).join("");
  const unhex = (s) => new Uint8Array(s.match(/../g).map(h => parseInt(h, 16)));
  const unb64 = (s) => Uint8Array.from(atob(s), c => c.charCodeAt(0));
  const concat = (...parts) => { const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0)); let i = 0; for (const p of parts) { out.set(p, i); i += p.length; } return out; };
  const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));

  // canonical bytes: compact JSON, keys sorted at every level (orjson OPT_SORT_KEYS), UTF-8
  function canonical(value) {
    if (Array.isArray(value)) return "[" + value.map(canonical).join(",") + "]";
    if (value && typeof value === "object") return "{" + Object.keys(value).sort().map(k => JSON.stringify(k) + ":" + canonical(value[k])).join(",") + "}";
    return JSON.stringify(value);
  }

  // RFC 9162 section 2.1.3.2: fold the inclusion proof from the leaf up to the root
  async function rootFromProof(leafIndex, treeSize, leaf, proof) {
    if (leafIndex >= treeSize) throw new Error("leaf_index >= tree_size");
    let fn = leafIndex, sn = treeSize - 1, r = leaf;
    for (const p of proof.map(unhex)) {
      if (sn === 0) throw new Error("proof too long");
      if (fn % 2 === 1 || fn === sn) {
        r = await sha256(concat(new Uint8Array([1]), p, r));
        while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      } else {
        r = await sha256(concat(new Uint8Array([1]), r, p));
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    if (sn !== 0) throw new Error("proof too short");
    return hex(r);
  }

  async function check(receipt) {
    const results = [];
    const add = (ok, vi, en, detail) => results.push({ok, text: T(vi, en) + (detail ? " " + detail : "")});
    if (!(window.crypto && crypto.subtle)) { add(false, "Trình duyệt này không có WebCrypto (cần HTTPS).", "This browser has no WebCrypto (HTTPS needed)."); return results; }
    const leaf = await sha256(concat(new Uint8Array([0]), enc.encode(canonical(receipt.entry))));
    add(hex(leaf) === receipt.leaf_hash, "Băm lá khớp với nội dung mục", "Leaf hash matches the entry", hex(leaf).slice(0, 16) + "…");
    add(receipt.leaf_index === receipt.entry.seq - 1, "Vị trí lá = số mục - 1", "Leaf index = seq - 1");
    const cp = receipt.checkpoint;
    try {
      const root = await rootFromProof(receipt.leaf_index, cp.tree_size, leaf, receipt.inclusion_proof);
      add(root === cp.root_hash, "Chứng minh Merkle dẫn tới đúng gốc của điểm kiểm tra", "The Merkle proof leads to the checkpoint's root", "(tree_size " + cp.tree_size + ")");
    } catch (e) { add(false, "Chứng minh Merkle sai:", "Merkle proof invalid:", e.message); }
    const pub = unb64(receipt.public_key);
    add(hex((await sha256(pub)).slice(0, 8)) === cp.key_id, "key_id khớp với khoá", "key_id matches the key");
    const published = (document.getElementById("public-key") || {}).textContent;
    add(receipt.public_key === published, "Khoá trong biên nhận là khoá công khai của sổ cái", "The receipt's key is the ledger's published key");
    try {
      const key = await crypto.subtle.importKey("raw", pub, {name: "Ed25519"}, false, ["verify"]);
      const message = enc.encode("mttq-relief-ledger/v1\n" + cp.tree_size + "\n" + cp.root_hash + "\n" + cp.timestamp + "\n");
      add(await crypto.subtle.verify({name: "Ed25519"}, key, unb64(cp.signature), message), "Chữ ký Ed25519 của điểm kiểm tra hợp lệ", "The checkpoint's Ed25519 signature is valid");
    } catch (e) { add(false, "Trình duyệt này không kiểm được chữ ký Ed25519; dùng relief-audit verify-receipt.", "This browser cannot check Ed25519 signatures; use relief-audit verify-receipt.", String(e.name || e)); }
    return results;
  }

  const out = $("#check-result");
  async function run() {
    out.innerHTML = "";
    let receipt;
    try { receipt = JSON.parse($("#receipt").value); } catch (e) { out.innerHTML = '<li class="error">' + esc(T("Biên nhận không phải JSON hợp lệ.", "The receipt is not valid JSON.")) + "</li>"; return; }
    const results = await check(receipt).catch(e => [{ok: false, text: String(e)}]);
    out.innerHTML = results.map(r => '<li class="' + (r.ok ? "ok" : "error") + '">' + (r.ok ? "✓ " : "✗ ") + esc(r.text) + "</li>").join("");
    out.dataset.verdict = results.every(r => r.ok) ? "valid" : "invalid";
    out.insertAdjacentHTML("afterbegin", '<li class="' + (results.every(r => r.ok) ? "ok" : "error") + '" id="verdict"><strong>' +
      esc(results.every(r => r.ok) ? T("Biên nhận hợp lệ.", "The receipt is valid.") : T("Biên nhận KHÔNG hợp lệ.", "The receipt is NOT valid.")) + "</strong></li>");
  }
  $("#check").addEventListener("click", run);
  $("#fetch-receipt").addEventListener("click", async () => {
    const seq = $("#seq").value.trim();
    const r = await api("ledger", "/ledger/proof/" + encodeURIComponent(seq)).catch(() => null);
    if (!r || !r.ok) { out.innerHTML = '<li class="error">' + esc(problemText(r ? r.status : 0, r && r.data)) + "</li>"; return; }
    $("#receipt").value = JSON.stringify(r.data, null, 1);
    run();
  });
  if ($("#receipt").value.trim()) run();
})();
