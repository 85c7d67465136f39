/* Grantkeeper: small helpers on every page (no framework).
   - Tables with one header row become stacked cards on a phone (grantkeeper.css): each cell gets
     its column's name in data-label. Tables with grouped headers scroll inside a region that
     can be reached and scrolled with the keyboard.
   - Links that act as buttons (menus, tabs) also answer the Space key. */
(function () {
  "use strict";
  var main = document.getElementById("main");
  if (!main) { return; }
  /* Words in the page's language, given by the layout (grantkeeper_base.html). */
  var TABLE = main.getAttribute("data-gk-table") || "Table";
  var SCROLLS = main.getAttribute("data-gk-scrolls") || "%(table)s (scrolls sideways)";

  function scrollsName(name) { return SCROLLS.replace("%(table)s", name); }

  /* A header cell's visible words, without the screen-reader-only hints ("(sort)", "(required)"). */
  function visibleText(cell) {
    var copy = cell.cloneNode(true);
    Array.prototype.forEach.call(copy.querySelectorAll(".sr-only"), function (hint) { hint.remove(); });
    return copy.textContent.trim().replace(/\s+/g, " ");
  }

  function headingFor(table) {
    var caption = table.querySelector("caption");
    if (caption) { return caption.textContent.trim(); }
    var node = table.closest(".panel") || table.parentElement;
    var heading = node && node.querySelector("h1, h2, h3, h4, .panel-heading");
    return heading ? heading.textContent.trim().replace(/\s+/g, " ") : TABLE;
  }

  function scrollRegion(table) {
    var box = table.closest(".table-responsive, .gk-scroll");
    if (!box) {
      box = document.createElement("div");
      box.className = "gk-scroll";
      table.parentNode.insertBefore(box, table);
      box.appendChild(table);
    }
    if (!box.hasAttribute("tabindex")) {
      box.setAttribute("tabindex", "0");
      box.setAttribute("role", "region");
      box.setAttribute("aria-label", scrollsName(headingFor(table)));
    }
  }

  Array.prototype.forEach.call(main.querySelectorAll("table"), function (table) {
    if (table.classList.contains("gk-form-table") || table.closest("table table")) { return; }
    var head = table.tHead;
    var simple = head && head.rows.length === 1 && !table.querySelector("[colspan], [rowspan]") &&
      table.getAttribute("data-layout") !== "scroll";
    if (simple) {
      var names = Array.prototype.map.call(head.rows[0].cells, function (cell) {
        return visibleText(cell);
      });
      Array.prototype.forEach.call(table.tBodies, function (body) {
        Array.prototype.forEach.call(body.rows, function (row) {
          Array.prototype.forEach.call(row.cells, function (cell, i) {
            if (!cell.hasAttribute("data-label") && names[i] !== undefined) { cell.setAttribute("data-label", names[i]); }
          });
        });
      });
      table.classList.add("gk-cards");
    } else if (head) {
      scrollRegion(table);
    }
  });

  /* Any remaining box that scrolls sideways can take focus, so the keyboard can scroll it. */
  Array.prototype.forEach.call(main.querySelectorAll(".table-responsive"), function (box) {
    if (box.scrollWidth > box.clientWidth + 1 && !box.hasAttribute("tabindex")) {
      var table = box.querySelector("table");
      box.setAttribute("tabindex", "0");
      box.setAttribute("role", "region");
      box.setAttribute("aria-label", scrollsName(table ? headingFor(table) : TABLE));
    }
  });

  /* select2's own box is named after the label of the select it stands for. */
  function nameSelect2() {
    Array.prototype.forEach.call(document.querySelectorAll("select.select2-hidden-accessible"), function (select) {
      var label = select.id && document.querySelector('label[for="' + select.id + '"]');
      var box = select.nextElementSibling && select.nextElementSibling.querySelector(".select2-selection");
      if (label && box && !box.hasAttribute("aria-label")) {
        box.setAttribute("aria-label", label.textContent.trim().replace(/\s+/g, " ").replace(/\s*\*$/, ""));
      }
    });
  }
  if (window.jQuery) { window.jQuery(nameSelect2); } else { nameSelect2(); }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if ((event.key === " " || event.key === "Spacebar") && target.tagName === "A" &&
        (target.getAttribute("role") === "button" || target.getAttribute("data-toggle"))) {
      event.preventDefault();
      target.click();
    }
  });
})();
