/* The job page follows its job: it asks the JSON status every two seconds, updates the progress bar
   and its words, and shows the result or the error when the job ends. */
(function () {
  "use strict";
  var page = document.getElementById("job");
  if (!page || page.getAttribute("data-active") !== "yes") { return; }
  var url = page.getAttribute("data-status-url");

  function show(id, text) {
    var element = document.getElementById(id);
    if (!element) { return; }
    element.textContent = text || "";
    element.hidden = !text;
  }

  function update(status) {
    document.getElementById("job-state").textContent = status.state_label;
    document.getElementById("job-stage").textContent = status.stage || "";
    var bar = document.getElementById("job-progress");
    if (status.total) {
      bar.max = status.total;
      bar.value = status.done;
    }
    bar.textContent = status.progress;
    document.getElementById("job-count").textContent = status.progress;
    show("job-result", status.result);
    show("job-error", status.error);
    if (!status.active) {
      document.getElementById("job-progress-block").hidden = true;
      window.location.reload();  /* the finished page carries the links (the file made, the record) */
      return false;
    }
    return true;
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (status) {
        if (status && update(status)) { window.setTimeout(poll, 2000); }
        else if (!status) { window.setTimeout(poll, 5000); }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 1000);
}());
