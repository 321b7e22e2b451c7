// callmetrics report, part 2: the timeline canvas (zoom, legend toggles, idle gaps).
// Shares the scope of report.js (report.py joins them inside one function).

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
  var v0 = 0, v1 = span;                 // the zoomed range, microseconds on the axis
  var fnShown = new Uint8Array(data.names.length).fill(1);
  var colourOff = {};                    // colour slot -> hidden (legend toggles)
  var layers = { failed: true, rings: true };
  function shownCall(k) {
    return fnShown[data.f[k]] && !colourOff[data.c[data.f[k]]];
  }
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
    // The finest set of time ticks whose labels keep 80 px apart (zoomed: computed here).
    var ticks = data.xt[0];
    if (v0 > 0 || v1 < span) {
      ticks = zoomTicks(plotW);
    } else {
      data.xt.forEach(function (option) {
        if (option.length > 1 && plotW / (option.length - 1) >= 80) { ticks = option; }
      });
    }
    ctx.textBaseline = "top";
    ticks.forEach(function (tick, t) {
      var gx = pad.left + (tick[0] - v0) / (v1 - v0) * plotW;
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
    // The idle gaps cut out of the axis (runs of a store minutes apart).
    (data.g || []).forEach(function (cut) {
      if (cut[0] < v0 || cut[0] > v1) { return; }
      var gx = pad.left + (cut[0] - v0) / (v1 - v0) * plotW;
      ctx.strokeStyle = ctx.fillStyle = cssColor("--muted");
      ctx.beginPath(); ctx.moveTo(gx, pad.top); ctx.lineTo(gx, pad.top + plotH); ctx.stroke();
      ctx.textAlign = "left";
      ctx.textBaseline = "top";
      ctx.fillText(cut[1], gx + 3, pad.top + 2);
    });
    ctx.setLineDash([]);
    if (!n) { grid = null; return; }
    var scale = plotW / (v1 - v0);
    for (var j = 0; j < n; j++) {
      var inside = starts[j] >= v0 && starts[j] <= v1 && shownCall(j);
      px[j] = inside ? pad.left + (starts[j] - v0) * scale : -1e6;
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
        if (px[p] < 0) { continue; }
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
    for (var o = 0; o < n && layers.rings; o++) {
      if (outlier[o] && px[o] >= 0) { ctx.moveTo(px[o] + 5, py[o]); ctx.arc(px[o], py[o], 5, 0, 2 * Math.PI); }
    }
    ctx.stroke();
    ctx.strokeStyle = cssColor("--failure");
    ctx.lineWidth = 2;
    ctx.beginPath();
    for (var f = 0; f < n && layers.failed; f++) {
      if (failed[f] >= 0 && px[f] >= 0) {
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
      if (px[k] < 0) { continue; }
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

  // Zoom: drag across the plot to show that span; double-click or the button zooms out.
  var zoomOut = document.getElementById("zoom-out");
  var dragFrom = null;
  function axisAt(clientX) {
    var box = canvas.getBoundingClientRect();
    var plotW = Math.max(box.width - pad.left - pad.right, 10);
    var f = Math.min(Math.max((clientX - box.left - pad.left) / plotW, 0), 1);
    return v0 + f * (v1 - v0);
  }
  canvas.addEventListener("mousedown", function (event) { dragFrom = event.clientX; });
  window.addEventListener("mouseup", function (event) {
    if (dragFrom === null) { return; }
    var a = axisAt(dragFrom), b = axisAt(event.clientX);
    dragFrom = null;
    if (Math.abs(b - a) > (v1 - v0) / 200) {
      v0 = Math.min(a, b);
      v1 = Math.max(a, b);
      zoomOut.hidden = false;
      schedule();
    }
  });
  function resetZoom() { v0 = 0; v1 = span; zoomOut.hidden = true; schedule(); }
  canvas.addEventListener("dblclick", resetZoom);
  zoomOut.addEventListener("click", resetZoom);
  // Ticks for a zoomed range: 1-2-5 steps, labelled with the true time since the first call.
  function zoomTicks(plotW) {
    var wanted = Math.max(Math.floor(plotW / 90), 2);
    var raw = (v1 - v0) / wanted, exp = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 5, 10].map(function (f) { return f * exp; })
      .filter(function (v) { return v >= raw; })[0];
    var out = [];
    for (var t = Math.ceil(v0 / step) * step; t <= v1; t += step) {
      var removed = 0;
      (data.g || []).forEach(function (cut) { if (cut[0] < t) { removed += cut[2]; } });
      out.push([t, formatUs(t + removed)]);
    }
    return out;
  }

  // Legend toggles: a function's colour, the failure crosses, the outlier rings.
  toArray(document.querySelectorAll("#timeline-legend button.toggle")).forEach(function (b) {
    b.addEventListener("click", function () {
      var on = b.getAttribute("aria-pressed") !== "true";
      b.setAttribute("aria-pressed", on ? "true" : "false");
      if (b.hasAttribute("data-layer")) { layers[b.getAttribute("data-layer")] = on; }
      else { colourOff[Number(b.getAttribute("data-colour"))] = !on; }
      schedule();
    });
  });
  // The filter narrows the timeline to the functions it keeps.
  filter.addEventListener("input", function () {
    data.names.forEach(function (name, i) {
      fnShown[i] = matches((name + " " + data.types[i]).toLowerCase()) ? 1 : 0;
    });
    schedule();
  });

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
