// A flame graph of Pyroscope's "flamebearer" layout, drawn as positioned
// <div>s: frame names are set with textContent (never parsed as HTML), are
// searchable with the browser's find, and carry a tooltip. Click a bar to
// zoom into it, click the root to zoom out; search highlights matches.
"use strict";

(function () {
  const ROW = 18;

  // Bars of every level: {level, x, total, self, name}.
  function decode(fb) {
    const bars = [];
    fb.levels.forEach((level, depth) => {
      let end = 0;
      for (let i = 0; i + 3 < level.length; i += 4) {
        const x = end + level[i];
        const total = level[i + 1];
        bars.push({ level: depth, x, total, self: level[i + 2], name: fb.names[level[i + 3]] });
        end = x + total;
      }
    });
    return bars;
  }

  function hue(name) {
    let h = 0;
    for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
    return h % 360;
  }

  function formatValue(v, unit) {
    if (unit === "nanoseconds") return (v / 1e9).toFixed(2) + " s";
    if (unit === "bytes") {
      const units = ["B", "KiB", "MiB", "GiB", "TiB"];
      let i = 0;
      while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
      return v.toFixed(i ? 1 : 0) + " " + units[i];
    }
    return String(v) + (unit ? " " + unit : "");
  }

  function render(container, fb, info) {
    const bars = decode(fb);
    const state = { zoom: bars[0] || { x: 0, total: 1, level: 0 }, search: "" };
    const total = fb.numTicks || 1;

    function draw() {
      container.textContent = "";
      const width = container.clientWidth || 1000;
      const z = state.zoom;
      const scale = width / (z.total || 1);
      const needle = state.search.toLowerCase();
      let matched = 0;
      const counted = []; // matched bars whose descendants are already in `matched`
      let depth = 0;
      for (const b of bars) {
        // Above the zoomed bar: its ancestors, drawn full width.
        const ancestor = b.level < z.level && b.x <= z.x && b.x + b.total >= z.x + z.total;
        const inside = b.level >= z.level && b.x >= z.x && b.x + b.total <= z.x + z.total;
        if (!ancestor && !inside) continue;
        const left = ancestor ? 0 : (b.x - z.x) * scale;
        const w = ancestor ? width : b.total * scale;
        if (w < 1) continue;
        const isMatch = needle !== "" && b.name.toLowerCase().includes(needle);
        if (isMatch && !counted.some((c) => c.level < b.level && c.x <= b.x && b.x + b.total <= c.x + c.total)) {
          matched += b.total;
          counted.push(b);
        }
        const el = document.createElement("div");
        el.className = "bar" + (isMatch ? " match" : needle && !isMatch ? " dim" : "");
        el.style.left = left + "px";
        el.style.width = Math.max(w - 1, 1) + "px";
        el.style.top = b.level * ROW + "px";
        el.style.background = b.level === 0 ? "#c7ccd6" : "hsl(" + hue(b.name) + ", 70%, 72%)";
        el.textContent = w > 24 ? b.name : "";
        el.title = b.name + "\n" + formatValue(b.total, fb.unit) + " (" +
          (100 * b.total / total).toFixed(2) + "%), self " + formatValue(b.self, fb.unit);
        el.dataset.name = b.name;
        el.addEventListener("click", () => { state.zoom = b; draw(); });
        container.appendChild(el);
        depth = Math.max(depth, b.level + 1);
      }
      container.style.height = depth * ROW + 2 + "px";
      if (info) {
        info.textContent = "total " + formatValue(total, fb.unit) +
          (needle ? " · \"" + state.search + "\": " + (100 * matched / total).toFixed(2) + "% in view" : "") +
          (z.level > 0 ? " · zoomed into " + z.name + " (click the top bar to zoom out)" : "");
      }
    }

    draw();
    return {
      search(text) { state.search = text; draw(); },
      reset() { state.zoom = bars[0]; draw(); },
      redraw: draw,
    };
  }

  window.FlameGraph = { render, decode, formatValue };
})();
