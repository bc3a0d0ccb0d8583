// What kbatch's page scripts share: elements by id, numbers in English, and elements built
// with their text set as text (never as HTML). Defines the one global `kb`.
"use strict";
window.kb = (function () {
  const fmt = new Intl.NumberFormat("en");
  return {
    $: (id) => document.getElementById(id),
    num: (n) => (n === null || n === undefined ? "–" : fmt.format(n)),
    el: (tag, attrs, ...children) => {
      const e = document.createElement(tag);
      for (const [k, v] of Object.entries(attrs || {})) {
        if (k === "class") e.className = v;
        else if (k === "text") e.textContent = v;
        else e.setAttribute(k, v);
      }
      for (const c of children) e.append(c);
      return e;
    },
  };
})();
