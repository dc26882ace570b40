// ragtune's page: ask a question, show the answer with its cited passages (RAG) or its
// reasoning paths drawn as a graph (RoG). No framework, no network beyond this server.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const KEY_STORE = "ragtune.apiKey";
let health = { model: "ragtune", modes: ["rag"], auth: false };
// the RAG conversation: messages sent with every new question, and the turn now shown
let convo = [];
let shown = null; // {question, text, extra} of the answer in #result

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h.Authorization = "Bearer " + key;
  return h;
}

async function apiError(res) {
  let msg = `${res.status} ${res.statusText}`;
  try {
    const body = await res.json();
    if (body && body.error && body.error.message) msg = body.error.message;
  } catch (_) { /* not JSON */ }
  if (res.status === 401) {
    $("settings").open = true;
    msg += " — enter the key under Settings.";
  }
  const retry = res.headers.get("Retry-After");
  if (res.status === 503 && retry) msg += ` (try again in ${retry} s)`;
  return new Error(msg);
}

// -- server info --------------------------------------------------------------------------

async function loadHealth() {
  try {
    const res = await fetch("/healthz");
    health = await res.json();
  } catch (e) {
    $("status").textContent = "server unreachable";
    return;
  }
  const rog = health.modes.includes("rog");
  $("mode-rog").disabled = !rog;
  $("rog-hint").hidden = rog;
  $("status").textContent =
    `model ${health.model} · modes ${health.modes.join(", ").toUpperCase()}` +
    (health.auth ? " · API key required" : "");
  if (health.auth && !$("api-key").value) $("settings").open = true;
}

// -- asking -------------------------------------------------------------------------------

function mode() {
  return document.querySelector('input[name="mode"]:checked').value;
}

async function readEvents(res, onEvent) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trimStart()).join("\n");
      if (!data) continue;
      if (data === "[DONE]") return;
      onEvent(JSON.parse(data));
    }
  }
}

async function askRag(question) {
  const messages = [...convo, { role: "user", content: question }];
  const res = await fetch("/v1/chat/completions", {
    method: "POST",
    headers: headers(),
    body: JSON.stringify({ model: health.model, messages, stream: true }),
  });
  if (!res.ok) throw await apiError(res);
  let text = "";
  let extra = null;
  await readEvents(res, (ev) => {
    if (ev.error) throw new Error(ev.error.message);
    const choice = ev.choices && ev.choices[0];
    if (choice && choice.delta && choice.delta.content) {
      text += choice.delta.content;
      $("answer").textContent = text;
    }
    if (ev.ragtune) extra = ev.ragtune;
  });
  renderAnswer(text);
  if (extra) renderRag(extra);
  convo = [...messages, { role: "assistant", content: text }];
  shown = { question, text, extra };
}

// the answer on display becomes a turn of the conversation, with its sources
function archiveTurn() {
  if (!shown) return;
  const { question, text, extra } = shown;
  shown = null;
  const cites = el("ol", { class: "turn-cites" });
  const docs = (extra && extra.documents) || [];
  for (const c of (extra && extra.citations) || []) {
    const doc = docs.find((d) => d.n === c.n);
    cites.append(el("li", { class: "turn-cite" }, `[${c.n}] ${where(c)}: `,
      el("mark", {}, doc ? Array.from(doc.text).slice(c.start, c.end).join("") : c.quote)));
  }
  $("turns").append(el("li", { class: "turn" }, el("p", { class: "q" }, question),
    el("p", { class: "a" }, text || "(empty answer)"), cites));
  $("history").hidden = false;
}

function newConversation() {
  convo = [];
  shown = null;
  $("turns").replaceChildren();
  $("history").hidden = true;
  $("result").hidden = true;
  $("question").focus();
}

async function askRog(question) {
  const entities = $("entities").value.split(",").map((s) => s.trim()).filter(Boolean);
  const res = await fetch("/v1/rog", {
    method: "POST",
    headers: headers(),
    body: JSON.stringify(entities.length ? { question, entities } : { question }),
  });
  if (!res.ok) throw await apiError(res);
  renderRog(await res.json());
}

async function submit(event) {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question) {
    $("question").focus();
    return;
  }
  const m = mode();
  if (m === "rag") archiveTurn();
  $("error").hidden = true;
  $("submit").disabled = true;
  $("submit").textContent = "Asking…";
  $("result").hidden = false;
  $("result").setAttribute("aria-busy", "true");
  $("answer").textContent = "";
  $("rag-view").hidden = m !== "rag";
  $("rog-view").hidden = m !== "rog";
  for (const id of ["citations", "documents", "paths", "plans", "graph"]) $(id).replaceChildren();
  $("others").hidden = true;
  try {
    if (m === "rog") await askRog(question);
    else await askRag(question);
  } catch (e) {
    $("error").textContent = e.message || String(e);
    $("error").hidden = false;
    if (!$("answer").textContent) $("result").hidden = true;
  } finally {
    $("submit").disabled = false;
    $("submit").textContent = "Ask";
    $("result").setAttribute("aria-busy", "false");
  }
}

// -- RAG view -----------------------------------------------------------------------------

function renderAnswer(text) {
  // [n] markers become links to the cited passage
  const box = $("answer");
  box.replaceChildren();
  const re = /\[(\d+(?:\s*,\s*\d+)*)\]/g;
  let last = 0;
  let m;
  while ((m = re.exec(text)) !== null) {
    box.append(text.slice(last, m.index));
    const nums = m[1].split(",").map((s) => s.trim());
    box.append("[");
    nums.forEach((n, i) => {
      if (i) box.append(", ");
      box.append(el("a", { href: `#cite-${n}`, class: "ref" }, n));
    });
    box.append("]");
    last = re.lastIndex;
  }
  box.append(text.slice(last));
  if (!text) box.textContent = "(the model gave an empty answer)";
}

function where(d) {
  let s = d.source || d.chunk_id;
  if (d.page) s += ` p.${d.page}`;
  return s;
}

// start/end are Python offsets: code points, not JS's UTF-16 units (an emoji counts 1, not 2)
function passage(text, start, end) {
  const p = el("p", { class: "passage" });
  const cps = Array.from(text);
  if (start >= 0 && end > start && end <= cps.length) {
    const part = (a, b) => cps.slice(a, b).join("");
    p.append(part(0, start), el("mark", {}, part(start, end)), part(end));
  } else {
    p.append(text);
  }
  return p;
}

function renderRag(extra) {
  const docs = extra.documents || [];
  const cited = new Set();
  const list = $("citations");
  for (const c of extra.citations || []) {
    cited.add(c.n);
    const doc = docs.find((d) => d.n === c.n);
    const head = el("div", { class: "cite-head" },
      el("span", { class: "num" }, `[${c.n}]`), " ", el("span", { class: "source" }, where(c)));
    if (c.title) head.append(" — ", el("span", { class: "title" }, c.title));
    head.append(" ", el("span", { class: "score" }, `score ${Number(c.score).toFixed(3)}`));
    const li = el("li", { class: "citation", id: `cite-${c.n}` }, head);
    if (c.method === "overlap") {
      li.append(el("p", { class: "hint" },
        "The model wrote no [n]: attributed by the words the answer shares with this passage."));
    }
    li.append(doc ? passage(doc.text, c.start, c.end) : passage(c.quote, 0, Array.from(c.quote).length));
    list.append(li);
  }
  if (!list.children.length) {
    list.append(el("li", { class: "none" }, "No retrieved passage supports this answer."));
  }
  const rest = docs.filter((d) => !cited.has(d.n));
  for (const d of rest) {
    $("documents").append(el("li", { class: "document" },
      el("div", { class: "cite-head" }, el("span", { class: "num" }, `[${d.n}]`), " ",
        el("span", { class: "source" }, where(d)), " ",
        el("span", { class: "score" }, `score ${Number(d.score).toFixed(3)}`)),
      el("p", { class: "passage" }, d.text)));
  }
  $("others").hidden = rest.length === 0;
}

// -- RoG view -----------------------------------------------------------------------------

const norm = (s) => String(s).trim().toLowerCase();

function renderRog(d) {
  const answers = d.answers || [];
  $("answer").textContent = answers.length ? answers.join("; ")
    : "No answer found in the knowledge graph.";
  const paths = d.paths || [];
  const rendered = d.rendered || paths.map((p) => p.join(" -> "));
  const supporting = new Set(d.supporting || []);
  drawGraph(paths, answers, d.entities || []);
  for (const r of rendered) {
    const li = el("li", {}, el("code", {}, r));
    if (supporting.has(r)) {
      li.className = "supporting";
      li.append(" ", el("span", { class: "badge" }, "supports an answer"));
    }
    $("paths").append(li);
  }
  if (!rendered.length) {
    $("paths").append(el("li", { class: "none" }, "No path in the graph fits the question."));
  }
  for (const p of d.plans || []) {
    const rel = (p.relations || []).join(" → ");
    const ok = p.valid ? "found in the graph" : "not in the graph";
    $("plans").append(el("li", { class: p.valid ? "valid" : "invalid" },
      el("code", {}, rel || "(empty)"), ` · score ${Number(p.score).toFixed(2)} · ${ok}`));
  }
  $("plans-box").hidden = !(d.plans && d.plans.length);
}

const measure = (() => {
  const ctx = document.createElement("canvas").getContext("2d");
  return (text, font) => {
    ctx.font = font;
    return ctx.measureText(text).width;
  };
})();

function clip(s, n = 32) {
  return s.length > n ? s.slice(0, n - 1) + "…" : s;
}

function drawGraph(allPaths, answers, starts) {
  const MAX = 24;
  const paths = allPaths.slice(0, MAX);
  const box = $("graph");
  box.replaceChildren();
  if (!paths.length) return;
  // nodes are (hop, entity): a left-to-right layout by hop, shared prefixes merged
  const cols = [];
  const nodes = new Map();
  const edges = new Map();
  const key = (h, name) => `${h}\u0000${name}`;
  for (const p of paths) {
    for (let i = 0; i < p.length; i += 2) {
      const h = i / 2;
      const k = key(h, p[i]);
      if (!nodes.has(k)) {
        (cols[h] = cols[h] || []).push(k);
        nodes.set(k, { h, name: p[i], row: cols[h].length - 1 });
      }
      if (i + 2 < p.length) {
        const to = key(h + 1, p[i + 2]);
        edges.set(`${k}\u0001${p[i + 1]}\u0001${to}`, { from: k, rel: p[i + 1], to });
      }
    }
  }
  const FONT = "13px system-ui, sans-serif";
  const EFONT = "12px system-ui, sans-serif";
  const ROW = 46, NODE_H = 28, PAD = 16;
  for (const n of nodes.values()) n.w = Math.ceil(measure(clip(n.name), FONT)) + 20;
  const colW = cols.map((c) => Math.max(...c.map((k) => nodes.get(k).w)));
  const gapW = cols.map(() => 0);
  for (const e of edges.values()) {
    const h = nodes.get(e.from).h;
    e.lw = Math.ceil(measure(clip(e.rel, 28), EFONT));
    gapW[h] = Math.max(gapW[h], e.lw + 72);
  }
  const xs = [];
  let x = PAD;
  cols.forEach((_, h) => {
    xs[h] = x;
    x += colW[h] + Math.max(70, gapW[h]);
  });
  const width = xs[cols.length - 1] + colW[cols.length - 1] + PAD;
  const rows = Math.max(...cols.map((c) => c.length));
  const height = rows * ROW + PAD * 2;
  for (const n of nodes.values()) {
    const offset = ((rows - cols[n.h].length) * ROW) / 2;
    n.x = xs[n.h] + (colW[n.h] - n.w) / 2;
    n.y = PAD + offset + n.row * ROW + (ROW - NODE_H) / 2;
  }

  const ans = new Set(answers.map(norm));
  const st = new Set(starts.map(norm));
  const root = svg("svg", {
    width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-labelledby": "graph-title", class: "paths-graph",
  });
  root.append(svg("title", { id: "graph-title" },
    `Reasoning graph: ${paths.length} path${paths.length === 1 ? "" : "s"} over ` +
    `${nodes.size} entities; the same paths are listed as text below.`));
  const defs = svg("defs");
  const marker = svg("marker", {
    id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse",
  });
  marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow-head" }));
  defs.append(marker);
  root.append(defs);

  const edgeLayer = svg("g", { class: "edges" });
  const labelLayer = svg("g", { class: "edge-labels" });
  // each edge: a curve from the source, then a straight run into the target that carries the
  // relation's label (labels of edges into one target stack upwards)
  const into = new Map();
  for (const e of edges.values()) {
    const a = nodes.get(e.from), b = nodes.get(e.to);
    const x1 = a.x + a.w, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2;
    const stack = into.get(e.to) || 0;
    into.set(e.to, stack + 1);
    const xm = Math.max(x1 + 24, x2 - e.lw - 16);
    const dx = (xm - x1) / 2;
    const g = svg("g", { class: "edge" });
    g.append(svg("title", {}, `${a.name} —${e.rel}→ ${b.name}`));
    g.append(svg("path", {
      d: `M${x1},${y1} C${x1 + dx},${y1} ${xm - dx},${y2} ${xm},${y2} L${x2},${y2}`,
      "marker-end": "url(#arrow)",
    }));
    edgeLayer.append(g);
    labelLayer.append(svg("text", {
      x: (xm + x2) / 2, y: y2 - 6 - 14 * stack, "text-anchor": "middle", class: "edge-label",
    }, clip(e.rel, 28)));
  }
  const nodeLayer = svg("g", { class: "nodes" });
  for (const n of nodes.values()) {
    let cls = "node";
    if (ans.has(norm(n.name))) cls += " answer";
    if (n.h === 0 || st.has(norm(n.name))) cls += " start";
    const g = svg("g", { class: cls });
    g.append(svg("title", {}, n.name));
    g.append(svg("rect", { x: n.x, y: n.y, width: n.w, height: NODE_H, rx: 7 }));
    g.append(svg("text", {
      x: n.x + n.w / 2, y: n.y + NODE_H / 2, "text-anchor": "middle",
      "dominant-baseline": "central",
    }, clip(n.name)));
    nodeLayer.append(g);
  }
  root.append(edgeLayer, labelLayer, nodeLayer);
  box.append(root);
  if (allPaths.length > MAX) {
    box.append(el("p", { class: "hint" }, `Drawn: the first ${MAX} of ${allPaths.length} paths.`));
  }
  box.append(el("p", { class: "legend hint" },
    el("span", { class: "key start" }, "topic entity"), " ",
    el("span", { class: "key answer" }, "answer"), " — ~relation: the relation read backwards."));
}

// -- wiring -------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  const keyBox = $("api-key");
  keyBox.value = localStorage.getItem(KEY_STORE) || "";
  keyBox.addEventListener("input", () => {
    const v = keyBox.value.trim();
    if (v) localStorage.setItem(KEY_STORE, v);
    else localStorage.removeItem(KEY_STORE);
  });
  for (const r of document.querySelectorAll('input[name="mode"]')) {
    r.addEventListener("change", () => { $("entities-row").hidden = mode() !== "rog"; });
  }
  $("question").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      $("ask").requestSubmit();
    }
  });
  $("ask").addEventListener("submit", submit);
  $("new-chat").addEventListener("click", newConversation);
  loadHealth();
});
