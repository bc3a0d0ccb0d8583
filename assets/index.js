// kbatch serve's projects page: polls /api/projects every second and draws one row per
// project with its live progress; creates projects from an uploaded file. Text only, no HTML
// from the data.
"use strict";
(function () {
  const { $, num, el } = kb;
  const token = new URLSearchParams(location.search).get("token");
  const auth = token ? { Authorization: `Bearer ${token}` } : {};
  const withToken = (path) => (token ? `${path}?token=${encodeURIComponent(token)}` : path);
  let polls = 0;

  function row(s) {
    const job = s.job;
    const running = s.status === "running";
    const done = job && running ? job.items_done : s.batches_done;
    const total = job && running ? job.items_total : s.batches_total;
    const link = el("a", { href: withToken(`/projects/${encodeURIComponent(s.project)}`), text: s.project });
    const progress = el("td", { class: "progress" },
      el("progress", { max: String(total || 1), value: String(done) }),
      el("span", { class: "count", text: ` ${num(done)}/${num(total)} ${job && running ? "items" : "units"}` }));
    const action = el("td");
    if (s.status === "interrupted" || s.status === "failed") {
      const b = el("button", { type: "button", text: "Resume" });
      b.addEventListener("click", () => post(`/api/projects/${encodeURIComponent(s.project)}/resume`, null));
      action.append(b);
    }
    return el("tr", { class: "project", "data-project": s.project, "data-status": s.status },
      el("td", {}, link),
      el("td", { class: `state-${s.status}`, text: s.status + (s.stopped ? " (stopped)" : s.stalled ? " (stalled)" : "") }),
      el("td", { text: s.phase }),
      progress,
      el("td", { text: `${num(s.items_done)} of ${num(s.items_total)}` }),
      el("td", { text: job ? `${job.job_id} ${job.kind}, ${job.state}` : "–" }),
      el("td", { text: running && s.eta_s ? `${Math.ceil(s.eta_s)} s` : "" }),
      action);
  }

  function poll() {
    fetch("/api/projects", { headers: auth })
      .then((r) => r.json())
      .then((list) => {
        polls += 1;
        $("projects").replaceChildren(...list.map(row));
        $("projects-note").textContent = list.length ? "" : "No projects yet: create one below, or with kbatch create.";
        document.body.dataset.polls = String(polls);
        setTimeout(poll, 1000);
      })
      .catch(() => setTimeout(poll, 2000));
  }

  function post(url, body) {
    $("upload-result").textContent = "Sending…";
    return fetch(url, { method: "POST", headers: auth, body })
      .then((r) => r.json().then((j) => [r.status, j]))
      .then(([status, j]) => {
        $("upload-result").textContent = j.error
          ? `Refused (${status}): ${j.error}`
          : j.job_id ? `Started job ${j.job_id} for project ${j.project}.` : j.message || "Done.";
      })
      .catch((e) => { $("upload-result").textContent = `Failed: ${e}`; });
  }

  $("upload").addEventListener("submit", (e) => {
    e.preventDefault();
    const form = new FormData(e.target);
    for (const [k, v] of [...form.entries()]) if (v === "") form.delete(k);
    post("/api/projects", form);
  });
  poll();
})();
