/* Greenroom's live pages: plain JavaScript, no build step, no framework.
 *
 * - A job page (dashboard or end user) follows its job's event stream (/api/jobs/<id>/events/) and
 *   updates status, progress and message in place. When the stream is refused (503: too many
 *   streams) it polls the JSON API every 2 s instead. Once the job has finished it fetches the page
 *   again and swaps the job's part in, so the final state (result, buttons, traceback) shows without
 *   a reload.
 * - The job list polls /dashboard/jobs/progress/ for its active rows every 2 s.
 * - The overview follows /dashboard/events/ and rewrites its numbers and chart.
 * Everything is written with textContent and setAttribute: data never becomes markup.
 */
(function () {
  "use strict";

  var FINISHED = ["SUCCESSFUL", "FAILED", "CANCELLED"];
  var POLL_MS = 2000;
  var SVG = "http://www.w3.org/2000/svg";

  function isFinished(status) {
    return FINISHED.indexOf(status) !== -1;
  }

  function setText(element, text) {
    if (element && element.textContent !== text) {
      element.textContent = text;
    }
  }

  function getJSON(url) {
    return fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}}).then(function (r) {
      return r.ok ? r.json() : null;
    });
  }

  function setStatus(element, status) {
    if (!element) return;
    setText(element, status);
    element.className = "status status-" + String(status).toLowerCase();
  }

  // Determinate when the total is known; full (or empty) once finished; indeterminate otherwise.
  function setProgress(bar, status, progress) {
    if (!bar || !progress) return;
    if (progress.total) {
      bar.max = progress.total;
      bar.value = progress.done;
    } else if (isFinished(status)) {
      bar.max = 1;
      bar.value = status === "SUCCESSFUL" ? 1 : 0;
    } else {
      bar.removeAttribute("value");
    }
  }

  // --- one job -------------------------------------------------------------------------------------
  function watchJob(root) {
    var finished = false;
    var source = null;
    var timer = null;

    function apply(job) {
      if (!job || !job.status) return;
      setStatus(root.querySelector("[data-testid=job-status]"), job.status);
      setProgress(root.querySelector("[data-testid=job-progress]"), job.status, job.progress);
      setText(root.querySelector("[data-testid=job-progress-message]"), job.progress.message || "");
      var numbers = job.progress.total ? job.progress.done + " / " + job.progress.total : String(job.progress.done);
      setText(root.querySelector("[data-testid=job-progress-numbers]"), numbers);
      setText(root.querySelector("[data-testid=job-attempts]"), String(job.attempts));
      if (isFinished(job.status)) finish();
    }

    function finish() {
      if (finished) return;
      finished = true;
      if (source) source.close();
      if (timer) clearInterval(timer);
      // The server renders the final state (result, error, buttons); swap it in without a reload.
      fetch(window.location.href, {credentials: "same-origin", headers: {"Accept": "text/html"}})
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) return;
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(root.id);
          if (fresh && root.parentNode) root.parentNode.replaceChild(document.adoptNode(fresh), root);
        })
        .catch(function () { /* the in-place update already shows the final status */ });
    }

    function poll() {
      if (timer || finished) return;
      var tick = function () { getJSON(root.dataset.apiUrl).then(apply).catch(function () {}); };
      tick();
      timer = setInterval(tick, POLL_MS);
    }

    if (!window.EventSource) {
      poll();
      return;
    }
    source = new EventSource(root.dataset.eventsUrl);
    source.addEventListener("progress", function (event) { apply(JSON.parse(event.data)); });
    source.addEventListener("end", function (event) {
      source.close();
      var job = JSON.parse(event.data);
      if (job && job.status) apply(job);
      finish();
    });
    source.onerror = function () {
      // CLOSED: the server refused the stream (503 when it serves too many); otherwise the stream
      // ended on its own and EventSource reconnects by itself.
      if (source.readyState === EventSource.CLOSED && !finished) poll();
    };
  }

  // --- the job list ----------------------------------------------------------------------------------
  function watchJobList(table) {
    var url = table.dataset.progressUrl;
    var timer = null;

    function activeIds() {
      return Array.prototype.map.call(table.querySelectorAll("tr[data-active='1']"), function (row) {
        return row.dataset.jobId;
      });
    }

    function tick() {
      var ids = activeIds();
      if (!ids.length) {
        clearInterval(timer);
        return;
      }
      var query = ids.map(function (id) { return "id=" + encodeURIComponent(id); }).join("&");
      getJSON(url + "?" + query).then(function (body) {
        if (!body) return;
        body.jobs.forEach(function (job) {
          var row = table.querySelector("tr[data-job-id='" + CSS.escape(job.id) + "']");
          if (!row) return;
          setStatus(row.querySelector("[data-job-status]"), job.status);
          setProgress(row.querySelector("[data-job-progress]"), job.status, job.progress);
          setText(row.querySelector("[data-job-message]"), job.progress.message || "");
          if (isFinished(job.status)) row.removeAttribute("data-active");
        });
      }).catch(function () {});
    }

    if (activeIds().length) timer = setInterval(tick, POLL_MS);
  }

  // --- the overview ----------------------------------------------------------------------------------
  function drawChart(svg, chart) {
    setText(svg.querySelector("[data-chart-max]"), String(chart.max));
    Object.keys(chart.lines).forEach(function (name) {
      var line = svg.querySelector("polyline[data-series='" + CSS.escape(name) + "']");
      if (line) line.setAttribute("points", chart.lines[name]);
    });
    var group = svg.querySelector("g[data-series=failures]");
    if (!group) return;
    while (group.firstChild) group.removeChild(group.firstChild);
    chart.bars.forEach(function (bar) {
      var rect = document.createElementNS(SVG, "rect");
      ["x", "y", "width", "height"].forEach(function (name) { rect.setAttribute(name, bar[name]); });
      var title = document.createElementNS(SVG, "title");
      title.textContent = bar.count + " failed";
      rect.appendChild(title);
      group.appendChild(rect);
    });
  }

  function showOverview(root, data) {
    data.queues.forEach(function (queue) {
      var row = root.querySelector("tr[data-queue='" + CSS.escape(queue.queue) + "']");
      if (!row) return;
      Object.keys(queue.cells).forEach(function (field) {
        setText(row.querySelector("[data-field='" + CSS.escape(field) + "']"), queue.cells[field]);
      });
    });
    setText(root.querySelector("[data-testid=workers-alive]"), String(data.workers_alive));
    setText(root.querySelector("[data-testid=schedulers-alive]"), String(data.schedulers_alive));
    var broker = root.querySelector("[data-testid=broker-status]");
    setText(broker, data.broker.ok ? "broker reachable" : data.broker.error);
    if (broker) broker.classList.toggle("bad", !data.broker.ok);
    var updated = root.querySelector("[data-field=generated_at]");
    if (updated) {
      setText(updated, data.generated_at_text);
      updated.setAttribute("datetime", data.generated_at);
    }
    var svg = root.querySelector("#throughput-chart");
    if (svg) drawChart(svg, data.chart);
  }

  function watchOverview(root) {
    if (!window.EventSource) return;
    var source = new EventSource(root.dataset.eventsUrl);
    source.addEventListener("overview", function (event) { showOverview(root, JSON.parse(event.data)); });
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) {
        // Refused (too many streams): try again after the server's Retry-After.
        setTimeout(function () { watchOverview(root); }, 5000);
      }
    };
  }

  function start() {
    var job = document.querySelector("[data-live-job]");
    if (job && !job.dataset.finished) watchJob(job);
    var list = document.getElementById("job-list");
    if (list) watchJobList(list);
    var overview = document.getElementById("overview");
    if (overview) watchOverview(overview);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
