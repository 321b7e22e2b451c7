// callmetrics report: sortable, filterable function table, tooltips, and the timeline canvas.
// Written for this report; no library, no network.
(function () {
  "use strict";

  // ------------------------------------------------------------------ tooltip
  var tip = document.getElementById("tip");
  function showTip(text, x, y) {
    tip.textContent = text;
    tip.hidden = false;
    var w = tip.offsetWidth, h = tip.offsetHeight;
    var left = x + 14, top = y + 14;
    if (left + w > window.innerWidth - 4) { left = Math.max(4, x - w - 14); }
    if (top + h > window.innerHeight - 4) { top = Math.max(4, y - h - 14); }
    tip.style.left = left + "px";
    tip.style.top = top + "px";
  }
  function hideTip() { tip.hidden = true; }
  document.addEventListener("mousemove", function (event) {
    if (event.target === canvas) { return; }
    var el = event.target.closest ? event.target.closest("[data-tip]") : null;
    if (el) { showTip(el.getAttribute("data-tip"), event.clientX, event.clientY); }
    else { hideTip(); }
  });

  // ----------------------------------------------------------- function table
  var table = document.getElementById("function-table");
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  table.tHead.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-col]");
    if (!button) { return; }
    var th = button.parentNode;
    var col = Number(button.getAttribute("data-col"));
    var numeric = button.getAttribute("data-kind") === "num";
    // First click: biggest numbers first, names A to Z; the next click reverses.
    var current = th.getAttribute("aria-sort");
    var descending = current === "none" ? numeric : current === "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) {
      cell.setAttribute("aria-sort", "none");
    });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    var keyed = rows.map(function (row, index) {
      var raw = row.cells[col].getAttribute("data-v");
      return { row: row, key: numeric ? parseFloat(raw) : raw, index: index };
    });
    keyed.sort(function (a, b) {
      var order = a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
      return (descending ? -order : order) || a.index - b.index;
    });
    var fragment = document.createDocumentFragment();
    keyed.forEach(function (item) { fragment.appendChild(item.row); });
    body.appendChild(fragment);
    rows = keyed.map(function (item) { return item.row; });
  });

  var filter = document.getElementById("filter");
  var filterCount = document.getElementById("filter-count");
  var haystacks = rows.map(function (row) {
    return (row.cells[0].textContent + " " + row.cells[1].textContent).toLowerCase();
  });
  var rowIndex = new Map(rows.map(function (row, i) { return [row, i]; }));
  filter.addEventListener("input", function () {
    var words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0;
    rows.forEach(function (row) {
      var text = haystacks[rowIndex.get(row)];
      var match = words.every(function (word) { return text.indexOf(word) !== -1; });
      row.hidden = !match;
      if (match) { shown += 1; }
    });
    filterCount.textContent = shown + " of " + rows.length + " functions";
  });

  // ------------------------------------------------------------- scroll hints
  // A wide table scrolls inside its frame; the hint above it says so only when it does.
  var frames = Array.prototype.slice.call(document.querySelectorAll(".scroll"));
  function markScrolling() {
    frames.forEach(function (frame) {
      var hint = frame.previousElementSibling;
      if (hint && hint.classList.contains("scroll-hint")) {
        hint.classList.toggle("shown", frame.scrollWidth > frame.clientWidth + 1);
      }
    });
  }

  // ----------------------------------------------------------------- timeline
  var data = JSON.parse(document.getElementById("timeline-data").textContent);
  var canvas = document.getElementById("timeline");
  var wrap = document.getElementById("timeline-wrap");
  var ring = document.getElementById("timeline-ring");
  var n = data.s.length;
  var starts = new Float64Array(n);    // microseconds since the first retained call
  var durations = new Float64Array(n); // microseconds
  var failed = new Int32Array(n).fill(-1);
  var messageOf = new Int32Array(n).fill(-1);
  var outlier = new Uint8Array(n);
  var acc = 0;
  for (var i = 0; i < n; i++) {
    acc += data.s[i];
    starts[i] = acc;
    durations[i] = data.d[i];
  }
  data.x.forEach(function (entry) {
    failed[entry[0]] = entry[1];
    if (entry.length > 2) { messageOf[entry[0]] = entry[2]; }
  });
  data.o.forEach(function (index) { outlier[index] = 1; });
  var lowExp = data.y[0][0], highExp = data.y[data.y.length - 1][0];
  var span = Math.max(n ? starts[n - 1] : 0, 1);
  var pad = { left: 64, right: 14, top: 12, bottom: 42 };
  var px = new Float32Array(n), py = new Float32Array(n);
  var grid = null, gridCols = 0, CELL = 8;

  // The same rules as callmetrics._format.duration: three significant digits.
  function formatUs(us) {
    var s = us / 1e6;
    if (!(s > 0)) { return "0 s"; }
    if (s >= 3600) {
      var h = Math.floor(Math.round(s) / 3600);
      return h + "h " + String(Math.floor((Math.round(s) % 3600) / 60)).padStart(2, "0") + "m";
    }
    if (s >= 60) {
      return Math.floor(Math.round(s) / 60) + "m " + String(Math.round(s) % 60).padStart(2, "0") + "s";
    }
    var units = [[1, "s"], [1e-3, "ms"], [1e-6, "\u00b5s"], [1e-9, "ns"]];
    for (var k = 0; k < units.length; k++) {
      if (s >= units[k][0] * 0.9995 || k === units.length - 1) {
        var v = s / units[k][0];
        return v.toFixed(v >= 99.95 ? 0 : v >= 9.995 ? 1 : 2) + " " + units[k][1];
      }
    }
    return "0 s";
  }
  function cssColor(name) {
    return getComputedStyle(document.body).getPropertyValue(name).trim();
  }
  // Successful calls by colour slot (0: grey, 1 + k: colour k), drawn grey first, then
  // the busiest function first so that rarer ones stay visible on top.
  var byColour = [];
  for (var slot = 0; slot < 9; slot++) { byColour.push([]); }
  for (var q = 0; q < n; q++) {
    if (failed[q] < 0) { byColour[data.c[data.f[q]] + 1].push(q); }
  }
  var DOT = 2.2; // radius of a call's disc, as the legend draws it
  function yOf(us, plotH) {
    var v = us > 0 ? us : data.floor;
    return pad.top + plotH - (Math.log10(v) - lowExp) / (highExp - lowExp) * plotH;
  }

  function draw() {
    var width = wrap.clientWidth, height = wrap.clientHeight;
    var ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    var ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    var plotW = Math.max(width - pad.left - pad.right, 10);
    var plotH = Math.max(height - pad.top - pad.bottom, 10);
    ctx.font = "12px system-ui, sans-serif";
    ctx.lineWidth = 1;
    ctx.strokeStyle = cssColor("--line");
    ctx.fillStyle = cssColor("--muted");
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    data.y.forEach(function (tick) {
      var gy = yOf(Math.pow(10, tick[0]), plotH);
      ctx.beginPath(); ctx.moveTo(pad.left, gy); ctx.lineTo(pad.left + plotW, gy); ctx.stroke();
      ctx.fillText(tick[1], pad.left - 6, gy);
    });
    // The finest set of time ticks whose labels keep 80 px apart.
    var ticks = data.xt[0];
    data.xt.forEach(function (option) {
      if (option.length > 1 && plotW / (option.length - 1) >= 80) { ticks = option; }
    });
    ctx.textBaseline = "top";
    ticks.forEach(function (tick, t) {
      var gx = pad.left + tick[0] / span * plotW;
      ctx.beginPath(); ctx.moveTo(gx, pad.top); ctx.lineTo(gx, pad.top + plotH); ctx.stroke();
      ctx.textAlign = t === 0 ? "left" : gx > pad.left + plotW - 30 ? "right" : "center";
      ctx.fillText(tick[1], gx, pad.top + plotH + 5);
    });
    ctx.textAlign = "center";
    ctx.fillText("time since the first retained call", pad.left + plotW / 2, pad.top + plotH + 23);
    // The medium and slow thresholds, where they fall inside the plot.
    ctx.setLineDash([5, 4]);
    ctx.textAlign = "right";
    ctx.textBaseline = "bottom";
    data.lines.forEach(function (line, k) {
      var exp = Math.log10(line[0]);
      if (exp < lowExp || exp > highExp) { return; }
      var gy = yOf(line[0], plotH);
      ctx.strokeStyle = ctx.fillStyle = cssColor(k === 0 ? "--medium" : "--slow");
      ctx.beginPath(); ctx.moveTo(pad.left, gy); ctx.lineTo(pad.left + plotW, gy); ctx.stroke();
      ctx.fillText(line[1], pad.left + plotW - 4, gy - 2);
    });
    ctx.setLineDash([]);
    if (!n) { grid = null; return; }
    for (var j = 0; j < n; j++) {
      px[j] = pad.left + starts[j] / span * plotW;
      py[j] = yOf(durations[j], plotH);
    }
    // One colour at a time, one dot per pixel and colour: 100,000 calls mostly overlap.
    var seen = new Int16Array((Math.ceil(width) + 2) * (Math.ceil(height) + 2)).fill(-2);
    var stride = Math.ceil(width) + 2;
    byColour.forEach(function (members, slot) {
      var colour = slot - 1;
      ctx.fillStyle = cssColor(colour >= 0 ? "--c" + colour : "--grey");
      ctx.beginPath();
      for (var m = 0; m < members.length; m++) {
        var p = members[m];
        var cell = Math.round(py[p]) * stride + Math.round(px[p]);
        if (seen[cell] === colour) { continue; }
        seen[cell] = colour;
        ctx.moveTo(px[p] + DOT, py[p]);
        ctx.arc(px[p], py[p], DOT, 0, 2 * Math.PI);
      }
      ctx.fill();
    });
    ctx.strokeStyle = cssColor("--fg");
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    for (var o = 0; o < n; o++) {
      if (outlier[o]) { ctx.moveTo(px[o] + 5, py[o]); ctx.arc(px[o], py[o], 5, 0, 2 * Math.PI); }
    }
    ctx.stroke();
    ctx.strokeStyle = cssColor("--failure");
    ctx.lineWidth = 2;
    ctx.beginPath();
    for (var f = 0; f < n; f++) {
      if (failed[f] >= 0) {
        ctx.moveTo(px[f] - 3.5, py[f] - 3.5); ctx.lineTo(px[f] + 3.5, py[f] + 3.5);
        ctx.moveTo(px[f] + 3.5, py[f] - 3.5); ctx.lineTo(px[f] - 3.5, py[f] + 3.5);
      }
    }
    ctx.stroke();
    grid = null; // rebuilt on the next hover
    ring.hidden = true;
  }

  function buildGrid() {
    gridCols = Math.ceil(wrap.clientWidth / CELL) + 1;
    grid = new Map();
    for (var k = 0; k < n; k++) {
      var key = Math.floor(py[k] / CELL) * gridCols + Math.floor(px[k] / CELL);
      var bucket = grid.get(key);
      if (bucket) { bucket.push(k); } else { grid.set(key, [k]); }
    }
  }

  function nearest(x, y) {
    if (!grid) { buildGrid(); }
    var cx = Math.floor(x / CELL), cy = Math.floor(y / CELL), best = -1, bestD = 100;
    for (var gy = cy - 1; gy <= cy + 1; gy++) {
      for (var gx = cx - 1; gx <= cx + 1; gx++) {
        var bucket = grid.get(gy * gridCols + gx);
        if (!bucket) { continue; }
        for (var b = 0; b < bucket.length; b++) {
          var k = bucket[b], dx = px[k] - x, dy = py[k] - y, dist = dx * dx + dy * dy;
          // Failures win ties: they are what people hover for.
          if (dist < bestD || (dist === bestD && failed[k] >= 0)) { best = k; bestD = dist; }
        }
      }
    }
    return best;
  }

  canvas.addEventListener("mousemove", function (event) {
    var box = canvas.getBoundingClientRect();
    var k = n ? nearest(event.clientX - box.left, event.clientY - box.top) : -1;
    if (k < 0) { ring.hidden = true; hideTip(); return; }
    ring.style.left = px[k] + "px";
    ring.style.top = py[k] + "px";
    ring.hidden = false;
    var f = data.f[k];
    var lines = [data.names[f] + " [" + data.types[f] + "]",
      "started " + formatUs(starts[k]) + " after the first retained call",
      "took " + formatUs(durations[k]) + (outlier[k] ? " (above its p99)" : "")];
    if (failed[k] < 0) {
      lines.push("succeeded");
    } else {
      var why = messageOf[k] >= 0 ? ": " + data.messages[messageOf[k]] : "";
      lines.push("failed: " + data.errors[failed[k]] + why);
    }
    showTip(lines.join("\n"), event.clientX, event.clientY);
  });
  canvas.addEventListener("mouseleave", function () { ring.hidden = true; hideTip(); });

  var pending = false;
  function schedule() {
    if (pending) { return; }
    pending = true;
    window.requestAnimationFrame(function () { pending = false; draw(); markScrolling(); });
  }
  window.addEventListener("resize", schedule);
  // The page may be laid out after this script runs (a report inside a notebook's frame
  // starts at zero width): redraw whenever the timeline's box changes size.
  if (window.ResizeObserver) { new ResizeObserver(schedule).observe(wrap); }
  if (window.matchMedia) {
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", schedule);
  }
  draw();
  markScrolling();
}());
