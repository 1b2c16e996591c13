// Cairn explorer: progressive enhancement only. Pages are complete without this script; it
// turns UTC times into local + relative ones, adds copy buttons and the theme toggle, and
// applies live updates from the node's server-sent events (/api/v1/events). Everything from
// the chain is put in the page with textContent, never as markup.
"use strict";
(function () {
  const body = document.body;
  const api = body.dataset.api;
  const decimals = Number(body.dataset.decimals || 8);
  const symbol = body.dataset.symbol || "";

  // ---- theme: the system's unless the user picked one (kept in localStorage)
  const root = document.documentElement;
  const stored = safeStorage("get", "cairn-theme");
  if (stored === "dark" || stored === "light") root.dataset.theme = stored;
  const toggle = document.getElementById("theme-toggle");
  if (toggle) {
    toggle.hidden = false;
    toggle.addEventListener("click", function () {
      const dark = root.dataset.theme
        ? root.dataset.theme === "dark"
        : window.matchMedia("(prefers-color-scheme: dark)").matches;
      root.dataset.theme = dark ? "light" : "dark";
      safeStorage("set", "cairn-theme", root.dataset.theme);
    });
  }
  function safeStorage(op, key, value) {
    try {
      return op === "get" ? localStorage.getItem(key) : localStorage.setItem(key, value);
    } catch (e) {
      return null;
    }
  }

  // ---- times: local time as text, UTC in the title, relative time after it
  function relative(date) {
    const secs = Math.round((Date.now() - date.getTime()) / 1000);
    const abs = Math.abs(secs);
    const [n, unit] =
      abs < 60 ? [abs, "s"] : abs < 3600 ? [Math.floor(abs / 60), "min"] :
      abs < 86400 ? [Math.floor(abs / 3600), "h"] : [Math.floor(abs / 86400), "d"];
    // Block times may run a little ahead of this clock (miners roll them): call that now.
    if (secs > -30 && secs < 5) return "just now";
    return secs >= 0 ? n + " " + unit + " ago" : "in " + n + " " + unit;
  }
  // In tables: the relative time, the local and UTC times in the tooltip. Elsewhere: both.
  function localizeTime(el) {
    const date = new Date(el.getAttribute("datetime"));
    if (isNaN(date.getTime())) return;
    if (!el.dataset.utc) el.dataset.utc = el.textContent;
    const local = date.toLocaleString();
    if (el.closest("td")) {
      el.title = local + " · " + el.dataset.utc;
      el.textContent = relative(date);
    } else {
      el.title = el.dataset.utc;
      el.textContent = local + " (" + relative(date) + ")";
    }
  }
  function localizeAll(scope) {
    scope.querySelectorAll("time[datetime]").forEach(localizeTime);
  }
  localizeAll(document);
  setInterval(function () { localizeAll(document); }, 15000);

  // ---- copy buttons: after every shortened hash link (a.hash, full value in its title) and
  // every full value (code.full[data-copy]); added here, since they need the script anyway.
  function kindOf(href) {
    return href.indexOf("/tx/") === 0 ? "transaction id"
      : href.indexOf("/address/") === 0 ? "address" : "block hash";
  }
  function addCopy(after, value, what) {
    const button = el("button", { class: "copy", type: "button", "aria-label": "Copy " + what, title: "Copy " + what }, []);
    after.insertAdjacentElement("afterend", button);
    button.addEventListener("click", function () {
      const done = function () {
        button.classList.add("done");
        button.title = "Copied";
        setTimeout(function () { button.classList.remove("done"); button.title = "Copy " + what; }, 1500);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(value).then(done, function () {});
      } else {
        const area = document.createElement("textarea");
        area.value = value;
        document.body.appendChild(area);
        area.select();
        try { document.execCommand("copy"); done(); } catch (e) { /* nothing to do */ }
        area.remove();
      }
    });
  }
  function enableCopy(scope) {
    scope.querySelectorAll("a.hash:not([data-ready])").forEach(function (a) {
      a.dataset.ready = "1";
      addCopy(a, a.title, kindOf(a.getAttribute("href") || ""));
    });
    scope.querySelectorAll("code.full[data-copy]:not([data-ready])").forEach(function (code) {
      code.dataset.ready = "1";
      const after = code.parentElement && code.parentElement.tagName === "A" ? code.parentElement : code;
      addCopy(after, code.textContent, code.dataset.copy);
    });
  }

  enableCopy(document);

  // ---- building rows (the same markup as the server's)
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }
  function short(text) {
    return text.length <= 20 ? text : text.slice(0, 10) + "…" + text.slice(-6);
  }
  function hashLink(href, full) {
    return el("a", { class: "hash", href: href, title: full }, [el("code", {}, [short(full)])]);
  }
  function timeTag(secs) {
    const date = new Date(secs * 1000);
    const iso = date.toISOString().replace(/\.\d{3}Z$/, "Z");
    // Localized once it is in the page (it reads differently in a table).
    return el("time", { datetime: iso }, [iso.replace("T", " ").replace("Z", " UTC")]);
  }
  function coins(units) {
    // units may exceed 2^53: work on the decimal string.
    const digits = String(units).padStart(decimals + 1, "0");
    const whole = digits.slice(0, digits.length - decimals).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    const fraction = decimals ? digits.slice(digits.length - decimals).replace(/0+$/, "") : "";
    return el("span", { class: "amount" }, [
      fraction ? whole + "." + fraction : whole, " ", el("span", { class: "unit" }, [symbol]),
    ]);
  }
  function cell(children, cls) {
    return el("td", cls ? { class: cls } : {}, children);
  }
  function prepend(tbody, row) {
    const empty = tbody.querySelector("tr.empty");
    if (empty) empty.remove();
    row.classList.add("fresh");
    tbody.insertBefore(row, tbody.firstChild);
    const max = Number(tbody.dataset.max || 15);
    while (tbody.rows.length > max) tbody.deleteRow(tbody.rows.length - 1);
    enableCopy(row);
    localizeAll(row);
  }
  function blockRow(b) {
    return el("tr", {}, [
      cell([el("a", { href: "/block/" + b.height }, [String(b.height)])]),
      cell([hashLink("/block/" + b.hash, b.hash)]),
      cell([timeTag(b.time)]),
      cell([String(b.transfers)], "num"),
      cell([hashLink("/address/" + b.reward_address, b.reward_address)]),
    ]);
  }
  function mempoolRow(t) {
    return el("tr", { "data-txid": t.txid }, [
      cell([hashLink("/tx/" + t.txid, t.txid)]),
      cell([hashLink("/address/" + t.from, t.from)]),
      cell([hashLink("/address/" + t.to, t.to)]),
      cell([coins(t.amount)], "num"),
      cell([Number(t.fee_rate).toFixed(2)], "num"),
      cell([timeTag(t.added)]),
    ]);
  }
  function setField(name, text, href) {
    document.querySelectorAll('[data-field="' + name + '"]').forEach(function (node) {
      node.textContent = text;
      if (href && node.tagName === "A") node.setAttribute("href", href);
    });
  }
  function replaceChildren(node, children) {
    while (node.firstChild) node.removeChild(node.firstChild);
    children.forEach(function (child) { node.appendChild(child); });
    enableCopy(node);
    localizeAll(node);
  }
  function bytes(n) {
    const units = ["B", "kB", "MB", "GB"];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return (i === 0 ? String(n) : n.toFixed(n >= 100 ? 0 : n >= 10 ? 1 : 2)) + " " + units[i];
  }
  function getJson(path) {
    return fetch(api + path).then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); });
  }

  // ---- live updates
  if (!api || !window.EventSource) return;
  const blocks = document.querySelector('tbody[data-live="blocks"]');
  const pool = document.querySelector('tbody[data-live="mempool"]');
  const status = document.getElementById("live-status");
  // One stream per visible page. A hidden tab or a page left for another closes its stream:
  // browsers allow only ~6 connections to one host, and a stream held by a background tab or
  // a cached page would make the next page wait for a free one.
  let source = null;
  function connect() {
    if (source) return;
    source = new EventSource(api + "/events");
    source.addEventListener("open", function () {
      if (status) { status.hidden = false; status.textContent = "● live"; status.classList.add("on"); }
    });
    source.addEventListener("error", function () {
      if (status) { status.textContent = "○ reconnecting"; status.classList.remove("on"); }
    });
    source.addEventListener("block", onBlock);
    source.addEventListener("transfer", onTransfer);
  }
  function disconnect() {
    if (!source) return;
    source.close();
    source = null;
    if (status) { status.textContent = "○ paused"; status.classList.remove("on"); }
  }
  function resume() {
    connect();
    // Catch up on what happened while the stream was closed.
    if (blocks) refreshBlocks();
    if (pool) refreshMempool();
  }
  window.addEventListener("pagehide", disconnect);
  window.addEventListener("pageshow", function (event) { if (event.persisted) resume(); });
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) disconnect(); else resume();
  });
  connect();
  function onBlock(event) {
    let b;
    try { b = JSON.parse(event.data); } catch (e) { return; }
    if (blocks) {
      // The next block on top: add it. A gap (blocks mined while the page loaded) or a
      // branch switch: reread the latest blocks.
      const top = blocks.querySelector("tr:first-child td:first-child a");
      if (!b.reorg && top && Number(top.textContent) === b.height - 1) {
        prepend(blocks, blockRow(b));
      } else {
        refreshBlocks();
      }
    }
    setField("height", b.height.toLocaleString("en-US"), "/block/" + b.height);
    document.querySelectorAll('[data-field="tip"]').forEach(function (node) {
      replaceChildren(node, [hashLink("/block/" + b.hash, b.hash)]);
    });
    document.querySelectorAll('[data-field="tip-time"]').forEach(function (node) {
      replaceChildren(node, [timeTag(b.time)]);
    });
    if (pool) refreshMempool();
  }
  function refreshBlocks() {
    const max = Number(blocks.dataset.max || 15);
    getJson("/blocks?limit=" + max)
      .then(function (list) {
        const known = {};
        blocks.querySelectorAll("tr td:first-child a").forEach(function (a) { known[a.textContent] = true; });
        const rows = list.map(function (b) {
          const row = blockRow(b);
          if (!known[String(b.height)]) row.classList.add("fresh");
          return row;
        });
        replaceChildren(blocks, rows);
      })
      .catch(function () { /* the next block retries */ });
  }
  function onTransfer(event) {
    let t;
    try { t = JSON.parse(event.data); } catch (e) { return; }
    if (pool && !pool.querySelector('tr[data-txid="' + CSS.escape(t.txid) + '"]')) {
      prepend(pool, mempoolRow(t));
    }
    bumpMempoolCount(1);
    setBytes(function (n) { return n + Number(t.size || 0); });
  }
  function setBytes(update) {
    document.querySelectorAll('[data-field="mempool-bytes"]').forEach(function (node) {
      const n = update(Number(node.dataset.bytes || 0));
      node.dataset.bytes = String(n);
      node.textContent = bytes(n);
    });
  }
  function bumpMempoolCount(delta) {
    document.querySelectorAll('[data-field="mempool-count"]').forEach(function (node) {
      const n = Number(node.textContent.replace(/,/g, "")) + delta;
      if (!isNaN(n)) node.textContent = n.toLocaleString("en-US");
    });
  }
  // A new block takes transfers out of the pool: reread it.
  function refreshMempool() {
    const max = Number(pool.dataset.max || 10);
    getJson("/mempool?limit=" + max)
      .then(function (m) {
        const rows = m.transfers.map(mempoolRow);
        if (!rows.length) {
          rows.push(el("tr", { class: "empty" }, [el("td", { colspan: "6" }, ["The mempool is empty."])]));
        }
        replaceChildren(pool, rows);
        setField("mempool-count", m.count.toLocaleString("en-US"));
        setBytes(function () { return m.bytes; });
      })
      .catch(function () { /* the next block retries */ });
  }
})();
