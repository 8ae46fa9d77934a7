// Reads the relay's /metrics text and sums what the components page shows
// per component: rates between two polls, and a write queue's backlog.
"use strict";

(function () {
  function bytes(n) {
    const units = ["B", "KB", "MB", "GB"];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return (i ? n.toFixed(1) : Math.round(n)) + " " + units[i];
  }

  function rate(n) { return n < 10 ? n.toFixed(2) : n.toFixed(0); }

  function parseMetrics(text) {
    const samples = [];
    const line = /^([a-zA-Z_:][\w:]*)(\{(.*)\})?\s+(\S+)/;
    const label = /(\w+)="((?:[^"\\]|\\.)*)"/g;
    for (const l of text.split("\n")) {
      if (!l || l[0] === "#") continue;
      const m = line.exec(l);
      if (!m) continue;
      const labels = {};
      for (const lm of (m[3] || "").matchAll(label)) labels[lm[1]] = lm[2].replace(/\\(.)/g, "$1");
      samples.push({ name: m[1], labels, value: Number(m[4]) });
    }
    return samples;
  }

  // What the graph shows per component kind: [caption, metric, kind].
  const SUMMARY = {
    "pyroscope.receive_http": [
      ["in", "pyroscope_receive_http_received_profiles", "rate"],
      ["in bytes", "pyroscope_receive_http_received_bytes", "bytes"],
      ["errors", "pyroscope_receive_http_request_duration_seconds_count", "errors"],
    ],
    "pyroscope.relabel": [
      ["in", "pyroscope_relabel_profiles_processed", "rate"],
      ["out", "pyroscope_relabel_profiles_written", "rate"],
      ["dropped", "pyroscope_relabel_profiles_dropped", "rate"],
    ],
    "pyroscope.write": [
      ["out", "pyroscope_write_sent_profiles", "rate"],
      ["out bytes", "pyroscope_write_sent_bytes", "bytes"],
      ["dropped by backend", "pyroscope_write_dropped_profiles", "rate"],
      ["retries", "pyroscope_write_retries", "rate"],
    ],
    "pyroscope.archive": [
      ["stored", "pyroscope_archive_stored_profiles", "rate"],
      ["stored bytes", "pyroscope_archive_stored_bytes", "bytes"],
      ["evicted", "pyroscope_archive_evicted_profiles", "rate"],
    ],
  };

  function sumFor(samples, id, name, kind) {
    let sum = 0;
    for (const s of samples) {
      // Counters appear with or without the _total suffix.
      if ((s.name !== name && s.name !== name + "_total") || s.labels.component_id !== id) continue;
      if (kind === "errors" && /^(2\d\d|ok)$/.test(s.labels.status || "")) continue;
      sum += s.value;
    }
    return sum;
  }

  // Rates between two polls: {id: [[caption, text], ...]}, plus any queue
  // gauges (pending profiles, bytes, oldest age) as they are.
  function summaries(components, now, before, seconds) {
    const out = {};
    for (const c of components) {
      const rows = [];
      for (const [caption, name, kind] of SUMMARY[c.name] || []) {
        const a = sumFor(now, c.localID, name, kind);
        const b = before ? sumFor(before, c.localID, name, kind) : a;
        const per = seconds > 0 ? Math.max(a - b, 0) / seconds : 0;
        rows.push([caption, kind === "bytes" ? bytes(per) + "/s" : rate(per) + "/s"]);
      }
      // A write's queue backlog, per endpoint.
      const backlog = {};
      for (const s of now) {
        const m = /^pyroscope_write_queue_(pending_profiles|pending_bytes|oldest_pending_seconds)$/.exec(s.name);
        if (!m || s.labels.component_id !== c.localID) continue;
        (backlog[s.labels.endpoint || "-"] = backlog[s.labels.endpoint || "-"] || {})[m[1]] = s.value;
      }
      const endpoints = Object.keys(backlog);
      for (const endpoint of endpoints) {
        const b = backlog[endpoint];
        let host = endpoint;
        try { host = new URL(endpoint).host; } catch { /* not a URL: keep it */ }
        rows.push([endpoints.length > 1 ? "backlog " + host : "backlog", (b.pending_profiles || 0) + " profiles · " +
          bytes(b.pending_bytes || 0) + " · oldest " + (b.oldest_pending_seconds || 0).toFixed(0) + " s"]);
      }
      out[c.localID] = rows;
    }
    return out;
  }

  window.RelayMetrics = { bytes, rate, parseMetrics, summaries };
})();
