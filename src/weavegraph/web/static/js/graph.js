// The graph, drawn here as layered SVG (no mermaid renderer is available offline): nodes by
// longest forward path from START, loops drawn as curves on the side.
const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  return node;
}

// Longest-path layers over the forward edges (a depth-first walk from START finds the loops).
function layers(graph) {
  const next = {};
  for (const edge of graph.edges) (next[edge.source] = next[edge.source] || []).push(edge.target);
  const seen = {}, back = new Set(), order = [];
  const walk = (node) => {
    seen[node] = 1;
    for (const target of next[node] || []) {
      if (seen[target] === 1) back.add(node + "\u0000" + target);
      else if (!seen[target]) walk(target);
    }
    seen[node] = 2;
    order.push(node);
  };
  walk(graph.start);
  for (const node of graph.nodes) if (!seen[node]) walk(node);
  const depth = {};
  for (const node of order.reverse()) { // a topological order of the forward edges
    depth[node] = depth[node] || 0;
    for (const target of next[node] || []) {
      if (!back.has(node + "\u0000" + target)) depth[target] = Math.max(depth[target] || 0, depth[node] + 1);
    }
  }
  if (graph.end in depth) {
    const others = Object.entries(depth).filter(([n]) => n !== graph.end).map(([, d]) => d);
    depth[graph.end] = Math.max(depth[graph.end], ...others.map((d) => d + 1));
  }
  const rows = [];
  for (const node of graph.nodes) if (node in depth) (rows[depth[node]] = rows[depth[node]] || []).push(node);
  return rows.filter(Boolean);
}

export function drawGraph(container, graph) {
  const rows = layers(graph);
  const width = 380, rowHeight = 58, boxH = 26;
  const pos = {};
  rows.forEach((row, r) => row.forEach((node, i) => {
    pos[node] = { x: ((i + 0.5) * width) / row.length, y: 20 + r * rowHeight };
  }));
  const root = svg("svg", { viewBox: "0 0 " + width + " " + (rows.length * rowHeight), role: "img",
    "aria-label": "the graph" });
  const defs = svg("defs");
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 8 8", refX: "7", refY: "4",
    markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" });
  marker.append(svg("path", { d: "M0,0 L8,4 L0,8 z" }));
  defs.append(marker);
  root.append(defs);
  for (const edge of graph.edges) {
    const a = pos[edge.source], b = pos[edge.target];
    if (!a || !b) continue;
    const back = b.y <= a.y;
    let d;
    if (edge.source === edge.target) { // a node that runs again: a small loop on its right
      const x = a.x + 34;
      d = "M" + x + "," + (a.y - 6) + " C" + (x + 30) + "," + (a.y - 22) + " " + (x + 30) + "," + (a.y + 22) + " " + (x + 2) + "," + (a.y + 7);
    } else if (back) { // a loop back: out of the right side and in again
      const side = Math.min(width - 6, Math.max(a.x, b.x) + 95);
      d = "M" + (a.x + 30) + "," + a.y + " C" + side + "," + a.y + " " + side + "," + b.y + " " + (b.x + 32) + "," + b.y;
    } else {
      const mid = (a.y + b.y) / 2;
      d = "M" + a.x + "," + (a.y + boxH / 2) + " C" + a.x + "," + mid + " " + b.x + "," + mid + " " +
        b.x + "," + (b.y - boxH / 2 - 1);
    }
    root.append(svg("path", { d, class: "edge" + (edge.kind === "conditional" ? " conditional" : ""),
      "marker-end": "url(#arrow)" }));
  }
  for (const [node, p] of Object.entries(pos)) {
    const virtual = node === graph.start || node === graph.end;
    const group = svg("g", { class: "node" + (virtual ? " virtual" : "") });
    group.dataset.node = node;
    const label = node;
    const w = Math.max(64, label.length * 7.4 + 18);
    group.append(svg("rect", { x: p.x - w / 2, y: p.y - boxH / 2, width: w, height: boxH, rx: virtual ? 13 : 6 }));
    const text = svg("text", { x: p.x, y: p.y + 4, "text-anchor": "middle" });
    text.textContent = label;
    group.append(text);
    root.append(group);
  }
  container.replaceChildren(root);
}

// running: the node running now; asking: the node waiting for an answer (or null);
// ran / next: the selected step's nodes and frontier.
export function markGraph(container, { running, asking, ran, next }) {
  const ranSet = new Set(ran || []), nextSet = new Set(next || []);
  for (const group of container.querySelectorAll(".node")) {
    const node = group.dataset.node;
    group.classList.toggle("active", node === running);
    group.classList.toggle("asking", node === asking);
    group.classList.toggle("ran", ranSet.has(node));
    group.classList.toggle("next", nextSet.has(node) && node !== running);
  }
}
