// Grading page: the keyboard flow. 1-9 and 0 (for 10) grade the active criterion and move to
// the next; arrows up/down change criterion; Enter sends; S skips, N goes to the next answer.
// Typing in the reason box never grades.
(function () {
  "use strict";
  const root = document.getElementById("grading");
  if (!root) return;
  const form = document.getElementById("grade-form");
  const criteria = Array.from(document.querySelectorAll("fieldset.criterion"));
  let active = 0;
  function mark() {
    criteria.forEach((c, k) => { if (k === active) c.dataset.active = "1"; else delete c.dataset.active; });
  }
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target && (target.tagName === "TEXTAREA" || target.isContentEditable)) return;
    const key = event.key.toLowerCase();
    if (form && /^[0-9]$/.test(key) && criteria.length) {
      const value = key === "0" ? "10" : key;
      const input = criteria[active].querySelector(`input[value="${value}"]`);
      if (input) {
        event.preventDefault();
        input.checked = true;
        if (active < criteria.length - 1) active += 1;
        mark();
      }
      return;
    }
    if (form && (key === "arrowdown" || key === "arrowup") && criteria.length) {
      event.preventDefault();
      active = Math.max(0, Math.min(criteria.length - 1, active + (key === "arrowdown" ? 1 : -1)));
      mark();
      return;
    }
    if (form && key === "enter") {
      event.preventDefault();
      form.requestSubmit();
      return;
    }
    const el = document.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (!el || el.disabled) return;
    event.preventDefault();
    el.click();
  });
  criteria.forEach((c, k) => c.addEventListener("change", () => { active = k; mark(); }));
  if (form) {
    form.addEventListener("submit", (event) => {
      if (form.dataset.sent) { event.preventDefault(); return; }
      form.dataset.sent = "1";
    });
  }
})();
