// Parts of a page that follow background work (a report being written): an element with an id and
// data-live-every="MS" is fetched again from this page's own URL every MS milliseconds and its
// contents replaced in place, announced politely to screen readers (aria-live on the element),
// until the fresh copy no longer carries data-live-every: the work has finished. This replaces a
// <meta http-equiv="refresh">, which reloads the whole page under a reader's cursor and focus.
(function () {
  "use strict";
  var SLOWER_AFTER_MS = 10 * 60 * 1000;  // work that runs this long is polled every 30 s

  function follow(region) {
    var every = parseInt(region.getAttribute("data-live-every"), 10) || 3000;
    var started = Date.now();
    function again(delay) {
      var waited = Date.now() - started;
      setTimeout(tick, waited > SLOWER_AFTER_MS ? Math.max(delay, 30000) : delay);
    }
    function tick() {
      fetch(window.location.href, {credentials: "same-origin", cache: "no-store"})
        .then(function (response) {
          if (!response.ok) { throw new Error(String(response.status)); }
          return response.text();
        })
        .then(function (html) {
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(region.id);
          if (!fresh) { return; }
          // The same page as first drawn, from the same templates (their autoescaping holds).
          region.innerHTML = fresh.innerHTML;
          if (fresh.hasAttribute("data-live-every")) {
            again(every);
          } else {
            region.removeAttribute("data-live-every");
          }
        })
        .catch(function () { again(every * 2); });
    }
    again(every);
  }

  document.querySelectorAll("[data-live-every][id]").forEach(follow);
})();
