// Zhucan dashboard: the live tally on the operator page, confirmations. No external fetches.
(function () {
  "use strict";
  document.addEventListener("submit", function (e) {
    var msg = e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { e.preventDefault(); }
  });
  var live = document.getElementById("live");
  if (!live) { return; }
  var url = live.getAttribute("data-url");
  var shown = live.getAttribute("data-sig");
  function yuan(fen) {
    var a = Math.abs(fen);
    var s = (fen < 0 ? "-¥" : "¥") + String(Math.floor(a / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, ",") + ".";
    var c = a % 100;
    return s + (c < 10 ? "0" : "") + c;
  }
  function busy() {
    var a = document.activeElement;
    return a && (a.tagName === "INPUT" || a.tagName === "SELECT") && a.value !== "";
  }
  function tick() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (t) {
        var voided = t.meals.filter(function (m) { return m.voided; }).length;
        var sig = t.meals.length + ":" + voided;
        document.querySelectorAll("[data-total]").forEach(function (el) {
          var k = el.getAttribute("data-total");
          var v = t.totals[k];
          el.textContent = (k === "meals" || k === "subsidised_meals") ? String(v) : yuan(v);
        });
        var stamp = document.getElementById("live-at");
        if (stamp) { stamp.textContent = new Date().toLocaleTimeString(); }
        if (sig !== shown && !busy()) { window.location.reload(); }
      })
      .catch(function () {
        var stamp = document.getElementById("live-at");
        if (stamp) { stamp.textContent = "…"; }
      });
  }
  window.setInterval(tick, 5000);
})();
