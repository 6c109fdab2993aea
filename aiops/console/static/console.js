// The aiops web console's only script: everything works without it. It adds each time's value in the
// browser's own time zone as a tooltip (pages show UTC, which on-call rotations across zones share).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var at = new Date(el.getAttribute("datetime"));
    if (!isNaN(at.getTime())) {
      el.title = at.toLocaleString();
    }
  });
});
