// The event page's drawing over the snapshot and the clip (issue 17): the zones the event
// was judged with (its own zone highlighted, the others faint) and the person's box with
// its label, drawn in the browser from the JSON block #event-overlay-data so labels follow
// the page's language. Over the clip the box follows the video's time (the track box
// nearest in time). "显示标注 / 原图" hides the drawing; without this script the page shows
// the plain picture and the plain clip.
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  //: A track box further than this from the video's time is not drawn (the person is gone).
  var MAX_GAP_S = 1.0;
  //: Label size on screen, in CSS pixels, whatever the frame's resolution.
  var FONT_PX = 13;

  var source = document.getElementById("event-overlay-data");
  if (!source) { return; }
  var data;
  try { data = JSON.parse(source.textContent); } catch (e) { return; }
  var labels = data.labels || {};
  var zones = data.zones || {};
  var section = document.getElementById("event-media");

  function make(name, attrs, parent) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (parent) { parent.appendChild(node); }
    return node;
  }

  function fmt(v) { return String(Math.round(v * 100) / 100); }

  function pointsAttr(points, w, h) {
    return points.map(function (p) { return fmt(p[0] * w) + "," + fmt(p[1] * h); }).join(" ");
  }

  function topLeft(points, w, h) {
    var x = Infinity, y = Infinity;
    points.forEach(function (p) { x = Math.min(x, p[0] * w); y = Math.min(y, p[1] * h); });
    return [x, y];
  }

  // The zones, in pixels of the frame (w x h); coordinates come normalised 0..1.
  function drawZones(svg, w, h) {
    var group = make("g", { "class": "zones" }, svg);
    var kinds = [["restricted", "polygon", "restricted"], ["posts", "polygon", "post"],
                 ["edges", "polyline", "edge"]];
    kinds.forEach(function (kind) {
      (zones[kind[0]] || []).forEach(function (zone) {
        if (!zone.points || zone.points.length < 2) { return; }
        var current = data.zone && zone.name === data.zone;
        var css = "zone " + kind[2] + (current ? " current" : "");
        var g = make("g", { "class": css, "data-name": zone.name, "data-kind": kind[2] }, group);
        if (kind[2] === "edge" && zone.danger_distance) {
          // The danger band: normalised distance, so drawn in a 0..1 space stretched to
          // the frame (an ellipse-wide band in pixels, as the box measures it).
          var band = make("svg", { x: 0, y: 0, width: w, height: h, viewBox: "0 0 1 1",
                                   preserveAspectRatio: "none", "class": "edge-band" }, g);
          make("polyline", { points: pointsAttr(zone.points, 1, 1),
                             "stroke-width": 2 * zone.danger_distance }, band);
        }
        make(kind[1], { "class": "shape", points: pointsAttr(zone.points, w, h) }, g);
        var at = topLeft(zone.points, w, h);
        var text = zone.name;
        if (kind[2] === "edge" && zone.danger_distance_m) {
          text += " · " + zone.danger_distance_m + " m";
        }
        var label = make("text", { "class": "zone-label", x: fmt(at[0] + 2), y: fmt(at[1]) }, g);
        label.textContent = text;
        make("title", {}, g).textContent = (labels[kind[2]] || kind[2]) + ": " + zone.name;
      });
    });
  }

  function drawPerson(svg) {
    var g = make("g", { "class": "person hidden" }, svg);
    var rect = make("rect", { "class": "person-box" }, g);
    var text = make("text", { "class": "person-label" }, g);
    text.textContent = labels.person || "";
    return {
      show: function (box, t) {
        if (!box) { g.classList.add("hidden"); return; }
        var x1 = box[0], y1 = box[1], x2 = box[2], y2 = box[3];
        rect.setAttribute("x", fmt(x1));
        rect.setAttribute("y", fmt(y1));
        rect.setAttribute("width", fmt(x2 - x1));
        rect.setAttribute("height", fmt(y2 - y1));
        text.setAttribute("x", fmt(x1));
        text.setAttribute("y", fmt(y1 - 3));
        if (t === undefined) { g.removeAttribute("data-t"); } else { g.setAttribute("data-t", fmt(t)); }
        g.classList.remove("hidden");
      }
    };
  }

  // Font size in frame pixels for FONT_PX on screen (the frame is scaled to fit: "meet").
  function fitLabels(svg, w, h) {
    var box = svg.getBoundingClientRect();
    if (!box.width || !box.height) { return; }
    var scale = Math.min(box.width / w, box.height / h);
    svg.style.fontSize = fmt(FONT_PX / scale) + "px";
  }

  // Draw on one <svg class="overlay"> over a picture of w x h frame pixels.
  function overlay(svg, w, h) {
    svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    drawZones(svg, w, h);
    var person = drawPerson(svg);
    fitLabels(svg, w, h);
    if (window.ResizeObserver) {
      new ResizeObserver(function () { fitLabels(svg, w, h); }).observe(svg);
    }
    return person;
  }

  // The frame size the boxes are in; without frame_wh, the picture's own size.
  function frameSize(fallbackW, fallbackH) {
    if (data.frame_wh) { return data.frame_wh; }
    return fallbackW && fallbackH ? [fallbackW, fallbackH] : null;
  }

  // The box nearest in time t (seconds from started_at), by bisection of the sorted track.
  function nearest(track, t) {
    if (!track.length) { return null; }
    var lo = 0, hi = track.length - 1;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (track[mid][0] < t) { lo = mid + 1; } else { hi = mid; }
    }
    var best = track[lo];
    if (lo > 0 && Math.abs(track[lo - 1][0] - t) <= Math.abs(best[0] - t)) { best = track[lo - 1]; }
    return Math.abs(best[0] - t) <= MAX_GAP_S ? best : null;
  }

  // -- the snapshot ----------------------------------------------------------------------
  var img = document.getElementById("snapshot");
  var imgSvg = document.getElementById("snapshot-overlay");
  function drawSnapshot() {
    var size = frameSize(img.naturalWidth, img.naturalHeight);
    if (!size) { return; }
    overlay(imgSvg, size[0], size[1]).show(data.bbox);
  }
  if (img && imgSvg) {
    if (data.frame_wh || img.complete) { drawSnapshot(); } else { img.addEventListener("load", drawSnapshot); }
  }

  // -- the clip --------------------------------------------------------------------------
  var video = document.getElementById("clip");
  var clipSvg = document.getElementById("clip-overlay");
  var track = (data.track || []).slice();
  if (!track.length && data.bbox) { track = [[0].concat(data.bbox)]; }
  var offset = typeof data.clip_offset_s === "number" ? data.clip_offset_s : 0;
  var clipPerson = null;
  function follow() {
    if (!clipPerson) { return; }
    var t = video.currentTime - offset;
    var box = nearest(track, t);
    clipPerson.show(box ? box.slice(1) : null, box ? box[0] : undefined);
  }
  function drawClip() {
    var size = frameSize(video.videoWidth, video.videoHeight);
    if (!size) { return; }
    clipPerson = overlay(clipSvg, size[0], size[1]);
    follow();
  }
  if (video && clipSvg) {
    if (data.frame_wh) { drawClip(); } else if (video.readyState >= 1) { drawClip(); } else {
      video.addEventListener("loadedmetadata", drawClip, { once: true });
    }
    ["timeupdate", "seeked", "loadeddata"].forEach(function (name) {
      video.addEventListener(name, follow);
    });
    var ticking = false;
    function tick() {
      follow();
      if (!video.paused && !video.ended) { window.requestAnimationFrame(tick); } else { ticking = false; }
    }
    video.addEventListener("play", function () {
      if (!ticking) { ticking = true; window.requestAnimationFrame(tick); }
    });
  }

  // -- 显示标注 / 原图 --------------------------------------------------------------------
  var on = document.getElementById("overlay-on");
  var off = document.getElementById("overlay-off");
  var bar = document.getElementById("overlay-switch");
  function setShown(shown) {
    section.classList.toggle("overlay-hidden", !shown);
    on.setAttribute("aria-pressed", shown ? "true" : "false");
    off.setAttribute("aria-pressed", shown ? "false" : "true");
  }
  if (section && on && off && bar) {
    on.addEventListener("click", function () { setShown(true); });
    off.addEventListener("click", function () { setShown(false); });
    bar.classList.remove("hidden");
    setShown(true);
  }
})();
