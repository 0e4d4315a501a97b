// The zone editor (issue 17): restricted polygons, fall-risk edges, posts and the ground
// calibration drawn on the camera's latest picture, in an <svg> over the <img>.
// Coordinates are kept normalised (0..1 of the picture) as sitewatch.zones.config wants;
// the page's JSON (#zone-data) gives the start zones, the API and the texts.
(function () {
  "use strict";

  var dataEl = document.getElementById("zone-data");
  if (!dataEl) { return; }
  var D = JSON.parse(dataEl.textContent);
  var T = D.text || {};
  var SVGNS = "http://www.w3.org/2000/svg";
  var svg = document.getElementById("overlay");
  var img = document.getElementById("picture");
  var panel = document.getElementById("shapes");
  var canEdit = !!D.canEdit;
  var W = D.width || 1600, H = D.height || 900;
  var KINDS = { restricted: "restricted", edges: "edge", posts: "post", calibration: "calibration" };
  var LIST = { restricted: "restricted", edge: "edges", post: "posts" };
  var MIN_POINTS = { restricted: 3, post: 3, edge: 2, calibration: 4 };

  function tr(key, fields) {
    var text = Object.prototype.hasOwnProperty.call(T, key) ? T[key] : key;
    if (fields) {
      Object.keys(fields).forEach(function (k) { text = text.split("{" + k + "}").join(String(fields[k])); });
    }
    return text;
  }

  // -- the model -------------------------------------------------------------------------

  var nextId = 1;
  var shapes = [];
  var selectedId = null, selectedPoint = null, drawingId = null;
  var undoStack = [];
  var preview = null;

  function newShape(kind, props) {
    var s = {
      id: nextId++, kind: kind, name: "", points: [], unit: "norm", dist: "",
      maxUnattended: "300", roles: ["party_member"], hoursFrom: "", hoursTo: "",
      ground: [["", ""], ["", ""], ["", ""], ["", ""]], errors: []
    };
    Object.keys(props || {}).forEach(function (k) { s[k] = props[k]; });
    return s;
  }

  function loadZones(z) {
    z = z || {};
    (z.restricted || []).forEach(function (r) {
      shapes.push(newShape("restricted", { name: r.name, points: copyPoints(r.polygon) }));
    });
    (z.edges || []).forEach(function (e) {
      var metres = e.danger_distance_m !== undefined && e.danger_distance_m !== null;
      shapes.push(newShape("edge", {
        name: e.name, points: copyPoints(e.polyline), unit: metres ? "m" : "norm",
        dist: String(metres ? e.danger_distance_m : e.danger_distance)
      }));
    });
    (z.posts || []).forEach(function (p) {
      shapes.push(newShape("post", {
        name: p.name, points: copyPoints(p.polygon),
        maxUnattended: String(p.max_unattended_s === undefined ? 300 : p.max_unattended_s),
        roles: (p.staffed_by_roles || ["party_member"]).slice(),
        hoursFrom: p.hours && p.hours[0] ? String(p.hours[0].start).slice(0, 5) : "",
        hoursTo: p.hours && p.hours[0] ? String(p.hours[0].end).slice(0, 5) : ""
      }));
    });
    if (z.calibration) {
      shapes.push(newShape("calibration", {
        points: copyPoints(z.calibration.image_points),
        ground: z.calibration.ground_points_m.map(function (g) { return [String(g[0]), String(g[1])]; })
      }));
    }
  }

  function copyPoints(points) { return (points || []).map(function (p) { return [p[0], p[1]]; }); }
  function byId(id) { for (var i = 0; i < shapes.length; i++) { if (shapes[i].id === id) { return shapes[i]; } } return null; }
  function calibration() { for (var i = 0; i < shapes.length; i++) { if (shapes[i].kind === "calibration") { return shapes[i]; } } return null; }
  function calibrated() { var c = calibration(); return !!c && c.points.length === 4; }
  function kindIndex(shape) {
    var n = 0;
    for (var i = 0; i < shapes.length; i++) {
      if (shapes[i] === shape) { return n; }
      if (shapes[i].kind === shape.kind) { n++; }
    }
    return -1;
  }
  function shapeAt(kind, index) {
    var n = 0;
    for (var i = 0; i < shapes.length; i++) {
      if (shapes[i].kind === kind) { if (n === index) { return shapes[i]; } n++; }
    }
    return null;
  }
  function defaultName(kind) {
    var n = 1, names = shapes.map(function (s) { return s.name; });
    while (names.indexOf(tr("kind." + kind) + n) >= 0) { n++; }
    return tr("kind." + kind) + n;
  }

  function snapshot() {
    return JSON.stringify({ shapes: shapes, drawingId: drawingId, selectedId: selectedId });
  }
  function pushUndo() {
    undoStack.push(snapshot());
    if (undoStack.length > 300) { undoStack.shift(); }
  }
  function undo() {
    if (!undoStack.length) { return; }
    var state = JSON.parse(undoStack.pop());
    shapes = state.shapes;
    drawingId = state.drawingId;
    selectedId = state.selectedId;
    selectedPoint = null;
    renderAll();
  }

  function number(text) {
    var s = String(text === undefined || text === null ? "" : text).trim().replace(",", ".");
    if (s === "") { return NaN; }
    var v = Number(s);
    return isFinite(v) ? v : NaN;
  }

  function zones() {
    var out = { restricted: [], edges: [], posts: [] };
    shapes.forEach(function (s) {
      var pts = copyPoints(s.points);
      if (s.kind === "restricted") {
        out.restricted.push({ name: s.name.trim(), polygon: pts });
      } else if (s.kind === "edge") {
        var edge = { name: s.name.trim(), polyline: pts };
        edge[s.unit === "m" ? "danger_distance_m" : "danger_distance"] = number(s.dist);
        out.edges.push(edge);
      } else if (s.kind === "post") {
        var post = {
          name: s.name.trim(), polygon: pts,
          max_unattended_s: number(s.maxUnattended), staffed_by_roles: s.roles.slice()
        };
        if (s.hoursFrom && s.hoursTo) {  // empty: the post_unattended rule's hours
          post.hours = [{ start: s.hoursFrom, end: s.hoursTo }];
        }
        out.posts.push(post);
      } else if (s.kind === "calibration") {
        out.calibration = {
          image_points: pts,
          ground_points_m: s.ground.map(function (g) { return [number(g[0]), number(g[1])]; })
        };
      }
    });
    return out;
  }

  // The browser's own check: what the server would refuse for certain, said at the shape.
  function clientProblems() {
    var found = false, names = {};
    shapes.forEach(function (s) {
      s.errors = [];
      if (s.points.length < MIN_POINTS[s.kind]) {
        s.errors.push(s.kind === "calibration" ? tr("err.cal_points") : tr("err.too_few", { n: MIN_POINTS[s.kind] }));
      }
      if (s.kind === "calibration") {
        if (s.ground.some(function (g) { return isNaN(number(g[0])) || isNaN(number(g[1])); })) {
          s.errors.push(tr("err.ground_required"));
        }
      } else if (!s.name.trim()) {
        s.errors.push(tr("err.name_required"));
      } else {
        names[s.name.trim()] = (names[s.name.trim()] || 0) + 1;
      }
      if (s.kind === "edge") {
        var d = number(s.dist);
        if (!(d > 0) || (s.unit === "norm" && d > 1) || (s.unit === "m" && d > 50)) {
          s.errors.push(tr(s.unit === "m" ? "err.dist_m" : "err.dist_norm"));
        } else if (s.unit === "m" && !calibrated()) {
          s.errors.push(tr("err.needs_calibration"));
        }
      }
      if (s.kind === "post") {
        if (!(number(s.maxUnattended) > 0)) { s.errors.push(tr("err.positive")); }
        if (!s.roles.length) { s.errors.push(tr("err.roles_required")); }
        if (!s.hoursFrom !== !s.hoursTo) {
          s.errors.push(tr("err.hours_pair"));
        } else if (s.hoursFrom && s.hoursTo <= s.hoursFrom) {
          s.errors.push(tr("err.hours_order"));
        }
      }
    });
    shapes.forEach(function (s) {
      if (s.kind !== "calibration" && names[s.name.trim()] > 1) {
        s.errors.push(tr("err.duplicate", { names: s.name.trim() }));
      }
      if (s.errors.length) { found = true; }
    });
    return found;
  }

  // -- the server's reasons, at their shape, in the page's language ------------------------

  var REASONS = [
    [/invalid polygon \((Ring )?Self-intersection/i, "err.self_intersection"],
    [/invalid polygon \((.*)\)/, "err.invalid_polygon"],
    [/polygon has no area/, "err.no_area"],
    [/at least (\d+) item/, "err.too_few"],
    [/at most (\d+) item/, "err.too_many"],
    [/give exactly one of danger_distance_m/, "err.one_distance"],
    [/polyline has zero length/, "err.zero_length"],
    [/has no calibration/, "err.needs_calibration"],
    [/beyond the horizon/, "err.horizon"],
    [/collinear or repeated/, "err.collinear"],
    [/do not correspond/, "err.fold"],
    [/must be unique per camera, repeated: (.*)/, "err.duplicate"],
    [/at least 1 character/, "err.name_required"],
    [/at most (\d+) character/, "err.name_long"],
    [/greater than 0/, "err.positive"],
    [/less than or equal to ([\d.]+)/, "err.at_most"],
    [/greater than or equal to ([\d.-]+)/, "err.at_least"],
    [/valid number/, "err.number"]
  ];

  function reasonText(message) {
    for (var i = 0; i < REASONS.length; i++) {
      var m = REASONS[i][0].exec(message);
      if (m) {
        var key = REASONS[i][1];
        if (key === "err.duplicate") {
          var names = [], q = /'([^']*)'/g, hit;
          while ((hit = q.exec(m[1])) !== null) { names.push(hit[1]); }
          return tr(key, { names: names.join(tr("name_sep")) || m[1] });
        }
        return tr(key, { n: m[1], detail: m[1] });
      }
    }
    return tr("err.other", { detail: message });
  }

  // "restricted.0: zone 'x': ...; edges.1.polyline: ..." -> [{path, message}]
  function splitProblems(detail) {
    if (Array.isArray(detail)) {
      return detail.map(function (e) {
        var loc = (e.loc || []).filter(function (p) { return p !== "body" && p !== "zones"; });
        return { path: loc.join("."), message: String(e.msg || "") };
      });
    }
    return String(detail).split(/; (?=[a-z_]+(?:\.[\w]+)*: |zone names must be unique)/).map(function (part) {
      var m = /^([a-z_]+(?:\.[\w]+)*): ([\s\S]*)$/.exec(part);
      return m ? { path: m[1], message: m[2] } : { path: "", message: part };
    });
  }

  function shapeOfProblem(problem) {
    var parts = problem.path.split(".");
    var kind = KINDS[parts[0]];
    if (!kind) { return null; }
    if (kind === "calibration") { return calibration(); }
    var index = parseInt(parts[1], 10);
    if (isNaN(index)) {
      var m = /edges\[(\d+)\]/.exec(problem.message);
      index = m ? parseInt(m[1], 10) : NaN;
    }
    return isNaN(index) ? null : shapeAt(kind, index);
  }

  function showServerProblems(detail) {
    shapes.forEach(function (s) { s.errors = []; });
    var general = [];
    splitProblems(detail).forEach(function (p) {
      var text = reasonText(p.message);
      var shape = shapeOfProblem(p);
      if (shape) {
        shape.errors.push(text);
      } else if (/must be unique per camera/.test(p.message)) {
        var dup = /repeated: (.*)/.exec(p.message)[1];
        shapes.forEach(function (s) {
          if (s.kind !== "calibration" && dup.indexOf("'" + s.name.trim() + "'") >= 0) { s.errors.push(text); }
        });
      } else {
        general.push(text);
      }
    });
    renderAll();
    setGeneral(general);
  }

  // -- drawing -----------------------------------------------------------------------------

  function el(name, attrs, parent) {
    var node = document.createElementNS(SVGNS, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (parent) { parent.appendChild(node); }
    return node;
  }

  function px(points) {
    return points.map(function (p) { return (p[0] * W).toFixed(1) + "," + (p[1] * H).toFixed(1); }).join(" ");
  }

  function scale() {
    var rect = svg.getBoundingClientRect();
    return rect.width > 0 ? rect.width / W : 1;
  }

  function centre(points) {
    var x = 0, y = 0;
    points.forEach(function (p) { x += p[0]; y += p[1]; });
    return [x / points.length * W, y / points.length * H];
  }

  function renderSvg() {
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    var k = 1 / scale(); // viewBox units per screen pixel
    var font = (13 * k).toFixed(1);
    shapes.forEach(function (s) {
      var g = el("g", {
        "class": "zshape z-" + s.kind + (s.id === selectedId ? " selected" : "") + (s.errors.length ? " has-error" : ""),
        "data-shape-id": s.id, "data-kind": s.kind
      }, svg);
      var closed = s.kind !== "edge" && s.id !== drawingId;
      if (s.kind === "edge" && s.unit === "norm" && number(s.dist) > 0 && s.points.length >= 2) {
        // the band: distance in normalised units, so stroke in a 0..1 space scaled to the picture
        var band = el("g", { transform: "scale(" + W + "," + H + ")" }, g);
        el("polyline", {
          "class": "z-band", points: s.points.map(function (p) { return p[0] + "," + p[1]; }).join(" "),
          "stroke-width": 2 * number(s.dist)
        }, band);
      }
      if (s.points.length >= 2) {
        el(closed && s.points.length >= 3 ? "polygon" : "polyline", { "class": "z-line", points: px(s.points) }, g);
      }
      if (s.points.length) {
        var c = s.kind === "edge" ? [s.points[0][0] * W, s.points[0][1] * H] : centre(s.points);
        var text = s.kind === "calibration" ? tr("kind.calibration") : s.name;
        if (s.kind === "edge" && s.unit === "m" && number(s.dist) > 0) { text += " · " + number(s.dist) + " m"; }
        var label = el("text", { "class": "z-label", x: c[0].toFixed(1), y: (c[1] - 6 * k).toFixed(1), "font-size": font }, g);
        label.textContent = text;
      }
      var showHandles = canEdit && (s.id === selectedId || s.id === drawingId);
      if (showHandles || s.kind === "calibration") {
        s.points.forEach(function (p, i) {
          var h = el("circle", {
            "class": "z-handle" + (s.id === selectedId && i === selectedPoint ? " current" : ""),
            cx: (p[0] * W).toFixed(1), cy: (p[1] * H).toFixed(1), r: (6 * k).toFixed(1),
            "data-shape-id": s.id, "data-index": i
          }, g);
          if (!showHandles) { h.setAttribute("class", "z-handle passive"); }
          if (s.kind === "calibration") {
            var n = el("text", { "class": "z-label", x: (p[0] * W + 8 * k).toFixed(1), y: (p[1] * H - 8 * k).toFixed(1), "font-size": font }, g);
            n.textContent = String(i + 1);
          }
        });
      }
    });
    if (preview) {
      preview.forEach(function (person, i) {
        var b = person.box;
        var caught = person.inside.length > 0 || Object.keys(person.near_edges).length > 0;
        var g = el("g", { "class": "person" + (caught ? " caught" : ""), "data-person": i }, svg);
        el("rect", {
          "class": "p-box", x: (b[0] * W).toFixed(1), y: (b[1] * H).toFixed(1),
          width: ((b[2] - b[0]) * W).toFixed(1), height: ((b[3] - b[1]) * H).toFixed(1)
        }, g);
        if (caught) {
          var t = el("text", { "class": "p-label", x: (b[0] * W).toFixed(1), y: (b[1] * H - 4 * k).toFixed(1), "font-size": font }, g);
          t.textContent = personZones(person).join(tr("name_sep"));
        }
      });
    }
  }

  function personZones(person) {
    return person.inside.concat(Object.keys(person.near_edges).map(function (name) {
      return name + " (" + person.near_edges[name] + ")";
    }));
  }

  // -- the list of shapes with their fields -------------------------------------------------

  function field(labelText, input) {
    var label = document.createElement("label");
    label.appendChild(document.createTextNode(labelText));
    label.appendChild(input);
    return label;
  }

  function input(cls, value, onChange, type) {
    var node = document.createElement("input");
    node.type = type || "text";
    node.className = cls;
    node.value = value;
    node.disabled = !canEdit;
    var before = null;
    node.addEventListener("focus", function () { before = snapshot(); });
    node.addEventListener("input", function () { onChange(node.value); renderSvg(); });
    node.addEventListener("change", function () {
      if (before !== null && before !== snapshot()) { undoStack.push(before); }
      before = snapshot();
    });
    return node;
  }

  function renderPanel() {
    panel.textContent = "";
    document.getElementById("no-shapes").classList.toggle("hidden", shapes.length > 0);
    shapes.forEach(function (s) {
      var box = document.createElement("fieldset");
      box.className = "shape shape-" + s.kind + (s.id === selectedId ? " selected" : "") + (s.errors.length ? " has-error" : "");
      box.id = "shape-" + s.id;
      box.setAttribute("data-kind", s.kind);
      box.setAttribute("data-index", kindIndex(s));
      var legend = document.createElement("legend");
      var pick = document.createElement("button");
      pick.type = "button";
      pick.className = "link shape-select";
      pick.textContent = tr("kind." + s.kind) + " " + (kindIndex(s) + 1);
      pick.addEventListener("click", function () { select(s.id, null); });
      legend.appendChild(pick);
      var count = document.createElement("span");
      count.className = "muted shape-points";
      count.textContent = " · " + tr("points", { n: s.points.length });
      legend.appendChild(count);
      box.appendChild(legend);
      if (s.kind !== "calibration") {
        box.appendChild(field(tr("name"), input("shape-name", s.name, function (v) { s.name = v; })));
      }
      if (s.kind === "edge") {
        box.appendChild(field(s.unit === "m" ? tr("dist_m") : tr("dist_norm"),
          input("shape-dist", s.dist, function (v) { s.dist = v; })));
        var unit = document.createElement("select");
        unit.className = "shape-unit";
        unit.disabled = !canEdit;
        [["norm", tr("unit.norm")], ["m", tr("unit.m")]].forEach(function (o) {
          var opt = document.createElement("option");
          opt.value = o[0]; opt.textContent = o[1]; opt.selected = s.unit === o[0];
          unit.appendChild(opt);
        });
        unit.addEventListener("change", function () { pushUndo(); s.unit = unit.value; renderAll(); });
        box.appendChild(field(tr("unit"), unit));
      }
      if (s.kind === "post") {
        box.appendChild(field(tr("max_unattended"),
          input("shape-max", s.maxUnattended, function (v) { s.maxUnattended = v; }, "number")));
        var hours = document.createElement("span");
        hours.className = "shape-hours";
        hours.appendChild(
          input("shape-hours-from", s.hoursFrom, function (v) { s.hoursFrom = v; }, "time"));
        hours.appendChild(document.createTextNode(" – "));
        hours.appendChild(
          input("shape-hours-to", s.hoursTo, function (v) { s.hoursTo = v; }, "time"));
        box.appendChild(field(tr("staff_hours"), hours));
        var roles = document.createElement("div");
        roles.className = "shape-roles";
        roles.appendChild(document.createTextNode(tr("staffed_by")));
        (D.roles || []).forEach(function (role) {
          var lab = document.createElement("label");
          lab.className = "check";
          var cb = document.createElement("input");
          cb.type = "checkbox"; cb.value = role; cb.className = "shape-role";
          cb.checked = s.roles.indexOf(role) >= 0; cb.disabled = !canEdit;
          cb.addEventListener("change", function () {
            pushUndo();
            s.roles = s.roles.filter(function (r) { return r !== role; });
            if (cb.checked) { s.roles.push(role); }
          });
          lab.appendChild(cb);
          lab.appendChild(document.createTextNode(tr("role." + role)));
          roles.appendChild(lab);
        });
        box.appendChild(roles);
      }
      if (s.kind === "calibration") {
        var hint = document.createElement("p");
        hint.className = "hint";
        hint.textContent = tr("ground_hint");
        box.appendChild(hint);
        s.ground.forEach(function (g, i) {
          var row = document.createElement("div");
          row.className = "ground-row";
          row.appendChild(document.createTextNode(String(i + 1)));
          row.appendChild(field("x (m)", input("ground-x", g[0], function (v) { g[0] = v; })));
          row.appendChild(field("y (m)", input("ground-y", g[1], function (v) { g[1] = v; })));
          box.appendChild(row);
        });
      }
      var errors = document.createElement("ul");
      errors.className = "shape-errors" + (s.errors.length ? "" : " hidden");
      s.errors.forEach(function (text) {
        var li = document.createElement("li");
        li.textContent = text;
        errors.appendChild(li);
      });
      box.appendChild(errors);
      panel.appendChild(box);
    });
  }

  function renderAll() {
    renderSvg();
    renderPanel();
    var hint = document.getElementById("hint");
    var drawing = byId(drawingId);
    if (drawing) {
      hint.textContent = tr("hint.draw." + drawing.kind);
    } else {
      hint.textContent = canEdit ? tr("hint.select") : tr("hint.view");
    }
    document.querySelectorAll(".tool").forEach(function (b) {
      b.classList.toggle("active", !!drawing && b.getAttribute("data-tool") === drawing.kind);
    });
  }

  function select(id, point) {
    selectedId = id;
    selectedPoint = point;
    renderAll();
  }

  // -- messages ----------------------------------------------------------------------------

  function say(text, kind) {
    var box = document.getElementById("message");
    box.textContent = text;
    box.className = "flash " + (kind || "info");
    if (kind === "conflict") {
      box.className = "flash error";
      var again = document.createElement("a");
      again.href = location.pathname;
      again.id = "reload";
      again.textContent = " " + tr("reload");
      box.appendChild(again);
    }
  }

  function setGeneral(texts) {
    var list = document.getElementById("general-errors");
    list.textContent = "";
    texts.forEach(function (text) {
      var li = document.createElement("li");
      li.textContent = text;
      list.appendChild(li);
    });
    list.classList.toggle("hidden", texts.length === 0);
  }

  function api(method, path, body) {
    var options = {
      method: method, credentials: "same-origin",
      headers: { "X-CSRF-Token": D.csrf, "Accept": "application/json" }
    };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(D.api + path, options).then(function (response) {
      return response.text().then(function (text) {
        var json = null;
        try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
        return { status: response.status, ok: response.ok, body: json };
      });
    });
  }

  function failed(answer) {
    if (answer.status === 409) {
      say(tr("conflict"), "conflict");
    } else if (answer.status === 422) {
      showServerProblems(answer.body ? answer.body.detail : "");
      say(tr("refused"), "error");
    } else if (answer.status === 403) {
      say(tr("forbidden"), "error");
    } else if (answer.status === 401) {
      say(tr("logged_out"), "error");
    } else {
      say(tr("http_error", { code: answer.status }), "error");
    }
  }

  function offline() { say(tr("network_error"), "error"); }

  function checkFirst() {
    finishDrawing();
    setGeneral([]);
    var bad = clientProblems();
    renderAll();
    if (bad) { say(tr("fix_first"), "error"); }
    return !bad;
  }

  function save() {
    if (!checkFirst()) { return; }
    say(tr("saving"), "info");
    api("POST", "/zones", { zones: zones(), base_version: D.baseVersion }).then(function (answer) {
      if (!answer.ok) { failed(answer); return; }
      D.baseVersion = answer.body.version;
      shapes.forEach(function (s) { s.errors = []; });
      renderAll();
      say(tr("saved", { n: answer.body.version }), "ok");
    }, offline);
  }

  function runPreview() {
    if (!checkFirst()) { return; }
    api("POST", "/zones/preview", zones()).then(function (answer) {
      if (!answer.ok) { failed(answer); return; }
      shapes.forEach(function (s) { s.errors = []; });
      preview = answer.body;
      renderAll();
      var caught = preview.filter(function (p) {
        return p.inside.length > 0 || Object.keys(p.near_edges).length > 0;
      });
      var out = document.getElementById("preview-result");
      out.classList.remove("hidden");
      out.textContent = "";
      var head = document.createElement("p");
      head.id = "preview-summary";
      head.textContent = preview.length ? tr("preview_summary", { n: preview.length, k: caught.length }) : tr("preview_nobody");
      out.appendChild(head);
      var list = document.createElement("ul");
      caught.forEach(function (p) {
        var li = document.createElement("li");
        li.className = "preview-person";
        li.textContent = tr("preview_person", { n: preview.indexOf(p) + 1 }) + personZones(p).join(tr("name_sep"));
        list.appendChild(li);
      });
      out.appendChild(list);
      say(tr("preview_done"), "ok");
    }, offline);
  }

  function requestPicture() {
    api("POST", "/picture-request").then(function (answer) {
      if (!answer.ok) { failed(answer); return; }
      say(tr("picture_requested"), "ok");
    }, offline);
  }

  function reset() {
    if (!window.confirm(tr("reset_confirm"))) { return; }
    api("DELETE", "/zones?base_version=" + encodeURIComponent(D.baseVersion)).then(function (answer) {
      if (!answer.ok) { failed(answer); return; }
      location.href = location.pathname + "?done=reset";
    }, offline);
  }

  // -- pointer and keys --------------------------------------------------------------------

  function toNorm(event) {
    var rect = svg.getBoundingClientRect();
    var x = (event.clientX - rect.left) / rect.width;
    var y = (event.clientY - rect.top) / rect.height;
    function clamp(v) { return Math.round(Math.min(1, Math.max(0, v)) * 10000) / 10000; }
    return [clamp(x), clamp(y)];
  }

  function startTool(kind) {
    finishDrawing();
    if (kind === "calibration" && calibration()) {
      pushUndo();
      var old = calibration();
      old.points = [];
      drawingId = old.id;
      selectedId = old.id;
    } else {
      pushUndo();
      var s = newShape(kind, { name: kind === "calibration" ? "" : defaultName(kind), unit: calibrated() ? "m" : "norm" });
      shapes.push(s);
      drawingId = s.id;
      selectedId = s.id;
    }
    selectedPoint = null;
    preview = null;
    renderAll();
  }

  function finishDrawing() {
    if (drawingId === null) { return; }
    drawingId = null;
    renderAll();
  }

  var drag = null, justDragged = false;

  function onPointerDown(event) {
    if (!canEdit || drawingId !== null) { return; }
    var target = event.target;
    if (target.classList && target.classList.contains("z-handle") && !target.classList.contains("passive")) {
      var id = Number(target.getAttribute("data-shape-id"));
      var index = Number(target.getAttribute("data-index"));
      drag = { id: id, index: index, before: snapshot(), moved: false };
      selectedId = id;
      selectedPoint = index;
      svg.setPointerCapture(event.pointerId);
      event.preventDefault();
      renderSvg();
    }
  }

  function onPointerMove(event) {
    if (!drag) { return; }
    var shape = byId(drag.id);
    if (!shape) { drag = null; return; }
    shape.points[drag.index] = toNorm(event);
    drag.moved = true;
    renderSvg();
  }

  function onPointerUp(event) {
    if (!drag) { return; }
    if (drag.moved) { undoStack.push(drag.before); }
    drag = null;
    justDragged = true;  // the click that follows belongs to the drag
    try { svg.releasePointerCapture(event.pointerId); } catch (e) { /* not captured */ }
    renderAll();
  }

  function onClick(event) {
    if (!canEdit) { return; }
    if (justDragged) { justDragged = false; return; }
    var drawing = byId(drawingId);
    if (drawing) {
      var p = toNorm(event);
      var first = drawing.points[0];
      var s = scale();
      if (drawing.kind !== "edge" && drawing.points.length >= 3 && first &&
          Math.hypot((p[0] - first[0]) * W * s, (p[1] - first[1]) * H * s) <= 10) {
        finishDrawing();  // clicked on the first point: the polygon is closed
        return;
      }
      pushUndo();
      drawing.points.push(p);
      if (drawing.kind === "calibration" && drawing.points.length === 4) {
        drawingId = null;
      }
      renderAll();
      return;
    }
    var target = event.target;
    if (target.classList && target.classList.contains("z-handle")) { return; }
    var group = target.closest ? target.closest("g.zshape") : null;
    if (group) {
      select(Number(group.getAttribute("data-shape-id")), null);
    } else {
      select(null, null);
    }
  }

  function deletePoint() {
    var s = byId(selectedId);
    if (!s) { return; }
    var index = selectedPoint;
    if (index === null || index === undefined) {
      if (s.id !== drawingId || !s.points.length) { return; }
      index = s.points.length - 1;
    }
    pushUndo();
    s.points.splice(index, 1);
    selectedPoint = null;
    renderAll();
  }

  function deleteShape() {
    var s = byId(selectedId);
    if (!s) { return; }
    pushUndo();
    shapes = shapes.filter(function (x) { return x.id !== s.id; });
    if (drawingId === s.id) { drawingId = null; }
    selectedId = null;
    selectedPoint = null;
    renderAll();
  }

  function typing(target) {
    return target && /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName);
  }

  function onKey(event) {
    if (!canEdit || typing(event.target)) { return; }
    if ((event.ctrlKey || event.metaKey) && (event.key === "z" || event.key === "Z")) {
      event.preventDefault();
      undo();
    } else if (event.key === "Enter" || event.key === "Escape") {
      finishDrawing();
    } else if (event.key === "Delete" || event.key === "Backspace") {
      event.preventDefault();
      if (selectedPoint !== null) { deletePoint(); } else { deleteShape(); }
    }
  }

  function on(id, handler) {
    var node = document.getElementById(id);
    if (node) { node.addEventListener("click", handler); }
  }

  // -- start -------------------------------------------------------------------------------

  function sizeFromPicture() {
    if (img && img.naturalWidth) {
      W = img.naturalWidth;
      H = img.naturalHeight;
    }
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    renderSvg();
  }

  loadZones(D.zones);
  svg.setAttribute("viewBox", "0 0 " + W + " " + H);
  if (img) {
    if (img.complete) { sizeFromPicture(); } else { img.addEventListener("load", sizeFromPicture); }
  } else {
    var missing = document.getElementById("picture-missing");
    if (missing) { missing.style.aspectRatio = W + " / " + H; }
  }
  svg.addEventListener("pointerdown", onPointerDown);
  svg.addEventListener("pointermove", onPointerMove);
  svg.addEventListener("pointerup", onPointerUp);
  svg.addEventListener("click", onClick);
  document.addEventListener("keydown", onKey);
  window.addEventListener("resize", renderSvg);
  document.querySelectorAll(".tool").forEach(function (b) {
    b.addEventListener("click", function () { startTool(b.getAttribute("data-tool")); });
  });
  on("finish", finishDrawing);
  on("undo", undo);
  on("delete-point", deletePoint);
  on("delete-shape", deleteShape);
  on("save", save);
  on("preview", runPreview);
  on("picture-request", requestPicture);
  on("reset", reset);
  renderAll();
  document.body.setAttribute("data-zone-editor", "ready");
})();
