// Leaderboard page: the slice and view controls submit themselves, and a websocket tells the
// page when the recompute stored new figures; the page then fetches itself and swaps the board.
(function () {
  "use strict";
  const root = document.getElementById("leaderboard");
  if (!root) return;
  const form = root.querySelector("form.lb-controls");
  if (form) {
    form.querySelectorAll("select, input[type=radio]").forEach((el) => {
      el.addEventListener("change", () => form.submit());
    });
  }

  function state(key) {
    const live = document.getElementById("lb-live");
    if (live) live.textContent = live.dataset[key] || "";
  }

  let loading = false;
  async function reload() {
    if (loading) return;
    loading = true;
    try {
      const response = await fetch(location.href, { credentials: "same-origin" });
      if (!response.ok) return;
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById("board");
      const board = document.getElementById("board");
      if (fresh && board) board.replaceWith(fresh);
      state("updated");
    } finally {
      loading = false;
    }
  }

  function connect(delay) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/leaderboard/${root.dataset.campaign}/`);
    ws.onopen = () => { state("connected"); delay = 1000; };
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      if (msg.type === "leaderboard.updated") reload();
    };
    ws.onclose = (e) => {
      if (e.code === 4403 || e.code === 4404) return;  // not allowed: do not retry
      state("disconnected");
      setTimeout(() => connect(Math.min(delay * 2, 30000)), delay);
    };
  }
  // A public view frozen at the start of the day is not told of updates (see leaderboard_until).
  if (!root.dataset.frozen) connect(1000);
})();
