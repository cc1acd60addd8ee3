// Offline feature browser: renders data written by featureflow.analysis.browser.
// Token text is untrusted: it only ever reaches the page through textContent, never as markup.

// A feature's class on one side of an edge from its best partner's correlation: the mirror of
// featureflow.flow.side_classes (strictly above the threshold, compared in float32 as the stored
// correlations are; no partner (null): not persisting). tests/test_flow.py runs both on the same
// inputs, the boundary and NaN included.
function featureClass(active, corr, side, threshold) {
  "use strict";
  if (!active) { return "inactive"; }
  if (corr !== null && Math.fround(corr) > Math.fround(threshold)) { return "persisting"; }
  return side === "source" ? "disappearing" : "emerging";
}

// Why a feature has no LLR (null in the data, NaN in featureflow.analysis.features.llr_scores):
// it never fires on the sample, the hypothesis' tokens never occur in it (share pH of the
// sample's positions; null where unknown), or it never fires on them.
function llrMissing(density, pH, name) {
  "use strict";
  if (density === 0) { return "the feature never fires on the sample"; }
  if (pH === 0) { return "no " + name + " tokens in the sample"; }
  return "the feature never fires on " + name + " tokens";
}

// An LLR as the pages print it: two decimals, or n/a with the reason (`llrMissing`).
function llrText(llr, density, pH, name) {
  "use strict";
  return llr === null ? "n/a (" + llrMissing(density, pH, name) + ")" : Number(llr).toFixed(2);
}

// The histogram's layout: a log count axis with ticks at powers of ten only (plotly's default
// labels 2 and 5 within each decade as well), from below 1 (bars of one position show) to at
// least 10 (so that two ticks show).
function histogramLayout(counts) {
  "use strict";
  var top = Math.max.apply(null, [1].concat(counts));
  return {margin: {t: 10, r: 10, b: 40, l: 50}, xaxis: {title: {text: "activation"}},
    yaxis: {title: {text: "positions"}, type: "log", dtick: 1, range: [-0.3, Math.max(1, Math.log10(top) + 0.15)]}};
}
if (typeof module !== "undefined") {
  module.exports = {featureClass: featureClass, llrMissing: llrMissing, llrText: llrText, histogramLayout: histogramLayout};
}

(function () {
  "use strict";
  if (typeof window === "undefined") { return; }  // loaded by node for the tests
  var V = window.FF_VOCAB || [];
  // threshold.js holds the configured threshold (written by the browser_threshold rule)
  var THRESHOLD = window.FF_THRESHOLD;

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) { for (var k in attrs) { e.setAttribute(k, attrs[k]); } }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function tokenText(id) { return id >= 0 && id < V.length ? V[id] : "?"; }
  function fmt(x, digits) { return x === null || x === undefined ? "" : Number(x).toFixed(digits); }
  var cls = featureClass;
  function loadScript(src, done) {
    var s = el("script", {src: src});
    s.onload = done;
    s.onerror = function () { document.getElementById("app").appendChild(el("p", null, "missing data file " + src)); };
    document.head.appendChild(s);
  }

  // ---- index: one row per feature, sortable and filterable ----
  function renderIndex(app, data) {
    var thr = THRESHOLD;
    app.appendChild(el("h1", null, "Features of " + data.model + " (" + data.rows.length + ")"));
    app.appendChild(el("p", {"class": "note"}, "Density, activation and LLRs on the common sample; per lineage edge the best " +
      "partner's correlation and the class at the threshold. Click a column to sort; click an id to open the feature. " +
      "An LLR is n/a where the feature never fires on the sample or on the hypothesis' tokens (hover over it for which)."));
    var controls = el("div", {id: "controls"});
    var filter = el("input", {type: "search", placeholder: "filter: class or token", id: "filter"});
    var thrBox = el("input", {type: "number", step: "0.05", min: "0", max: "1", value: String(thr), id: "threshold"});
    controls.appendChild(el("span", null, "filter "));
    controls.appendChild(filter);
    controls.appendChild(el("span", null, "threshold "));
    controls.appendChild(thrBox);
    app.appendChild(controls);
    var table = el("table");
    var head = el("tr");
    var cols = ["id", "density", "max"].concat(data.hypotheses.map(function (h) { return "LLR " + h; }));
    data.edges.forEach(function (e) { cols.push(e.label + " corr"); cols.push(e.label + " class"); });
    cols.push("top tokens");
    var interp = data.rows.some(function (r) { return r.explanation; });
    if (interp) { cols.push("score"); cols.push("explanation"); }
    cols.forEach(function (c, i) {
      var th = el("th", {"class": c === "top tokens" || c === "explanation" ? "l" : ""}, c);
      th.onclick = function () { sortBy(i); };
      head.appendChild(th);
    });
    table.appendChild(head);
    var body = el("tbody");
    table.appendChild(body);
    app.appendChild(table);
    var order = data.rows.map(function (_, i) { return i; });
    var sortCol = -1, desc = true;

    function cells(r) {
      var out = [r.id, r.density, r.max].concat(r.llr);
      data.edges.forEach(function (e, k) {
        var p = r.partners[k];
        out.push(p ? p[1] : null);
        out.push(p ? cls(p[2], p[1], e.side, thr) : "");
      });
      out.push(r.top_tokens.map(tokenText).join(" | "));
      if (interp) { out.push(r.explanation ? r.explanation[1] : null); out.push(r.explanation ? r.explanation[0] : ""); }
      return out;
    }
    function sortBy(i) {
      if (sortCol === i) { desc = !desc; } else { sortCol = i; desc = i !== 0; }
      var key = data.rows.map(cells);
      order.sort(function (a, b) {
        var x = key[a][i], y = key[b][i];
        if (x === null) { return 1; } if (y === null) { return -1; }
        if (x < y) { return desc ? 1 : -1; } if (x > y) { return desc ? -1 : 1; } return a - b;
      });
      draw();
    }
    function cell(r, v, i) {
      var h = i - 3;  // the LLR columns follow id, density and max
      if (v === null && h >= 0 && h < data.hypotheses.length) {
        return el("td", {title: llrMissing(r.density, data.hypothesis_shares[h], data.hypotheses[h])}, "n/a");
      }
      var text = typeof v === "number" ? (i === 1 ? v.toExponential(2) : fmt(v, 3)) : v;
      var known = ["persisting", "disappearing", "emerging", "inactive"].indexOf(v) >= 0 ? " " + v : "";
      return el("td", {"class": (typeof v === "string" ? "l" + known : "")}, text);
    }
    function draw() {
      var q = filter.value.trim().toLowerCase();
      while (body.firstChild) { body.removeChild(body.firstChild); }
      var shown = 0;
      for (var n = 0; n < order.length && shown < 2000; n++) {
        var r = data.rows[order[n]], c = cells(r);
        if (q && c.join(" ").toLowerCase().indexOf(q) < 0) { continue; }
        var tr = el("tr");
        var idCell = el("td");
        idCell.appendChild(el("a", {href: "feature.html#" + r.id}, "#" + r.id));
        tr.appendChild(idCell);
        for (var i = 1; i < c.length; i++) { tr.appendChild(cell(r, c[i], i)); }
        body.appendChild(tr);
        shown++;
      }
      if (shown === 2000) { body.appendChild(el("tr", null, "first 2000 rows shown: sort or filter to see others")); }
    }
    filter.oninput = draw;
    thrBox.oninput = function () { var t = parseFloat(thrBox.value); if (!isNaN(t)) { thr = t; draw(); } };
    sortBy(1);
  }

  // ---- feature page: contexts, histogram, top tokens, partners along the lineage ----
  function renderFeature(app, model, id, f, info) {
    app.appendChild(el("p", null)).appendChild(el("a", {href: "index.html"}, "all features of " + model));
    app.appendChild(el("h1", null, model + " feature #" + id));
    var facts = el("p", null, "density " + Number(f.density).toExponential(2) + ", max activation " + fmt(f.max, 3) +
      ", mean when active " + fmt(f.mean, 3));
    app.appendChild(facts);
    if (f.explanation) {
      app.appendChild(el("p", null, "Explanation (autointerp): " + f.explanation[0] + " (score " + fmt(f.explanation[1], 2) + ")"));
    }
    if (f.llr.length) {
      app.appendChild(el("p", null, info.hypotheses.map(function (h, i) {
        return "LLR " + h + ": " + llrText(f.llr[i], f.density, info.hypothesis_shares[i], h);
      }).join(", ")));
    }
    app.appendChild(el("h2", null, "Along the lineage (threshold " + THRESHOLD + ")"));
    var lt = el("table");
    var hr = el("tr");
    var withNull = info.edges.some(function (e) { return e.null; });
    var withOthers = f.partners.some(function (p) { return p && p[4] && Object.keys(p[4]).length; });
    var heads = ["edge", "partner", "correlation", "class here", "next partners"];
    if (withNull) { heads.push("beyond the null (0.1%)"); }
    if (withOthers) { heads.push("other criteria"); }
    heads.forEach(function (c) { hr.appendChild(el("th", {"class": "l"}, c)); });
    lt.appendChild(hr);
    info.edges.forEach(function (e, k) {
      var p = f.partners[k], tr = el("tr");
      tr.appendChild(el("td", {"class": "l"}, e.label));
      var pc = el("td", {"class": "l"});
      if (p && p[0] >= 0) { pc.appendChild(el("a", {href: "../" + e.other + "/feature.html#" + p[0]}, e.other + " #" + p[0])); }
      tr.appendChild(pc);
      tr.appendChild(el("td", null, p ? fmt(p[1], 3) : ""));
      var c = p ? cls(p[2], p[1], e.side, THRESHOLD) : "";
      tr.appendChild(el("td", {"class": "l " + c}, c));
      var more = el("td", {"class": "l"});
      (p ? p[3] : []).forEach(function (q) {
        more.appendChild(el("a", {href: "../" + e.other + "/feature.html#" + q[0]}, "#" + q[0] + " (" + fmt(q[1], 2) + ")"));
        more.appendChild(document.createTextNode(" "));
      });
      tr.appendChild(more);
      if (withNull) {
        // the smallest correlation that the edge's shuffle null reaches by chance for at most 0.1% of features
        var t = e.null ? e.null["rate_0.001"] : null;
        tr.appendChild(el("td", {"class": "l"}, t === null || !p || p[1] === null ? "" :
          (cls(1, p[1], e.side, t) === "persisting" ? "yes" : "no") + " (null at " + fmt(t, 3) + ")"));
      }
      if (withOthers) {
        var oc = el("td", {"class": "l"});
        Object.keys((p && p[4]) || {}).forEach(function (name) {
          var q = p[4][name];
          var verdict = q[0] < 0 || q[1] === null ? "no partner" :
            cls(1, q[1], e.side, THRESHOLD) !== "persisting" ? "below threshold" :
            q[0] === p[0] ? "same partner" : "another partner";
          oc.appendChild(document.createTextNode(name + ": "));
          if (q[0] >= 0) { oc.appendChild(el("a", {href: "../" + e.other + "/feature.html#" + q[0]}, "#" + q[0])); }
          oc.appendChild(document.createTextNode(" (" + fmt(q[1], 2) + ", " + verdict + ") "));
        });
        tr.appendChild(oc);
      }
      lt.appendChild(tr);
    });
    app.appendChild(lt);
    app.appendChild(el("h2", null, "Tokens with the highest mean activation"));
    var tt = el("table");
    f.top_tokens.forEach(function (t) {
      var tr = el("tr");
      tr.appendChild(el("td", {"class": "l"}, JSON.stringify(tokenText(t[0]))));
      tr.appendChild(el("td", null, fmt(t[1], 3)));
      tt.appendChild(tr);
    });
    app.appendChild(tt);
    if (f.logits) {
      app.appendChild(el("h2", null, "Logit effect (direct path through the unembedding)"));
      var lg = el("table"), head = el("tr");
      ["promoted", "", "suppressed", ""].forEach(function (c) { head.appendChild(el("th", {"class": "l"}, c)); });
      lg.appendChild(head);
      f.logits[0].forEach(function (up, i) {
        var dn = f.logits[1][i], tr = el("tr");
        tr.appendChild(el("td", {"class": "l"}, JSON.stringify(tokenText(up[0]))));
        tr.appendChild(el("td", null, fmt(up[1], 3)));
        tr.appendChild(el("td", {"class": "l"}, JSON.stringify(tokenText(dn[0]))));
        tr.appendChild(el("td", null, fmt(dn[1], 3)));
        lg.appendChild(tr);
      });
      app.appendChild(lg);
    }
    app.appendChild(el("h2", null, "Activation histogram (active positions)"));
    var plot = el("div", {id: "hist", style: "width:40em;height:16em"});
    app.appendChild(plot);
    if (window.Plotly) {
      var edges = f.hist.map(function (_, i) { return (i + 0.5) * f.max / f.hist.length; });
      window.Plotly.newPlot(plot, [{type: "bar", x: edges, y: f.hist, marker: {color: "#d62728"}}], histogramLayout(f.hist),
        {displayModeBar: false, staticPlot: true});
    }
    app.appendChild(el("h2", null, "Top-activating contexts"));
    f.contexts.forEach(function (ctx) {
      var div = el("div", {"class": "snippet", title: "sample block " + ctx.block + " (" + ctx.corpus + ")"});
      ctx.tokens.forEach(function (t, i) {
        var a = ctx.acts[i], span = el("span", {"class": "tok"}, tokenText(t));
        if (a > 0) {
          span.style.background = "rgba(214,39,40," + Math.min(1, a / f.max).toFixed(2) + ")";
          span.title = a.toFixed(3);
        }
        div.appendChild(span);
      });
      app.appendChild(div);
    });
  }

  function start() {
    var app = document.getElementById("app");
    var page = app.getAttribute("data-page");
    if (typeof THRESHOLD !== "number") { app.appendChild(el("p", null, "missing ../assets/threshold.js (rerun snakemake)")); return; }
    if (page === "index") { renderIndex(app, window.FF_INDEX); return; }
    var info = window.FF_INFO;
    function show() {
      while (app.firstChild) { app.removeChild(app.firstChild); }
      var id = parseInt(location.hash.slice(1), 10);
      if (isNaN(id) || id < 0 || id >= info.d_sae) { app.appendChild(el("p", null, "no such feature; see the index")); return; }
      var chunk = Math.floor(id / info.chunk);
      var name = "data/chunk_" + ("0000" + chunk).slice(-5) + ".js";
      var ready = function () { renderFeature(app, info.model, id, window.FF_CHUNKS[chunk][id - chunk * info.chunk], info); };
      window.FF_CHUNKS = window.FF_CHUNKS || {};
      if (window.FF_CHUNKS[chunk]) { ready(); } else { loadScript(name, ready); }
    }
    window.onhashchange = show;
    show();
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
