// Ask before a review decision is sent: "Approve income@2 for production?" with the comment shown.
// A form opts in with data-confirm-version and data-confirm-stage; the decision is the value of the
// button that submitted it. Cancelling sends nothing and puts the focus back on that button, so the
// form stays usable from the keyboard. (A file, not an inline script: the CSP allows only 'self'.)
(function () {
  "use strict";
  function question(form, decision) {
    var version = form.dataset.confirmVersion;
    var stage = form.dataset.confirmStage;
    var comment = (form.elements.comment ? form.elements.comment.value : "").trim();
    var ask = decision === "reject"
      ? "Reject the request to move " + version + " to " + stage + "?"
      : "Approve " + version + " for " + stage + "?";
    return ask + "\n\nYour comment (it goes into the audit log):\n" + comment;
  }
  function guard(form) {
    form.addEventListener("submit", function (event) {
      var button = event.submitter;
      var decision = button && button.value ? button.value : "approve";
      if (!window.confirm(question(form, decision))) {
        event.preventDefault();
        if (button) { button.focus(); }
      }
    });
  }
  function start() {
    document.querySelectorAll("form[data-confirm-version]").forEach(guard);
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
