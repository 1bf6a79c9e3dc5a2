// Live generation counts for the admin: replaces the table body from websocket frames.
(function () {
  "use strict";
  const table = document.getElementById("progress");
  const state = document.getElementById("live-state");
  if (!table) return;
  const cols = ["done", "running", "pending", "failed", "not_queued"];
  function render(progress) {
    const body = table.tBodies[0];
    body.replaceChildren();
    for (const row of progress.contestants) {
      const tr = document.createElement("tr");
      tr.dataset.slug = row.slug;
      const name = document.createElement("td");
      name.textContent = row.contestant;
      tr.appendChild(name);
      for (const c of cols) {
        const td = document.createElement("td");
        td.className = c;
        td.textContent = String(row[c]);
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
  }
  function connect(delay) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/generation/${table.dataset.set}/`);
    ws.onopen = () => { state.textContent = state.dataset.connected; delay = 500; };
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      if (msg.type === "progress") render(msg.progress);
    };
    ws.onclose = () => {
      state.textContent = state.dataset.disconnected;
      setTimeout(() => connect(Math.min(delay * 2, 10000)), delay);
    };
  }
  connect(500);
})();
