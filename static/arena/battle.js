// Battle page: keyboard shortcuts, and for live battles the two streams over a websocket.
(function () {
  "use strict";
  const root = document.getElementById("battle");
  if (!root) return;

  // Keyboard: 1-4 vote, S skip, N next. Typing in a text box never votes.
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target && (target.tagName === "TEXTAREA" || target.tagName === "INPUT" || target.isContentEditable)) return;
    const key = event.key.toLowerCase();
    const el = document.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (!el || el.disabled) return;
    event.preventDefault();
    el.click();
  });

  // A vote button is submitted once: a double press cannot send two votes from this page.
  const voteForm = document.getElementById("vote-form");
  if (voteForm) {
    voteForm.addEventListener("submit", (event) => {
      if (voteForm.dataset.sent) { event.preventDefault(); return; }
      voteForm.dataset.sent = "1";
      const chosen = event.submitter;
      if (chosen) {
        const hidden = document.createElement("input");
        hidden.type = "hidden"; hidden.name = chosen.name; hidden.value = chosen.value;
        voteForm.appendChild(hidden);
      }
      voteForm.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    });
  }

  if (root.dataset.mode !== "live" || root.dataset.state !== "served") return;
  const errorBox = document.getElementById("stream-error");
  const bodies = () => {
    const all = root.querySelectorAll(".answer-body");
    const last = all.length ? all[all.length - 1].dataset.round : "0";
    return {
      a: root.querySelector(`.answer-body[data-round="${last}"][data-side="a"]`),
      b: root.querySelector(`.answer-body[data-round="${last}"][data-side="b"]`),
    };
  };
  const finished = { a: false, b: false };
  const streamed = { a: "", b: "" };
  function enableVoting() {
    if (!(finished.a && finished.b)) return;
    document.querySelectorAll("#vote-form button").forEach((b) => { b.disabled = false; });
    const cont = document.getElementById("continue-form");
    if (cont) cont.hidden = false;
  }
  function connect(delay) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/battle/${root.dataset.code}/`);
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      const el = bodies();
      if (msg.type === "delta" && (msg.side === "a" || msg.side === "b")) {
        streamed[msg.side] += msg.text;
        el[msg.side].textContent = streamed[msg.side];  // plain text while streaming
      } else if (msg.type === "done" && (msg.side === "a" || msg.side === "b")) {
        finished[msg.side] = true;
        el[msg.side].innerHTML = msg.html;  // sanitised by the server (nh3)
        enableVoting();
      } else if (msg.type === "reveal_both") {
        el.a.innerHTML = msg.a_html;
        el.b.innerHTML = msg.b_html;
        finished.a = finished.b = true;
        enableVoting();
      } else if (msg.type === "error") {
        // The worker that sends this frame does not know the reader's language: the page does.
        const local = msg.side === "a" ? errorBox.dataset.failedA : msg.side === "b" ? errorBox.dataset.failedB : "";
        errorBox.textContent = local || msg.message;
        errorBox.hidden = false;
      }
    };
    ws.onclose = (e) => {
      if (e.code === 4403 || e.code === 4404) return;
      if (!(finished.a && finished.b)) setTimeout(() => connect(Math.min(delay * 2, 8000)), delay);
    };
  }
  connect(500);
})();
