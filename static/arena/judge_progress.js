// Live judge-run counts for the admin: polls the run's progress JSON every two seconds
// until nothing is pending or running.
(function () {
  "use strict";
  const table = document.getElementById("judge-progress");
  if (!table) return;
  function render(p) {
    for (const cell of table.querySelectorAll("[data-key]")) {
      const key = cell.dataset.key;
      const value = key in p.counts ? p.counts[key] : p[key];
      cell.textContent = String(value);
    }
    return p.counts.pending + p.counts.running > 0;
  }
  async function poll() {
    try {
      const response = await fetch(table.dataset.url, { credentials: "same-origin" });
      if (response.ok && !render(await response.json())) return;
    } catch (e) { /* try again */ }
    setTimeout(poll, 2000);
  }
  poll();
})();
