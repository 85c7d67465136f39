/* The click-a-cell mapper: pick a cell, choose a figure from lists in words, preview it, add it to the draft.
   Vanilla JS, no library. The draft is the mapping's JSON (the same file format as YAML); the server checks
   and saves it. */
(function () {
  "use strict";
  var form = document.getElementById("mapper-form");
  var grid = document.getElementById("mapper-grid");
  if (!form || !grid) { return; }

  var choices = JSON.parse(document.getElementById("mapper-choices").textContent);
  // The page's words, translated by the server: say("would_get", {cell: ..., value: ...}) fills %(name)s.
  var wordsBox = document.getElementById("mapper-words");
  var phrases = wordsBox ? JSON.parse(wordsBox.textContent) : {};
  function say(key, values) {
    return String(phrases[key] || key).replace(/%\((\w+)\)s/g, function (all, name) {
      return values && Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : all;
    });
  }
  var draftBox = document.getElementById("draft");
  var draft;
  try { draft = JSON.parse(draftBox.value || "{}"); } catch (e) { draft = {}; }
  draft.cells = draft.cells || [];
  var sheet = grid.getAttribute("data-sheet");
  var chosen = null;
  var $ = function (id) { return document.getElementById(id); };
  var kindSelect = $("pick-kind"), fieldSelect = $("pick-field"), itemSelect = $("pick-item");
  var measureSelect = $("pick-measure"), categorySelect = $("pick-category"), scopeSelect = $("pick-scope");
  var periodSelect = $("pick-period"), preview = $("preview"), addButton = $("add-cell"), note = $("cell-note");

  function kindOf(name) {
    for (var i = 0; i < choices.kinds.length; i++) { if (choices.kinds[i].name === name) { return choices.kinds[i]; } }
    return null;
  }

  function fill(select, options, first) {
    select.innerHTML = "";
    if (first) { select.appendChild(new Option(first[1], first[0])); }
    options.forEach(function (pair) { select.appendChild(new Option(pair[1], pair[0])); });
  }

  function show(name, visible) {
    form.querySelectorAll('[data-for="' + name + '"]').forEach(function (el) { el.hidden = !visible; });
  }

  function onKind() {
    var kind = kindOf(kindSelect.value);
    show("field", !kind);
    show("figure", !!kind);
    show("category", !!(kind && kind.categories.length));
    show("scope", !!(kind && kind.scopes.length));
    if (kind) {
      $("pick-item-label").textContent = say("which", { item: kind.item_label });
      fill(itemSelect, kind.items);
      fill(measureSelect, kind.measures);
      fill(categorySelect, kind.categories, ["", say("total")]);
      fill(scopeSelect, kind.scopes);
    }
  }

  // "RESULTS FRAMEWORK" -> RESULTS FRAMEWORK!D19; a name with ! or ' is quoted as Excel does.
  function target(cell) {
    var name = /[!']/.test(sheet) ? "'" + sheet.replace(/'/g, "''") + "'" : sheet;
    return name + "!" + cell;
  }

  function normal(t) {
    var at = t.lastIndexOf("!");
    if (at < 0) { return t.toLowerCase(); }
    var name = t.slice(0, at).replace(/^'(.*)'$/, "$1").replace(/''/g, "'");
    return (name + "!" + t.slice(at + 1).replace(/\$/g, "")).toLowerCase();
  }

  function entry() {
    var kind = kindOf(kindSelect.value);
    var e = { target: chosen ? target(chosen) : "" };
    if (!kind) {
      e.source = fieldSelect.value;
    } else {
      e.figure = kind.name;
      e.item = itemSelect.value;
      e.measure = measureSelect.value;
      if (kind.categories.length && categorySelect.value) { e.category = categorySelect.value; }
      if (kind.scopes.length && scopeSelect.value) { e.scope = scopeSelect.value; }
    }
    if (periodSelect.value) { e.period = parseInt(periodSelect.value, 10); }
    return e;
  }

  function words(e) {
    var text;
    if (e.source) {
      text = e.source;
      choices.fields.forEach(function (pair) { if (pair[0] === e.source) { text = pair[1]; } });
    } else {
      var kind = kindOf(e.figure);
      var measure = e.measure;
      if (kind) { kind.measures.forEach(function (m) { if (m[0] === e.measure) { measure = m[1]; } }); }
      text = (kind ? kind.title : e.figure) + " " + e.item + ": " + measure;
      var extra = [];
      if (e.category) { extra.push(e.category); }
      if (e.scope && kind) { kind.scopes.forEach(function (s) { if (s[0] === e.scope) { extra.push(s[1]); } }); }
      if (extra.length) { text += " (" + extra.join(", ") + ")"; }
    }
    if (e.period) { text = say("period", { figure: text, period: e.period }); }
    if (e.formula) { text = say("formula", { formula: e.formula }); }
    return text;
  }

  var pending = 0;
  function refreshPreview() {
    if (!chosen) { return; }
    var e = entry();
    var grant = form.getAttribute("data-grant");
    if (!grant) { preview.textContent = say("choose_grant"); return; }
    var params = new URLSearchParams({ grant: grant, period: form.getAttribute("data-period") });
    ["source", "figure", "item", "measure", "category", "scope"].forEach(function (k) { if (e[k]) { params.set(k, e[k]); } });
    if (e.period) { params.set("period_choice", String(e.period)); }
    var ticket = ++pending;
    preview.textContent = say("looking_up");
    fetch(form.getAttribute("data-preview") + "?" + params.toString(), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        if (ticket !== pending) { return; }
        if (data.ok) {
          preview.textContent = say("would_get", { cell: chosen, value: data.words, period: data.period });
        } else {
          preview.textContent = say("not_available", { problems: data.problems.join("; ") });
        }
      })
      .catch(function () { if (ticket === pending) { preview.textContent = say("lookup_failed"); } });
  }

  function buttonFor(cell) { return grid.querySelector('button[data-cell="' + cell + '"]'); }

  function select(button) {
    var previous = chosen && buttonFor(chosen);
    if (previous) { previous.setAttribute("aria-pressed", "false"); }
    chosen = button.getAttribute("data-cell");
    button.setAttribute("aria-pressed", "true");
    $("chosen-cell").textContent = target(chosen);
    var marks = (button.getAttribute("data-marks") || "").split(" ");
    var blocked = marks.indexOf("formula") >= 0 ? "formula_cell" : marks.indexOf("locked") >= 0 ? "locked_cell" : "";
    note.textContent = blocked ? say(blocked, { cell: chosen }) : "";
    addButton.disabled = !!blocked;
    var existing = find(target(chosen));
    if (existing >= 0) { load(draft.cells[existing]); }
    refreshPreview();
  }

  function load(e) {
    kindSelect.value = e.figure || "field";
    onKind();
    if (e.source) { fieldSelect.value = e.source; }
    if (e.item) { itemSelect.value = e.item; }
    if (e.measure) { measureSelect.value = e.measure; }
    categorySelect.value = e.category || "";
    if (e.scope) { scopeSelect.value = e.scope; }
    periodSelect.value = e.period ? String(e.period) : "";
  }

  function find(t) {
    var key = normal(t);
    for (var i = 0; i < draft.cells.length; i++) { if (normal(draft.cells[i].target) === key) { return i; } }
    return -1;
  }

  function save() { draftBox.value = JSON.stringify(draft); }

  function mark(cell, text) {
    var button = buttonFor(cell);
    if (!button) { return; }
    button.setAttribute("data-mapped", text);
    button.parentNode.classList.toggle("mark-mapped", !!text);
  }

  function renderList() {
    var body = document.querySelector("#mapping-list tbody");
    body.innerHTML = "";
    draft.cells.forEach(function (e, i) {
      var row = body.insertRow();
      row.insertCell().textContent = e.target;
      row.insertCell().textContent = words(e);
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "btn btn-xs btn-default";
      remove.textContent = say("remove");
      remove.setAttribute("aria-label", say("remove_label", { cell: e.target }));
      remove.addEventListener("click", function () {
        var t = draft.cells[i].target;
        draft.cells.splice(i, 1);
        save();
        renderList();
        var at = t.lastIndexOf("!");
        if (normal(t.slice(0, at) + "!x") === normal(target("x"))) { mark(t.slice(at + 1).replace(/\$/g, "").toUpperCase(), ""); }
      });
      row.insertCell().appendChild(remove);
    });
  }

  grid.addEventListener("click", function (event) {
    var button = event.target.closest("button.cell");
    if (button) { select(button); }
  });
  kindSelect.addEventListener("change", function () { onKind(); refreshPreview(); });
  [fieldSelect, itemSelect, measureSelect, categorySelect, scopeSelect, periodSelect].forEach(function (el) {
    el.addEventListener("change", refreshPreview);
  });
  addButton.addEventListener("click", function () {
    if (!chosen) { return; }
    var e = entry();
    var at = find(e.target);
    if (at >= 0) { draft.cells[at] = e; } else { draft.cells.push(e); }
    save();
    renderList();
    mark(chosen, words(e));
    preview.textContent = say("now_gets", { cell: target(chosen), value: words(e) });
  });

  onKind();
  renderList();
})();
