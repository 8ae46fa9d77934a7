// The relay's web UI: components, live tap, profiles. Plain JS, no build
// step. Every value from the relay (label values come from agents) is put
// in the page with textContent or setAttribute, never parsed as HTML.
"use strict";

(function () {
  const app = document.getElementById("app");
  let cleanup = null; // stops the current page's timers and streams

  // el("td", {class: "num"}, "text", child, ...): strings become text nodes.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined) continue;
      node.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    }
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    for (const c of children) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    return node;
  }

  async function getJSON(url) {
    const r = await fetch(url);
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.error || r.status + " " + r.statusText);
    return body;
  }

  const { bytes, rate, parseMetrics, summaries } = window.RelayMetrics;

  function labelChips(labels) {
    return el("span", { class: "labels" },
      Object.entries(labels).map(([k, v]) => el("span", {}, k + "=" + JSON.stringify(v))));
  }

  function healthBadge(state) { return el("span", { class: "badge " + state }, state); }

  function componentLink(id) { return el("a", { href: "#/component/" + encodeURIComponent(id) }, id); }

  function profileLinks(id) {
    return [
      el("a", { href: "#/profile/" + encodeURIComponent(id) }, "flame graph"), " · ",
      el("a", { href: "/api/v1/profiles/" + encodeURIComponent(id), download: "" }, "download"),
    ];
  }

  // ---- page: components ----

  function layout(components) {
    const byId = Object.fromEntries(components.map((c) => [c.localID, c]));
    const depth = {};
    const visit = (id, seen) => {
      if (depth[id] !== undefined) return depth[id];
      if (seen.has(id)) return 0;
      seen.add(id);
      const feeders = components.filter((c) => c.dataFlowEdgesTo.includes(id));
      depth[id] = feeders.length ? Math.max(...feeders.map((f) => visit(f.localID, seen) + 1)) : 0;
      return depth[id];
    };
    components.forEach((c) => visit(c.localID, new Set()));
    const columns = [];
    for (const c of components) (columns[depth[c.localID]] = columns[depth[c.localID]] || []).push(c);
    return { byId, columns };
  }

  function drawGraph(components, stats) {
    const W = 300, H = 145, GX = 70, GY = 20;
    const { columns } = layout(components);
    const pos = {};
    columns.forEach((col, i) => col.forEach((c, j) => { pos[c.localID] = { x: 10 + i * (W + GX), y: 10 + j * (H + GY) }; }));
    const width = 20 + columns.length * (W + GX) - GX;
    const height = 20 + Math.max(...columns.map((c) => c.length)) * (H + GY) - GY;
    const root = svg("svg", { class: "graph", width, height, viewBox: `0 0 ${width} ${height}` });
    root.appendChild(svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 8, markerHeight: 8, orient: "auto" },
      svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#8a94a8" }))));
    for (const c of components) {
      for (const to of c.dataFlowEdgesTo) {
        const a = pos[c.localID], b = pos[to];
        if (!a || !b) continue;
        const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
        root.appendChild(svg("path", { class: "edge", d: `M ${x1} ${y1} C ${x1 + GX / 2} ${y1}, ${x2 - GX / 2} ${y2}, ${x2} ${y2}` }));
      }
    }
    for (const c of components) {
      const p = pos[c.localID];
      const g = svg("g", { class: "node " + c.health.state, transform: `translate(${p.x},${p.y})`, "data-id": c.localID });
      const link = svg("a", { href: "#/component/" + encodeURIComponent(c.localID) });
      link.appendChild(svg("rect", { width: W, height: H }));
      link.appendChild(svg("text", { class: "title", x: 10, y: 18 }, c.name));
      link.appendChild(svg("text", { x: 10, y: 34 }, c.label));
      const msg = c.health.state === "healthy" ? "healthy" : c.health.state + ": " + c.health.message;
      link.appendChild(svg("text", { class: "health-" + c.health.state, x: 10, y: 52 }, msg.length > 38 ? msg.slice(0, 37) + "…" : msg));
      (stats[c.localID] || []).slice(0, 5).forEach(([k, v], i) => {
        link.appendChild(svg("text", { x: 10, y: 72 + i * 15 }, k + ": " + v));
      });
      g.appendChild(link);
      root.appendChild(g);
    }
    return root;
  }

  function componentsPage() {
    let previous = null, previousAt = 0;
    const graph = el("div");
    const table = el("div");
    const problem = el("p", { class: "error" });
    app.append(el("h1", {}, "Components"),
      el("p", { class: "muted" }, "The config as a graph, following forward_to. Rates refresh every 3 s."),
      problem, graph, table);
    async function refresh() {
      try {
        const [components, metricsText] = await Promise.all([
          getJSON("/api/v0/web/components"),
          fetch("/metrics").then((r) => r.text()),
        ]);
        const now = parseMetrics(metricsText);
        const at = Date.now();
        const stats = summaries(components, now, previous, previous ? (at - previousAt) / 1000 : 0);
        previous = now; previousAt = at;
        problem.textContent = "";
        graph.replaceChildren(drawGraph(components, stats));
        table.replaceChildren(el("table", { id: "components" },
          el("tr", {}, el("th", {}, "component"), el("th", {}, "health"), el("th", {}, "message"), el("th", {}, "forwards to"), el("th", {}, "live")),
          components.map((c) => el("tr", { "data-id": c.localID },
            el("td", {}, componentLink(c.localID)),
            el("td", {}, healthBadge(c.health.state)),
            el("td", {}, c.health.message),
            el("td", {}, c.dataFlowEdgesTo.join(", ")),
            el("td", {}, (stats[c.localID] || []).map(([k, v]) => k + " " + v).join(" · "))))));
      } catch (e) {
        problem.textContent = "Cannot reach the relay: " + e.message;
      }
    }
    refresh();
    const timer = setInterval(refresh, 3000);
    return () => clearInterval(timer);
  }

  // ---- page: one component ----

  function renderBody(statements) {
    return el("div", {}, statements.map((s) => s.type === "block"
      ? el("div", {}, el("code", {}, s.name + (s.label ? ' "' + s.label + '"' : "") + " {"), el("div", { class: "block" }, renderBody(s.body)), el("code", {}, "}"))
      : el("div", {}, el("code", {}, s.name + " = " + renderValue(s.value)))));
  }

  function renderValue(v) {
    switch (v.type) {
      case "string": return JSON.stringify(v.value);
      case "array": return "[" + v.value.map(renderValue).join(", ") + "]";
      case "object": return "{" + v.value.map((f) => f.key + " = " + renderValue(f.value)).join(", ") + "}";
      case "null": return "null";
      default: return String(v.value);
    }
  }

  function componentPage(id) {
    const body = el("div");
    app.append(el("h1", {}, id), body);
    async function refresh() {
      try {
        const [c, metricsText] = await Promise.all([
          getJSON("/api/v0/web/components/" + encodeURIComponent(id)),
          fetch("/metrics").then((r) => r.text()),
        ]);
        const metrics = parseMetrics(metricsText).filter((s) => s.labels.component_id === id && !s.name.endsWith("_bucket"));
        body.replaceChildren(
          el("p", {}, healthBadge(c.health.state), " ", c.health.message, " ", el("span", { class: "muted" }, "since " + c.health.updatedTime)),
          el("p", {}, el("a", { href: "#/tap?component=" + encodeURIComponent(id) }, "Watch the profiles passing it (live tap)")),
          el("p", {}, "References: ", c.referencesTo.length ? c.referencesTo.map(componentLink) : "none",
            ". Referenced by: ", c.referencedBy.length ? c.referencedBy.map(componentLink) : "none", "."),
          el("h2", {}, "Arguments"), el("div", { class: "args" }, c.arguments && c.arguments.length ? renderBody(c.arguments) : el("span", { class: "muted" }, "all defaults")),
          el("h2", {}, "Exports"), el("div", { class: "args" }, c.exports && c.exports.length ? renderBody(c.exports) : el("span", { class: "muted" }, "none")),
          el("h2", {}, "Recent errors"),
          (c.recentErrors || []).length
            ? el("table", { id: "errors" }, el("tr", {}, el("th", {}, "time"), el("th", {}, "error")),
              c.recentErrors.slice().reverse().map((e) => el("tr", {}, el("td", { class: "mono" }, e.time), el("td", { class: "error" }, e.message))))
            : el("p", { class: "muted" }, "none"),
          el("h2", {}, "Metrics"),
          el("table", { id: "metrics" }, el("tr", {}, el("th", {}, "metric"), el("th", {}, "labels"), el("th", {}, "value")),
            metrics.map((s) => {
              const { component_id, component_path, ...rest } = s.labels;
              return el("tr", {}, el("td", { class: "mono" }, s.name), el("td", {}, labelChips(rest)), el("td", { class: "num" }, String(s.value)));
            })));
      } catch (e) {
        body.replaceChildren(el("p", { class: "error" }, e.message));
      }
    }
    refresh();
    const timer = setInterval(refresh, 3000);
    return () => clearInterval(timer);
  }

  // ---- page: live tap ----

  // Reads Server-Sent Events from a fetch, so that a 400 (a bad matcher)
  // shows its message.
  async function readEvents(url, signal, onEvent) {
    const r = await fetch(url, { signal });
    if (!r.ok) {
      const body = await r.json().catch(() => ({}));
      throw new Error(body.error || r.status + " " + r.statusText);
    }
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let type = "message", data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) type = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        if (data) onEvent(type, JSON.parse(data));
      }
    }
  }

  function tapPage(params) {
    const MAX_ROWS = 500;
    const select = el("select", { id: "tap-component" });
    const matchInput = el("input", { type: "text", id: "tap-match", placeholder: '{service_name="checkout", env=~"prod.*"}', value: params.get("match") || "" });
    const pause = el("button", { id: "tap-pause", type: "button" }, "Pause");
    const status = el("span", { id: "tap-status", class: "muted" });
    const problem = el("p", { class: "error", id: "tap-error" });
    const rows = el("tbody", { id: "tap-rows" });
    let abort = null, paused = false, held = [], seen = 0, droppedByRelay = 0;

    function showStatus() {
      status.textContent = (abort ? (paused ? "paused" : "watching") : "stopped") + " · " + seen + " profiles seen" +
        (held.length ? " · " + held.length + " held while paused" : "") +
        (droppedByRelay ? " · " + droppedByRelay + " not shown: this page fell behind the relay" : "");
    }

    function addRow(e) {
      const outcome = e.outcome === "ok" ? "ok" : "error";
      const detail = el("div", { class: "notes" },
        e.error ? el("div", { class: "error" }, e.error.code + (e.error.httpStatus ? " " + e.error.httpStatus : "") + ": " + e.error.message) : null,
        e.notes.map((n) => el("div", {}, n)));
      rows.prepend(el("tr", { class: "tap-row" },
        el("td", { class: "mono" }, e.time.slice(11, 23)),
        el("td", {}, e.protocol),
        el("td", { class: "service" }, e.labels.service_name || ""),
        el("td", {}, labelChips(e.labels)),
        el("td", {}, e.profileType),
        el("td", { class: "num" }, bytes(e.size)),
        el("td", {}, el("span", { class: "badge " + outcome }, outcome), detail),
        el("td", {}, e.archived.map((id) => el("div", {}, id + ": ", profileLinks(id))))));
      while (rows.children.length > MAX_ROWS) rows.lastChild.remove();
    }

    function stop() {
      if (abort) abort.abort();
      abort = null;
      showStatus();
    }

    function start() {
      stop();
      problem.textContent = "";
      const component = select.value;
      const match = matchInput.value.trim();
      history.replaceState(null, "", "#/tap?component=" + encodeURIComponent(component) + (match ? "&match=" + encodeURIComponent(match) : ""));
      const controller = new AbortController();
      abort = controller;
      const url = "/api/v1/tap?component=" + encodeURIComponent(component) + "&match=" + encodeURIComponent(match);
      readEvents(url, controller.signal, (type, data) => {
        if (type === "stats") droppedByRelay = data.dropped;
        if (type === "profile") {
          seen++;
          if (paused) { held.push(data); if (held.length > MAX_ROWS) held.shift(); } else addRow(data);
        }
        showStatus();
      }).catch((e) => {
        if (controller.signal.aborted) return;
        problem.textContent = e.message;
        abort = null;
        showStatus();
      });
      showStatus();
    }

    pause.addEventListener("click", () => {
      paused = !paused;
      pause.textContent = paused ? "Resume" : "Pause";
      if (!paused) { held.forEach(addRow); held = []; }
      showStatus();
    });

    app.append(el("h1", {}, "Live tap"),
      el("p", { class: "muted" }, "The profiles passing a component, as they pass. Watching never slows the relay: what this page cannot keep up with is counted, not waited for."),
      el("div", { class: "toolbar" }, "Component", select, "Match", matchInput,
        el("button", { type: "button", id: "tap-start", onclick: start }, "Watch"), pause,
        el("button", { type: "button", onclick: () => { rows.textContent = ""; } }, "Clear"), status),
      problem,
      el("table", {}, el("thead", {}, el("tr", {}, ["time", "protocol", "service_name", "labels", "type", "size", "outcome", "archived"].map((h) => el("th", {}, h)))), rows));
    matchInput.addEventListener("keydown", (e) => { if (e.key === "Enter") start(); });

    getJSON("/api/v0/web/components").then((components) => {
      for (const c of components) select.appendChild(el("option", { value: c.localID }, c.localID));
      const wanted = params.get("component");
      if (wanted) select.value = wanted;
      start();
    }).catch((e) => { problem.textContent = e.message; });
    return stop;
  }

  // ---- page: profiles ----

  function profilesPage(params) {
    const service = el("input", { type: "text", id: "filter-service", placeholder: "service", value: params.get("service") || "" });
    const labels = el("input", { type: "text", id: "filter-labels", placeholder: "env=prod, region=eu", value: params.get("labels") || "" });
    const since = el("input", { type: "text", id: "filter-since", placeholder: "since, e.g. 1h", value: params.get("since") || "" });
    const body = el("div");
    async function load() {
      const q = new URLSearchParams();
      if (service.value.trim()) q.set("service", service.value.trim());
      if (since.value.trim()) q.set("since", since.value.trim());
      for (const pair of labels.value.split(",").map((s) => s.trim()).filter(Boolean)) q.append("label", pair);
      q.set("limit", "200");
      try {
        const { profiles } = await getJSON("/api/v1/profiles?" + q);
        body.replaceChildren(profiles.length === 0 ? el("p", { class: "muted" }, "No archived profiles match.") :
          el("table", { id: "profiles" },
            el("tr", {}, ["time", "id", "service", "type", "labels", "size", ""].map((h) => el("th", {}, h))),
            profiles.map((p) => el("tr", {},
              el("td", { class: "mono", title: p.time }, p.time.replace("T", " ").slice(0, 19)), el("td", {}, p.id), el("td", {}, p.service), el("td", {}, p.profile_type),
              el("td", {}, labelChips(p.labels)), el("td", { class: "num" }, bytes(p.size)), el("td", {}, profileLinks(p.id))))));
      } catch (e) {
        body.replaceChildren(el("p", { class: "error" }, e.message));
      }
    }
    app.append(el("h1", {}, "Profiles"),
      el("p", { class: "muted" }, "What the pyroscope.archive components hold, newest first."),
      el("div", { class: "toolbar" }, service, labels, since, el("button", { type: "button", onclick: load }, "Filter")), body);
    for (const input of [service, labels, since]) input.addEventListener("keydown", (e) => { if (e.key === "Enter") load(); });
    load();
    return null;
  }

  function profilePage(id, params) {
    const info = el("div", { class: "flame-info", id: "flame-info" });
    const container = el("div", { class: "flame", id: "flame" });
    const types = el("select", { id: "sample-type" });
    const search = el("input", { type: "text", id: "flame-search", placeholder: "search frames" });
    const problem = el("p", { class: "error" });
    let graph = null;
    app.append(el("h1", {}, "Profile " + id),
      el("div", { class: "toolbar" }, "Sample type", types, search,
        el("button", { type: "button", onclick: () => graph && graph.reset() }, "Reset zoom"),
        el("a", { href: "/api/v1/profiles/" + encodeURIComponent(id), download: "" }, "Download the original"),
        el("a", { href: "#/profiles" }, "All profiles")),
      problem, info, container);
    search.addEventListener("input", () => graph && graph.search(search.value));
    types.addEventListener("change", () => location.replace("#/profile/" + encodeURIComponent(id) + "?sample_type=" + encodeURIComponent(types.value)));
    const q = params.get("sample_type") ? "?sample_type=" + encodeURIComponent(params.get("sample_type")) : "";
    getJSON("/api/v1/profiles/" + encodeURIComponent(id) + "/flamegraph" + q).then((fb) => {
      for (const t of fb.sampleTypes) types.appendChild(el("option", { value: t.type }, t.type + " (" + t.unit + ")"));
      types.value = fb.sampleType;
      graph = window.FlameGraph.render(container, fb, info);
    }).catch((e) => { problem.textContent = e.message; });
    const onResize = () => graph && graph.redraw();
    window.addEventListener("resize", onResize);
    return () => window.removeEventListener("resize", onResize);
  }

  // ---- routing: #/page/arg?query ----

  function route() {
    if (cleanup) cleanup();
    cleanup = null;
    app.textContent = "";
    const hash = location.hash.replace(/^#/, "") || "/components";
    const [path, query] = hash.split("?");
    const params = new URLSearchParams(query || "");
    const [, page, arg] = path.split("/").map(decodeURIComponent);
    for (const a of document.querySelectorAll("header nav a")) {
      const p = a.dataset.page;
      a.classList.toggle("active", p === page || (p === "components" && page === "component") || (p === "profiles" && page === "profile"));
    }
    if (page === "component" && arg) cleanup = componentPage(arg);
    else if (page === "tap") cleanup = tapPage(params);
    else if (page === "profiles") cleanup = profilesPage(params);
    else if (page === "profile" && arg) cleanup = profilePage(arg, params);
    else cleanup = componentsPage();
  }

  window.addEventListener("hashchange", route);
  route();
})();
