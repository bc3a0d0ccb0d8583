// A kbatch report: renders the data in #report-data (see pipeline::ReportData) into the run's
// facts and charts (uPlot), a treemap of topics and pages (d3-hierarchy's layout), and a
// searchable, sortable table of pages that open to their items. Every string from the data is
// set as text, never as HTML.
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("report-data").textContent);
  const S = D.status;
  const { $, num, el } = kb;
  const itemWord = D.keywords ? "keywords" : "items";
  const pageWord = D.keywords ? "pages" : "clusters";
  const weight = (x) => (D.has_volume ? x.volume : x.size);
  const hue = (topic) => (topic * 137.508) % 360;

  function summary() {
    const cfg = S.config || {};
    const groups = S.groups === undefined ? "" : `, ${num(S.groups)} page-level groups`;
    $("summary").textContent =
      `${num(D.items_total)} of ${num(S.items_total)} ${itemWord} committed in ` +
      `${num(D.topics.length)} topics and ${num(D.pages_total)} ${pageWord}${groups} · ` +
      `${S.status}, ${S.phase} · ${D.keywords ? `${cfg.embedder || ""} ` : ""}${cfg.metric || ""}`;
  }

  function facts() {
    const cfg = S.config || {};
    const rows = [
      ["Status", `${S.status} (phase ${S.phase})`],
      ["Items", `${num(S.items_done)} of ${num(S.items_total)} in committed batches`],
      ["Topics", `${num(S.n_clusters)} (dimension ${S.dim})`],
      ["Pages", `${num(D.pages_total)}` + (S.groups === undefined ? "" : `, ${num(S.groups)} of them groups`)],
      ["Input", cfg.format],
      // Vectors go in as they are: the config's embedder only means something for keywords.
      ["Embedder", D.keywords ? cfg.embedder : "none (the input is vectors)"],
      ["Metric", cfg.metric],
      ["Seed", cfg.seed],
      ["Batch size", `${cfg.batch_size} (batch 0: ${cfg.first_batch_share} of the items)`],
      ["Refinement", `up to ${cfg.refine_epochs} epochs, tol ${cfg.tol}; ${S.refine_epochs_done} done`],
      ["Groups", cfg.groups ? `members at cosine ≥ ${cfg.groups.similarity} to their group's centre` : "none"],
      ["Units", `${num(S.batches_done)} of ${num(S.batches_total)} committed`],
      ["Elapsed", S.elapsed_s === null ? "–" : `${S.elapsed_s.toFixed(1)} s`],
    ];
    const passes = skipped();
    if (passes.length > 0) {
      rows.push(["Distances skipped",
        passes.map(([pass, share]) => `${pass} ${(100 * share).toFixed(1)}%`).join(" · ")]);
    }
    if (cfg.min_similarity !== undefined) rows.push(["Min similarity", cfg.min_similarity]);
    if (S.job) rows.push(["Latest job", `${S.job.job_id} (${S.job.kind}), ${S.job.state}`]);
    if (S.error) rows.push(["Error", S.error]);
    const dl = $("facts");
    for (const [k, v] of rows) dl.append(el("dt", { text: k }), el("dd", { text: String(v ?? "–") }));
    // The shares as numbers, for scripts (and tests) that read the page.
    dl.dataset.skipped = JSON.stringify(passes);
  }

  // Per pass over all items (a refinement epoch or the final pass; a later `refit` passes
  // again), in order: the share of item-to-centroid distances its bounds skipped, over its
  // committed units by their items.
  function skipped() {
    const passes = [];
    for (const b of S.batches || []) {
      const share = b.distances_skipped;
      if (b.status !== "completed" || share === null || share === undefined) continue;
      const pass = b.phase === "final" ? "final pass" : `epoch ${b.epoch + 1}`;
      const last = passes[passes.length - 1];
      const p = last && last.pass === pass ? last : { pass, items: 0, skipped: 0 };
      if (p !== last) passes.push(p);
      p.items += b.items_processed;
      p.skipped += b.items_processed * share;
    }
    return passes.map((p) => [p.pass, p.items > 0 ? p.skipped / p.items : 0]);
  }

  function chart(target, title, series, data) {
    const width = Math.max(280, target.clientWidth || 460);
    const opts = {
      title, width, height: 220,
      scales: { x: { time: false } },
      axes: [{ label: "unit" }, { size: 76 }],
      series: [{ label: "unit" }].concat(series),
    };
    new uPlot(opts, data, target);
  }

  function charts() {
    const rows = (S.batches || []).filter((b) => b.status === "completed");
    const x = rows.map((b) => b.batch_number);
    // A grouping unit's inertia is not the clustering's.
    const raw = rows.map((b) => (b.phase === "group" ? null : b.batch_inertia));
    const smoothed = rows.map((b) => (b.phase === "cluster" ? b.ewa_inertia : null));
    chart($("chart-inertia"), "", [
      { label: "raw", stroke: "#7a8ca3", width: 1 },
      { label: "smoothed", stroke: "#c0392b", width: 2 },
    ], [x, raw, smoothed]);
    const phases = ["cluster", "refine", "final", "group"];
    const colours = ["#2e86c1", "#8e44ad", "#16a085", "#d68910"];
    const rate = (b, phase) =>
      b.phase === phase && b.processing_time_ms > 0 ? (b.items_processed * 1000) / b.processing_time_ms : null;
    chart($("chart-throughput"), "",
      phases.map((p, i) => ({ label: p, stroke: colours[i], width: 1.5, points: { show: true, size: 4 } })),
      [x].concat(phases.map((p) => rows.map((b) => rate(b, p)))));
  }

  function treemap() {
    const box = $("treemap");
    const W = Math.max(320, box.clientWidth || 960);
    const H = Math.max(360, Math.round(W * 0.55));
    box.style.height = `${H}px`;
    box.replaceChildren();
    const topics = D.topics.map((t, i) => ({ topic: i, children: [] }));
    const drawn = D.topics.map(() => [0, 0]);
    D.pages.forEach((p, j) => {
      topics[p.topic].children.push({ page: j, value: weight(p) });
      drawn[p.topic][0] += weight(p);
      drawn[p.topic][1] += 1;
    });
    D.topics.forEach((t, i) => {
      const rest = weight(t) - drawn[i][0];
      const pages = t.pages - drawn[i][1];
      if (pages > 0) topics[i].children.push({ rest: pages, topic: i, value: Math.max(rest, 0) });
    });
    const root = d3.hierarchy({ children: topics })
      .sum((d) => d.value || 0)
      .sort((a, b) => b.value - a.value);
    d3.treemap().tile(d3.treemapSquarify).size([W, H]).round(true)
      .paddingOuter(1).paddingInner(1).paddingTop((d) => (d.depth === 1 ? 15 : 0))(root);
    const frag = document.createDocumentFragment();
    const place = (node, e) => {
      e.style.left = `${node.x0}px`;
      e.style.top = `${node.y0}px`;
      e.style.width = `${Math.max(0, node.x1 - node.x0)}px`;
      e.style.height = `${Math.max(0, node.y1 - node.y0)}px`;
      return e;
    };
    for (const node of root.children || []) {
      const t = D.topics[node.data.topic];
      const e = place(node, el("div", { class: "tm-topic" }));
      e.style.background = `hsl(${hue(node.data.topic)} 45% 42%)`;
      e.title = `Topic: ${t.title}\n${num(t.size)} ${itemWord} in ${num(t.pages)} ${pageWord} · volume ${num(t.volume)}`;
      if (node.x1 - node.x0 > 40) e.append(el("span", { class: "tm-label", text: t.title }));
      frag.append(e);
      for (const leaf of node.children || []) {
        const l = place(leaf, el("div", { class: leaf.data.rest ? "tm-leaf tm-rest" : "tm-leaf" }));
        l.style.background = `hsl(${hue(node.data.topic)} 55% ${leaf.data.rest ? 82 : 70}%)`;
        let label;
        if (leaf.data.rest) {
          label = `${num(leaf.data.rest)} more ${pageWord}`;
          l.title = `Topic: ${t.title}\n${label} not listed · volume ${num(leaf.data.value)}`;
        } else {
          const p = D.pages[leaf.data.page];
          label = p.title || t.title;
          l.title = `${D.keywords ? "Page" : "Cluster"}: ${label}\nTopic: ${t.title}\n` +
            `${num(p.size)} ${itemWord} · volume ${num(p.volume)}` + (p.terms.length ? `\nTerms: ${p.terms.join(", ")}` : "");
          l.dataset.page = leaf.data.page;
        }
        if (leaf.x1 - leaf.x0 > 48 && leaf.y1 - leaf.y0 > 14) l.append(el("span", { text: label }));
        frag.append(l);
      }
    }
    box.append(frag);
    const listed = D.pages.length < D.pages_total;
    $("map-note").textContent =
      `Sized by ${D.has_volume ? "search volume" : `number of ${itemWord}`}; hover for the numbers, click a ${D.keywords ? "page" : "cluster"} to find it in the table.` +
      (listed ? ` The ${num(D.pages.length)} largest ${pageWord} are drawn one by one; each topic's others are drawn as one block.` : "");
  }

  // The table of pages.
  const columns = D.keywords
    ? [["topic", "Topic"], ["title", "Page"], ["size", "Keywords"], ["volume", "Volume"], ["terms", "Top terms"]]
    : [["topic", "Cluster"], ["size", "Items"], ["volume", "Volume"]];
  const state = { sort: D.has_volume ? "volume" : "size", desc: true, query: "", shown: 100, open: new Set() };
  const haystacks = [];
  const haystack = (j) => {
    if (haystacks[j] === undefined) {
      const p = D.pages[j];
      haystacks[j] = [p.title, D.topics[p.topic].title, p.terms.join(" "),
        p.items.map((it) => (D.keywords ? it[0] : `${it[0]} ${it[1] || ""}`)).join("\n")].join("\n").toLowerCase();
    }
    return haystacks[j];
  };
  const sortValue = (j, key) => {
    const p = D.pages[j];
    if (key === "topic") return D.topics[p.topic].title.toLowerCase();
    if (key === "title") return (p.title || "").toLowerCase();
    if (key === "terms") return p.terms.join(" ");
    return p[key];
  };

  function head() {
    const tr = $("page-head");
    tr.replaceChildren(el("th", { class: "toggle" }));
    for (const [key, label] of columns) {
      const arrow = state.sort === key ? (state.desc ? " ▼" : " ▲") : "";
      const th = el("th", { text: label + arrow, "data-key": key, scope: "col" });
      th.addEventListener("click", () => {
        state.desc = state.sort === key ? !state.desc : key === "size" || key === "volume";
        state.sort = key;
        state.shown = 100;
        head();
        rows();
      });
      tr.append(th);
    }
  }

  function itemTable(p) {
    const t = el("table", { class: "items" });
    const h = D.keywords ? ["Keyword", "Volume", "Similarity"] : ["Id", "Text", "Similarity"];
    t.append(el("thead", {}, el("tr", {}, ...h.map((x) => el("th", { text: x })))));
    const body = el("tbody");
    for (const it of p.items) {
      const cells = D.keywords ? [it[0], num(it[1]), it[2].toFixed(3)] : [it[0], it[1] ?? "", it[2].toFixed(3)];
      body.append(el("tr", {}, ...cells.map((c) => el("td", { text: String(c) }))));
    }
    t.append(body);
    const box = el("div", { class: "item-box" }, t);
    if (p.items.length < p.size) {
      box.append(el("p", { class: "note", text: `${num(p.items.length)} of ${num(p.size)} ${itemWord} listed here; kbatch export has them all.` }));
    }
    return box;
  }

  function rows() {
    const q = state.query;
    let list = D.pages.map((_, j) => j);
    if (q) list = list.filter((j) => haystack(j).includes(q));
    const key = state.sort;
    list.sort((a, b) => {
      const x = sortValue(a, key), y = sortValue(b, key);
      const c = x < y ? -1 : x > y ? 1 : a - b;
      return state.desc ? -c : c;
    });
    const body = $("page-rows");
    const frag = document.createDocumentFragment();
    for (const j of list.slice(0, state.shown)) {
      const p = D.pages[j];
      const open = state.open.has(j);
      const button = el("button", { type: "button", class: "toggle", "aria-expanded": String(open), text: open ? "▾" : "▸" });
      const tr = el("tr", { class: "page-row", "data-page": String(j) }, el("td", {}, button));
      const cells = D.keywords
        ? [D.topics[p.topic].title, p.title || "(not grouped yet)", num(p.size), num(p.volume), p.terms.join("; ")]
        : [D.topics[p.topic].title, num(p.size), num(p.volume)];
      for (const c of cells) tr.append(el("td", { text: c }));
      button.addEventListener("click", () => {
        if (state.open.has(j)) state.open.delete(j); else state.open.add(j);
        rows();
      });
      frag.append(tr);
      if (open) frag.append(el("tr", { class: "item-row" }, el("td", { colspan: String(columns.length + 1) }, itemTable(p))));
    }
    body.replaceChildren(frag);
    $("shown").textContent = `${num(Math.min(state.shown, list.length))} of ${num(list.length)} ${pageWord} shown`;
    $("more").hidden = list.length <= state.shown;
  }

  function table() {
    $("table-title").textContent = D.keywords ? "Pages" : "Clusters";
    const p = D.project.replace(/'/g, "'\\''");
    $("table-note").textContent = D.pages.length < D.pages_total
      ? `Listing the ${num(D.pages.length)} ${pageWord} with the most ${D.has_volume ? "volume" : itemWord} of ${num(D.pages_total)}, ` +
        `with ${num(D.items_listed)} of their ${itemWord}. All of them: kbatch export --project '${p}'` +
        (D.keywords ? ` --clusters (one row per page), or without --clusters (one row per keyword).` : ".")
      : `Every ${D.keywords ? "page" : "cluster"}, with ${num(D.items_listed)} of its ${num(D.items_total)} ${itemWord} listed when opened.`;
    head();
    rows();
    $("search").addEventListener("input", (e) => {
      state.query = e.target.value.trim().toLowerCase();
      state.shown = 100;
      rows();
    });
    $("more").addEventListener("click", () => {
      state.shown += 100;
      rows();
    });
    $("treemap").addEventListener("click", (e) => {
      const leaf = e.target.closest(".tm-leaf[data-page]");
      if (!leaf) return;
      const j = Number(leaf.dataset.page);
      state.open.add(j);
      state.query = (D.pages[j].title || D.topics[D.pages[j].topic].title).toLowerCase();
      $("search").value = state.query;
      rows();
      $("pages").scrollIntoView();
    });
  }

  // Served by `kbatch serve`: follow a running job, and reload once it ends.
  function live() {
    const box = $("live");
    if (!box || S.status !== "running") return;
    const token = new URLSearchParams(location.search).get("token");
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    const url = `/api/projects/${encodeURIComponent(D.project)}`;
    box.hidden = false;
    const show = (s) => {
      const job = s.job;
      const done = job ? job.items_done : s.batches_done;
      const total = job ? job.items_total : s.batches_total;
      const pct = total ? Math.floor((100 * done) / total) : 0;
      box.dataset.done = String(done);
      box.dataset.total = String(total);
      box.replaceChildren(
        el("span", { text: `${s.status}, ${s.phase}: ${pct}% (${num(done)} of ${num(total)} ${job ? "items" : "units"})` +
          (s.eta_s ? `, about ${Math.ceil(s.eta_s)} s left` : "") }),
        el("progress", { max: String(total || 1), value: String(done) }));
    };
    let polls = 0;
    const poll = () =>
      fetch(url, { headers }).then((r) => r.json()).then((s) => {
        box.dataset.polls = String(++polls);
        if (s.status !== "running") location.reload();
        else { show(s); setTimeout(poll, 1000); }
      }).catch(() => setTimeout(poll, 2000));
    show(S);
    setTimeout(poll, 1000);
  }

  summary();
  facts();
  treemap();
  table();
  charts();
  live();
  document.documentElement.dataset.renderedMs = performance.now().toFixed(0);
  let width = window.innerWidth;
  window.addEventListener("resize", () => {
    if (Math.abs(window.innerWidth - width) > 40) { width = window.innerWidth; treemap(); }
  });
})();
