// Every page: a menu marked data-autosubmit (the language switch) submits its form when
// changed. Here and not in an onchange attribute: the Content-Security-Policy runs no inline
// code. Without JavaScript the form's <noscript> button does the same.
(function () {
  "use strict";
  document.querySelectorAll("select[data-autosubmit]").forEach((el) => {
    el.addEventListener("change", () => el.form.submit());
  });
})();
