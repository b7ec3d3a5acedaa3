// linkstack's view: the constellation on an equirectangular world map, drawn on a
// canvas from the daemon's server-sent events (meta once, then snapshots). Our own
// small script, no library: see DESIGN.md. The canvas holds no DOM per satellite, so
// what was drawn is counted on #map's data-* attributes (the browser test reads them).
"use strict";
(() => {
  const map = document.getElementById("map");
  const ctx = map.getContext("2d");
  const W = map.width;
  const H = map.height;
  const X = (lon) => ((lon + 180) / 360) * W;
  const Y = (lat) => ((90 - lat) / 180) * H;
  const SHADOW = ["#ffd34d", "#e8913a", "#5d6fa3"];
  const base = document.createElement("canvas");
  base.width = W;
  base.height = H;
  let land = null;
  let meta = null;
  let snap = null;
  const $ = (id) => document.getElementById(id);

  function drawBase() {
    const b = base.getContext("2d");
    b.fillStyle = "#0b2a44";
    b.fillRect(0, 0, W, H);
    b.strokeStyle = "#1d3f5c";
    b.lineWidth = 1;
    for (let lon = -180; lon <= 180; lon += 30) {
      b.beginPath(); b.moveTo(X(lon), 0); b.lineTo(X(lon), H); b.stroke();
    }
    for (let lat = -90; lat <= 90; lat += 30) {
      b.beginPath(); b.moveTo(0, Y(lat)); b.lineTo(W, Y(lat)); b.stroke();
    }
    if (!land) return;
    b.fillStyle = "#2b3d2f";
    b.strokeStyle = "#5b7d60";
    b.beginPath();
    for (const ring of land.rings) {
      // rings are unwrapped past +-180 (land.json): drawn again a world over
      let lo = Infinity;
      let hi = -Infinity;
      for (let i = 0; i < ring.length; i += 2) { lo = Math.min(lo, ring[i]); hi = Math.max(hi, ring[i]); }
      const shifts = [0];
      if (hi > 180) shifts.push(-360);
      if (lo < -180) shifts.push(360);
      for (const dx of shifts) {
        b.moveTo(X(ring[0] + dx), Y(ring[1]));
        for (let i = 2; i < ring.length; i += 2) b.lineTo(X(ring[i] + dx), Y(ring[i + 1]));
        b.closePath();
      }
    }
    b.fill("evenodd");
    b.stroke();
  }

  // A line through lon/lat points, broken where it crosses the antimeridian.
  function polyline(lats, lons) {
    let last = null;
    ctx.beginPath();
    for (let i = 0; i < lats.length; i++) {
      if (lats[i] === null || lons[i] === null) { last = null; continue; }
      if (last === null || Math.abs(lons[i] - last) > 180) ctx.moveTo(X(lons[i]), Y(lats[i]));
      else ctx.lineTo(X(lons[i]), Y(lats[i]));
      last = lons[i];
    }
    ctx.stroke();
  }

  // The footprint: points at central angle r_deg around (lat, lon) on the sphere.
  function footprint(lat, lon, rDeg) {
    const d = (rDeg * Math.PI) / 180;
    const p1 = (lat * Math.PI) / 180;
    const lats = [];
    const lons = [];
    for (let b = 0; b <= 360; b += 10) {
      const th = (b * Math.PI) / 180;
      const p2 = Math.asin(Math.sin(p1) * Math.cos(d) + Math.cos(p1) * Math.sin(d) * Math.cos(th));
      const dl = Math.atan2(Math.sin(th) * Math.sin(d) * Math.cos(p1),
        Math.cos(d) - Math.sin(p1) * Math.sin(p2));
      lats.push((p2 * 180) / Math.PI);
      lons.push(((((lon + (dl * 180) / Math.PI) + 540) % 360) - 180));
    }
    polyline(lats, lons);
  }

  function draw() {
    ctx.drawImage(base, 0, 0);
    if (!meta || !snap) return;
    const busy = new Set();
    for (const q of snap.queries) for (const name of q.on) busy.add(meta.satellites.indexOf(name));
    const inView = new Set(snap.rf.map((l) => l[0]));
    const few = snap.lat.length <= 100;
    ctx.lineWidth = 1;
    ctx.strokeStyle = "#7fa7c955";
    for (const [, lats, lons] of snap.tracks) polyline(lats, lons);
    ctx.strokeStyle = "#9fd0ff66";
    snap.lat.forEach((lat, i) => {
      if (lat !== null && (few || inView.has(i))) footprint(lat, snap.lon[i], snap.fp_deg[i]);
    });
    let laser = 0;
    ctx.strokeStyle = "#d070ff";
    for (const [a, b] of snap.laser) {
      if (snap.lat[a] === null || snap.lat[b] === null) continue;
      polyline([snap.lat[a], snap.lat[b]], [snap.lon[a], snap.lon[b]]);
      laser += 1;
    }
    let rf = 0;
    ctx.strokeStyle = "#58e07a";
    ctx.lineWidth = 1.5;
    for (const l of snap.rf) {
      const st = meta.stations[l[1]];
      if (!st || snap.lat[l[0]] === null) continue;
      polyline([snap.lat[l[0]], st[1]], [snap.lon[l[0]], st[2]]);
      rf += 1;
    }
    let sats = 0;
    snap.lat.forEach((lat, i) => {
      if (lat === null) return;
      const s = snap.shadow[i];
      const hot = busy.has(i);
      ctx.fillStyle = hot ? "#ff4d6a" : s === null ? "#e6edf3" : SHADOW[s];
      const r = hot ? 4 : few ? 3 : 1.6;
      ctx.beginPath();
      ctx.arc(X(snap.lon[i]), Y(lat), r, 0, 2 * Math.PI);
      ctx.fill();
      sats += 1;
    });
    ctx.fillStyle = "#4dd2ff";
    for (const [, lat, lon] of meta.stations) ctx.fillRect(X(lon) - 3, Y(lat) - 3, 6, 6);
    Object.assign(map.dataset, {
      satsDrawn: sats, rfDrawn: rf, laserDrawn: laser, stationsDrawn: meta.stations.length,
    });
  }

  function item(id, text) {
    const li = document.createElement("li");
    li.dataset.id = id;
    li.textContent = text;
    return li;
  }

  function lists() {
    const inFlight = snap.in_flight_count ?? snap.queries.length;
    $("in-flight-count").textContent = inFlight;
    $("in-flight").replaceChildren(...snap.queries.map((q) =>
      item(q.id, `${q.id}  ${q.age_s.toFixed(1)} s  ${q.leg}`)));
    $("answered").replaceChildren(...snap.recent.map((q) =>
      item(q.id, `${q.id}  ${q.total_s.toFixed(2)} s  ${q.satellite || ""}`)));
    const inView = new Set(snap.rf.map((l) => l[0])).size;
    $("counts").textContent = `${snap.lat.length} satellites, ${inView} in view, ` +
      `${snap.laser.length} laser links up, ${inFlight} queries in flight`;
    $("utc").textContent = snap.utc || "";
  }

  function quantile(sorted, q) {
    const i = Math.min(sorted.length - 1, Math.floor(q * sorted.length));
    return sorted[i];
  }

  // Round trips on log-spaced bins, 0.1 s to 10,000 s; the 120 s reference marked.
  function histogram() {
    const c = $("roundtrips");
    const g = c.getContext("2d");
    const values = snap.round_trips_s.filter((v) => v > 0);
    const lo = -1;
    const hi = 4;
    const n = 25;
    const bins = new Array(n).fill(0);
    for (const v of values) {
      const k = Math.floor(((Math.log10(v) - lo) / (hi - lo)) * n);
      bins[Math.max(0, Math.min(n - 1, k))] += 1;
    }
    const top = Math.max(1, ...bins);
    const px = (s) => ((Math.log10(s) - lo) / (hi - lo)) * c.width;
    g.fillStyle = "#0b1621";
    g.fillRect(0, 0, c.width, c.height);
    g.fillStyle = "#58a6e0";
    const bw = c.width / n;
    let bars = 0;
    bins.forEach((count, k) => {
      if (!count) return;
      const h = ((c.height - 30) * count) / top;
      g.fillRect(k * bw + 1, c.height - 18 - h, bw - 2, h);
      bars += 1;
    });
    g.fillStyle = "#9fb3c8";
    g.font = "10px sans-serif";
    for (const s of [0.1, 1, 10, 100, 1000]) g.fillText(`${s} s`, Math.max(0, px(s) - 8), c.height - 4);
    g.strokeStyle = "#ff4d6a";
    g.beginPath(); g.moveTo(px(120), 0); g.lineTo(px(120), c.height - 16); g.stroke();
    g.fillStyle = "#ff4d6a";
    g.fillText("120 s", px(120) + 3, 10);
    c.dataset.bars = bars;
    const sorted = [...values].sort((a, b) => a - b);
    $("rt-summary").textContent = sorted.length
      ? `n ${sorted.length}, p50 ${quantile(sorted, 0.5).toFixed(1)} s, ` +
        `p95 ${quantile(sorted, 0.95).toFixed(1)} s`
      : "none yet";
  }

  // Hover: the nearest satellite within 10 px, with its RF link's numbers if it has one.
  map.addEventListener("mousemove", (ev) => {
    const tip = $("tip");
    if (!snap) return;
    const rect = map.getBoundingClientRect();
    const mx = ((ev.clientX - rect.left) * W) / rect.width;
    const my = ((ev.clientY - rect.top) * H) / rect.height;
    let best = -1;
    let bestD = 100;
    snap.lat.forEach((lat, i) => {
      if (lat === null) return;
      const d = (X(snap.lon[i]) - mx) ** 2 + (Y(lat) - my) ** 2;
      if (d < bestD) { best = i; bestD = d; }
    });
    if (best < 0) { tip.hidden = true; return; }
    const lines = [`${meta.satellites[best]}  ${snap.lat[best]}, ${snap.lon[best]} deg, ` +
      `${snap.alt_km[best]} km`];
    const link = snap.rf.find((l) => l[0] === best);
    if (link) {
      lines.push(`RF to ${meta.stations[link[1]][0]}: elevation ${link[2]} deg, ${link[7]} km`);
      lines.push(`Eb/N0 up ${link[3]} dB, down ${link[4]} dB`);
      lines.push(`Doppler up ${(link[5] / 1e3).toFixed(1)} kHz, down ${(link[6] / 1e3).toFixed(1)} kHz`);
    } else lines.push("no station in view");
    const lasers = snap.laser.filter((p) => p[0] === best || p[1] === best).length;
    if (lasers) lines.push(`${lasers} laser links up`);
    const s = snap.shadow[best];
    if (s !== null) lines.push(["sunlit", "penumbra", "eclipsed"][s]);
    tip.textContent = lines.join("\n");
    tip.style.left = `${ev.clientX - rect.left + 12}px`;
    tip.style.top = `${ev.clientY - rect.top + 12}px`;
    tip.hidden = false;
  });
  map.addEventListener("mouseleave", () => { $("tip").hidden = true; });

  fetch("/view/assets/land.json")
    .then((r) => r.json())
    .then((d) => { land = d; drawBase(); draw(); });
  drawBase();

  const events = new EventSource("/view/events");
  events.addEventListener("meta", (e) => {
    meta = JSON.parse(e.data);
    $("scenario").textContent = meta.scenario;
    const badge = $("mode");
    badge.textContent = meta.mode === "live" ? "live" : `finished run: ${meta.source || ""}`;
    badge.className = meta.mode === "live" ? "badge live" : "badge";
  });
  events.addEventListener("snapshot", (e) => {
    snap = JSON.parse(e.data);
    map.dataset.snapshots = Number(map.dataset.snapshots) + 1;
    draw();
    lists();
    histogram();
  });
  events.onerror = () => {
    const badge = $("mode");
    badge.textContent = "reconnecting";
    badge.className = "badge lost";
  };
  window.linkstackView = { get meta() { return meta; }, get snapshot() { return snap; } };
})();
