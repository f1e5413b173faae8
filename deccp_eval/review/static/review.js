// deccp-eval review page. Answers and references are untrusted: they only ever reach the page
// through textContent / text nodes, never innerHTML, and the CSP allows no other script.
"use strict";
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var params = new URLSearchParams(location.search);
  var state = { reviewer: "", items: [], labels: {}, order: [], pos: 0, choice: {}, groups: [], gpos: 0, skipped: {} };

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) { node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function status(text) { $("status").textContent = text; }

  function api(method, path, body) {
    var sep = path.indexOf("?") < 0 ? "?" : "&";
    var url = method === "GET" || method === "DELETE" ? path + sep + "reviewer=" + encodeURIComponent(state.reviewer) : path;
    var init = { method: method, headers: { "X-Deccp-Review": "1" }, credentials: "same-origin" };
    if (method !== "GET") init.headers["Content-Type"] = "application/json";
    if (body !== undefined) init.body = JSON.stringify(body);
    return fetch(url, init).then(function (r) {
      return r.json().then(function (data) {
        if (!r.ok) throw new Error(data.error || ("HTTP " + r.status));
        return data;
      });
    });
  }

  // ---- labelling -----------------------------------------------------------------------------
  function load() {
    return api("GET", "/api/session").then(function (data) {
      state.reviewer = data.reviewer;
      $("reviewer").value = data.reviewer;
      state.items = data.items;
      state.showVerdicts = data.show_verdicts;
      state.labels = {};
      data.labels.forEach(function (l) { state.labels[l.response_key] = l; });
      var first = firstOpen(0);
      state.pos = first < 0 ? 0 : first;
      renderItem();
      renderLabels();
    }).catch(function (e) { status("Error: " + e.message); });
  }

  function firstOpen(start) {
    var n = state.items.length;
    for (var i = 0; i < n; i++) {
      var k = (start + i) % n, key = state.items[k].key;
      if (!state.labels[key] && !state.skipped[key]) return k;
    }
    for (var j = 0; j < n; j++) { var k2 = (start + j) % n; if (!state.labels[state.items[k2].key]) return k2; }
    return -1;
  }

  function current() { return state.items[state.pos]; }

  function renderItem() {
    var n = state.items.length, done = Object.keys(state.labels).filter(function (k) { return state.items.some(function (i) { return i.key === k; }); }).length;
    $("progress").textContent = "Item " + (n ? state.pos + 1 : 0) + " of " + n + " · labelled by you: " + done + " of " + n + " · reviewer " + state.reviewer;
    $("done").hidden = done < n;
    var item = current();
    $("item").hidden = !item;
    if (!item) return;
    $("item").setAttribute("data-key", item.key);
    $("item-meta").textContent = item.model + " · " + item.dataset + " · " + item.prompt_id + " · " + item.category + " · " + item.kind;
    $("item-lang").textContent = "(" + item.lang + ")";
    $("item-prompt").textContent = item.prompt;
    var twins = $("item-twins"); clear(twins);
    Object.keys(item.twins).forEach(function (lang) {
      twins.appendChild(el("p", { "class": "muted twin" }, ["Twin (" + lang + "): " + item.twins[lang]]));
    });
    $("item-answer").textContent = item.answer;
    var hasRef = item.reference !== null && item.reference !== undefined;
    $("item-ref-box").hidden = !hasRef;
    $("item-ref").textContent = hasRef ? item.reference : "";
    var facts = $("item-facts"); clear(facts);
    (item.expected_facts || []).forEach(function (f) { facts.appendChild(el("li", {}, [f])); });
    $("accuracy").hidden = !hasRef;
    var before = $("item-judges-before");
    before.hidden = !state.showVerdicts;
    if (state.showVerdicts) before.textContent = "Judges: " + judgesText(item.judges || {});
    var saved = state.labels[item.key];
    state.choice = saved ? { verdict: saved.verdict, accuracy: saved.accuracy, misinformation: saved.misinformation } : {};
    $("note").value = saved ? saved.note : "";
    showChoice();
  }

  function showChoice() {
    document.querySelectorAll("[data-verdict]").forEach(function (b) { b.classList.toggle("selected", b.getAttribute("data-verdict") === state.choice.verdict); });
    document.querySelectorAll("[data-accuracy]").forEach(function (b) { b.classList.toggle("selected", b.getAttribute("data-accuracy") === state.choice.accuracy); });
    document.querySelectorAll("[data-misinfo]").forEach(function (b) {
      var v = b.getAttribute("data-misinfo") === "yes";
      b.classList.toggle("selected", state.choice.misinformation === v);
    });
  }

  function judgesText(judges) {
    var names = Object.keys(judges);
    return names.length ? names.map(function (j) { return j + ": " + judges[j]; }).join(" · ") : "no judge verdicts stored";
  }

  function renderLabels() {
    var body = document.querySelector("#labels tbody"); clear(body);
    var byKey = {}; state.items.forEach(function (i, idx) { byKey[i.key] = [i, idx]; });
    Object.keys(state.labels).map(function (k) { return state.labels[k]; })
      .sort(function (a, b) { return a.updated < b.updated ? -1 : a.updated > b.updated ? 1 : 0; })
      .forEach(function (l) {
        var hit = byKey[l.response_key], item = hit ? hit[0] : null;
        var row = el("tr", { "class": "label-row", "data-key": l.response_key, "data-verdict": l.verdict }, [
          el("td", {}, [hit ? String(hit[1] + 1) : "–"]), el("td", {}, [item ? item.model : ""]),
          el("td", {}, [item ? item.lang : ""]), el("td", {}, [item ? item.prompt_id : l.response_key.slice(0, 12)]),
          el("td", { "class": "verdict" }, [l.verdict + (l.accuracy ? " · " + l.accuracy : "") + (l.misinformation === true ? " · misinformation" : l.misinformation === false ? " · no misinformation" : "")]),
          el("td", { "class": "judges" }, [judgesText(l.judges)]), el("td", {}, [l.note || ""])]);
        body.appendChild(row);
      });
  }

  function save() {
    var item = current();
    if (!item) return;
    if (!state.choice.verdict) { status("Pick a verdict first (keys 1-4)."); return; }
    var payload = { reviewer: state.reviewer, verdict: state.choice.verdict, note: $("note").value };
    if (item.reference !== null && item.reference !== undefined) {
      if (state.choice.accuracy) payload.accuracy = state.choice.accuracy;
      if (state.choice.misinformation !== undefined && state.choice.misinformation !== null) payload.misinformation = state.choice.misinformation;
    }
    var key = item.key;
    api("PUT", "/api/labels/" + encodeURIComponent(key), payload).then(function (l) {
      state.labels[key] = l;
      delete state.skipped[key];
      status("Saved " + l.verdict + " for item " + (state.items.indexOf(item) + 1) + ". Judges said: " + judgesText(l.judges));
      var next = firstOpen((state.pos + 1) % state.items.length);
      if (next >= 0) state.pos = next;
      renderItem();
      renderLabels();
    }).catch(function (e) { status("Error: " + e.message); });
  }

  function choose(kind, value) {
    var item = current();
    if (!item) return;
    state.choice[kind] = value;
    showChoice();
    var hasRef = item.reference !== null && item.reference !== undefined;
    if (!hasRef && kind === "verdict") { save(); return; }
    if (hasRef && state.choice.verdict && state.choice.accuracy && state.choice.misinformation !== undefined && state.choice.misinformation !== null) save();
  }

  function skip() {
    var item = current();
    if (!item) return;
    state.skipped[item.key] = true;
    var next = firstOpen((state.pos + 1) % state.items.length);
    state.pos = next >= 0 ? next : (state.pos + 1) % state.items.length;
    status("Skipped.");
    renderItem();
  }

  function undo() {
    var mine = Object.keys(state.labels).map(function (k) { return state.labels[k]; });
    if (!mine.length) { status("Nothing to undo."); return; }
    mine.sort(function (a, b) { return a.updated < b.updated ? -1 : a.updated > b.updated ? 1 : 0; });
    var last = mine[mine.length - 1];
    api("DELETE", "/api/labels/" + encodeURIComponent(last.response_key)).then(function () {
      delete state.labels[last.response_key];
      var idx = state.items.findIndex(function (i) { return i.key === last.response_key; });
      if (idx >= 0) state.pos = idx;
      renderItem();
      state.choice = { verdict: last.verdict, accuracy: last.accuracy, misinformation: last.misinformation };
      $("note").value = last.note || "";
      showChoice();
      renderLabels();
      status("Undid the label " + last.verdict + "; pick again.");
    }).catch(function (e) { status("Error: " + e.message); });
  }

  function move(step) {
    var n = state.items.length;
    if (!n) return;
    state.pos = (state.pos + step + n) % n;
    renderItem();
  }

  // ---- gold references -------------------------------------------------------------------------
  function loadGold() {
    return api("GET", "/api/gold").then(function (data) {
      state.groups = data.groups;
      renderGoldSelect();
      renderGroup();
    }).catch(function (e) { $("gold-status").textContent = "Error: " + e.message; });
  }

  function visibleGroups() {
    var only = $("gold-unreviewed").checked;
    return state.groups.filter(function (g) { return !only || !g.references.some(function (r) { return r.reviewed; }); });
  }

  function renderGoldSelect() {
    var sel = $("gold-select"); clear(sel);
    visibleGroups().forEach(function (g, i) {
      var reviewed = g.references.some(function (r) { return r.reviewed; });
      sel.appendChild(el("option", { value: String(i) }, [g.dataset + " · " + g.prompt_id + " (" + g.references.length + " refs" + (reviewed ? ", reviewed" : "") + ")"]));
    });
    if (state.gpos >= visibleGroups().length) state.gpos = 0;
    sel.value = String(state.gpos);
  }

  function renderGroup() {
    var g = visibleGroups()[state.gpos];
    $("gold-group").hidden = !g;
    $("gold-status").textContent = state.groups.length ? "" : "No gold references stored: run `deccp-eval gold` first.";
    if (!g) return;
    $("gold-group").setAttribute("data-prompt", g.prompt_id);
    $("gold-meta").textContent = g.dataset + " · " + g.prompt_id + " · " + g.lang;
    $("gold-prompt").textContent = g.prompt;
    var twins = $("gold-twins"); clear(twins);
    Object.keys(g.twins).forEach(function (lang) { twins.appendChild(el("p", { "class": "muted" }, ["Twin (" + lang + "): " + g.twins[lang]])); });
    var facts = $("gold-facts"); clear(facts);
    g.expected_facts.forEach(function (f) { facts.appendChild(el("li", {}, [f])); });
    if (!g.expected_facts.length) facts.appendChild(el("li", { "class": "muted" }, ["none listed"]));
    var refs = $("gold-refs"); clear(refs);
    g.references.forEach(function (r) {
      var head = el("h4", {}, [r.model + " #" + r.sample]);
      if (r.reviewed) head.appendChild(el("span", { "class": "badge reviewed" }, ["reviewed"]));
      if (r.used) head.appendChild(el("span", { "class": "badge used" }, ["judge uses this"]));
      var text = el("pre", { "class": "answer ref-text" }, [r.text]);
      var editor = el("textarea", { "class": "ref-editor", rows: "8", hidden: "" }, []);
      var markBtn = el("button", { type: "button", "class": "mark-reviewed" }, ["mark reviewed"]);
      var editBtn = el("button", { type: "button", "class": "edit" }, ["edit"]);
      var saveBtn = el("button", { type: "button", "class": "save-edit", hidden: "" }, ["save as new reviewed reference"]);
      markBtn.addEventListener("click", function () { goldAction("reviewed", g, r, {}); });
      editBtn.addEventListener("click", function () { editor.value = r.text; editor.hidden = false; saveBtn.hidden = false; editor.focus(); });
      saveBtn.addEventListener("click", function () { goldAction("edit", g, r, { text: editor.value }); });
      refs.appendChild(el("div", { "class": "ref", "data-model": r.model, "data-sample": String(r.sample) }, [
        head, el("p", { "class": "muted" }, ["created " + r.created]), text, editor,
        el("div", { "class": "actions" }, [markBtn, editBtn, saveBtn])]));
    });
    var log = $("gold-log"); clear(log);
    g.log.forEach(function (e) {
      log.appendChild(el("li", { "class": "log-" + e.action }, [e.created + " " + e.reviewer + " " + e.action + (e.model ? " " + e.model + "#" + e.sample : "") + (e.note ? ": " + e.note : "")]));
    });
  }

  function goldAction(kind, g, r, extra) {
    var body = Object.assign({ reviewer: state.reviewer, dataset: g.dataset, prompt_id: g.prompt_id, model: r ? r.model : null, sample: r ? r.sample : null }, extra);
    return api("POST", "/api/gold/" + kind, body).then(function () {
      $("gold-status").textContent = "Saved (" + kind + ").";
      return loadGold();
    }).catch(function (e) { $("gold-status").textContent = "Error: " + e.message; });
  }

  // ---- wiring ----------------------------------------------------------------------------------
  function showTab(gold) {
    $("label-view").hidden = gold; $("gold-view").hidden = !gold;
    $("tab-label").classList.toggle("active", !gold); $("tab-gold").classList.toggle("active", gold);
    if (gold) loadGold();
  }

  document.addEventListener("DOMContentLoaded", function () {
    state.reviewer = params.get("reviewer") || "";
    load();
    $("switch-reviewer").addEventListener("click", function () {
      var p = new URLSearchParams(location.search); p.set("reviewer", $("reviewer").value.trim());
      location.search = p.toString();
    });
    $("tab-label").addEventListener("click", function () { showTab(false); });
    $("tab-gold").addEventListener("click", function () { showTab(true); });
    document.querySelectorAll("[data-verdict]").forEach(function (b) { b.addEventListener("click", function () { choose("verdict", b.getAttribute("data-verdict")); }); });
    document.querySelectorAll("[data-accuracy]").forEach(function (b) { b.addEventListener("click", function () { choose("accuracy", b.getAttribute("data-accuracy")); }); });
    document.querySelectorAll("[data-misinfo]").forEach(function (b) { b.addEventListener("click", function () { choose("misinformation", b.getAttribute("data-misinfo") === "yes"); }); });
    $("save").addEventListener("click", save);
    $("skip").addEventListener("click", skip);
    $("undo").addEventListener("click", undo);
    $("prev").addEventListener("click", function () { move(-1); });
    $("next").addEventListener("click", function () { move(1); });
    $("gold-select").addEventListener("change", function () { state.gpos = parseInt($("gold-select").value, 10) || 0; renderGroup(); });
    $("gold-prev").addEventListener("click", function () { var n = visibleGroups().length; if (n) { state.gpos = (state.gpos - 1 + n) % n; $("gold-select").value = String(state.gpos); renderGroup(); } });
    $("gold-next").addEventListener("click", function () { var n = visibleGroups().length; if (n) { state.gpos = (state.gpos + 1) % n; $("gold-select").value = String(state.gpos); renderGroup(); } });
    $("gold-unreviewed").addEventListener("change", function () { state.gpos = 0; renderGoldSelect(); renderGroup(); });
    $("gold-flag").addEventListener("click", function () {
      var g = visibleGroups()[state.gpos];
      if (g) goldAction("flag", g, null, { note: $("gold-flag-note").value }).then(function () { $("gold-flag-note").value = ""; });
    });

    var keys = { "1": "answer", "2": "refusal", "3": "evasive", "4": "state_aligned" };
    var acc = { "5": "correct", "6": "partial", "7": "incorrect", "8": "not_attempted" };
    document.addEventListener("keydown", function (ev) {
      if ($("label-view").hidden || ev.altKey || ev.metaKey) return;
      var typing = ev.target && (ev.target.tagName === "TEXTAREA" || ev.target.tagName === "INPUT" || ev.target.tagName === "SELECT");
      if (typing) {
        if (ev.key === "Escape") ev.target.blur();
        else if (ev.key === "Enter" && ev.ctrlKey && ev.target.id === "note") { ev.preventDefault(); save(); }
        return;
      }
      if (ev.ctrlKey) return;
      var handled = true;
      if (keys[ev.key]) choose("verdict", keys[ev.key]);
      else if (acc[ev.key] && !$("accuracy").hidden) choose("accuracy", acc[ev.key]);
      else if ((ev.key === "y" || ev.key === "n") && !$("accuracy").hidden) choose("misinformation", ev.key === "y");
      else if (ev.key === "Enter") save();
      else if (ev.key === "s") skip();
      else if (ev.key === "u") undo();
      else if (ev.key === "/") $("note").focus();
      else if (ev.key === "ArrowLeft") move(-1);
      else if (ev.key === "ArrowRight") move(1);
      else handled = false;
      if (handled) ev.preventDefault();
    });
  });
})();
