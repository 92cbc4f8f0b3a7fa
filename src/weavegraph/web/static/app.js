// weavegraph web view: start runs, watch their events live (EventSource), browse sessions, see the
// graph. Vanilla JS, no external resources: the page must work on machines without internet.
"use strict";

const $ = (id) => document.getElementById(id);
const tokenInput = $("token");
tokenInput.value = localStorage.getItem("weavegraph-token") || "";
tokenInput.addEventListener("change", () => localStorage.setItem("weavegraph-token", tokenInput.value));

let source = null;
let llmStream = null;

function authHeaders(extra) {
  const headers = Object.assign({}, extra || {});
  if (tokenInput.value) headers["Authorization"] = "Bearer " + tokenInput.value;
  return headers;
}

async function api(path, options) {
  const opts = Object.assign({}, options || {});
  opts.headers = authHeaders(opts.headers);
  const response = await fetch(path, opts);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || response.status + " " + response.statusText);
  return body;
}

function setStatus(text, cls) {
  const status = $("status");
  status.textContent = text;
  status.className = cls || "";
}

function cell(text, cls) {
  const span = document.createElement("span");
  span.textContent = text;
  if (cls) span.className = cls;
  return span;
}

function showEvent(event) {
  const list = $("events");
  const item = document.createElement("li");
  item.dataset.seq = event.seq;
  item.dataset.type = event.type;
  const isEnd = event.scope === "__weavegraph_stream_end__";
  const where = isEnd ? "stream end"
    : (event.metadata && event.metadata.node_id ? event.metadata.node_id : event.scope);
  item.append(
    cell(String(event.seq), "seq"),
    cell(event.type, "t-" + event.type),
    cell(where),
    cell(isEnd ? "end: " + event.message : event.message, isEnd ? "end" : ""),
  );
  list.append(item);
  list.scrollTop = list.scrollHeight;
  if (event.type === "llm" && event.scope === "chunk") {
    // One box per model stream: a new stream (e.g. the next revision) replaces the text.
    const stream = (event.metadata && event.metadata.stream_id) || "";
    if (stream !== llmStream) { $("llm").textContent = ""; llmStream = stream; }
    $("llm").textContent += event.message;
  }
  if (event.metadata && event.metadata.node_id) highlightNode(event.metadata.node_id);
  if (event.type === "diagnostic" && event.scope === "interrupt") showQuestion(event);
}

// A node called ctx.interrupt(value): the session waits; answering re-runs that node with it.
let askingSession = null;

function showQuestion(event) {
  askingSession = event.session_id;
  $("ask-question").textContent = JSON.stringify(event.metadata.value);
  $("answer-error").textContent = "";
  $("ask").hidden = false;
}

async function sendAnswer() {
  const text = $("answer").value;
  let value = text;
  try { value = JSON.parse(text); } catch (_) { /* not JSON: the text itself */ }
  $("send-answer").disabled = true;
  try {
    const started = await api("api/runs", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ session_id: askingSession, answer: value }),
    });
    startStream(started.session_id);
  } catch (error) {
    $("answer-error").textContent = String(error.message || error);
  } finally {
    $("send-answer").disabled = false;
  }
}

function startStream(sessionId) {
  if (source) source.close();
  $("ask").hidden = true;
  $("events").replaceChildren();
  $("llm").textContent = "";
  llmStream = null;
  $("run-session").textContent = sessionId;
  setStatus("running " + sessionId, "running");
  let url = "api/runs/" + encodeURIComponent(sessionId) + "/events";
  // EventSource cannot send headers, so the token travels as a query parameter on this route.
  if (tokenInput.value) url += "?token=" + encodeURIComponent(tokenInput.value);
  source = new EventSource(url);
  source.onmessage = (message) => {
    const event = JSON.parse(message.data);
    showEvent(event);
    if (event.scope === "__weavegraph_stream_end__") {
      const status = /status=(\w+)/.exec(event.message);
      setStatus((status ? statusLabel(status[1]) : "done") + " " + sessionId, status ? status[1] : "");
      source.close();
      source = null;
      loadSessions();
    }
  };
  source.onerror = () => {
    // EventSource reconnects by itself, sending Last-Event-ID, so no event is lost or repeated.
    if (source && source.readyState === EventSource.CLOSED) setStatus("disconnected", "error");
  };
}

async function startRun() {
  $("start-error").textContent = "";
  const body = { input: $("input").value };
  const sessionId = $("session-id").value.trim();
  if (sessionId) body.session_id = sessionId;
  $("start").disabled = true;
  try {
    const answer = await api("api/runs", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    startStream(answer.session_id);
  } catch (error) {
    $("start-error").textContent = String(error.message || error);
  } finally {
    $("start").disabled = false;
  }
}

// "interrupted" means the session waits for a person; a stopped run is shown as "stopped".
function statusLabel(status) {
  return status === "interrupted" ? "waiting for an answer" : String(status || "unknown");
}

async function loadSessions() {
  try {
    const answer = await api("api/sessions");
    const list = $("sessions");
    list.replaceChildren();
    for (const info of answer.sessions) {
      const item = document.createElement("li");
      item.textContent =
        info.session_id + "  · " + statusLabel(info.status) + "  · step " + info.latest_step +
        "  · " + info.updated_at;
      item.addEventListener("click", () => showSession(info.session_id));
      list.append(item);
    }
  } catch (error) {
    $("session-detail").textContent = String(error.message || error);
  }
}

async function showSession(sessionId) {
  try {
    const answer = await api("api/sessions/" + encodeURIComponent(sessionId));
    $("session-detail").textContent = JSON.stringify(answer, null, 2);
  } catch (error) {
    $("session-detail").textContent = String(error.message || error);
  }
}

// --- graph: a layered drawing computed here (no mermaid renderer is available offline) ----------

function layers(graph) {
  const depth = {};
  depth[graph.start] = 0;
  const order = [graph.start];
  // Longest-path layering over forward edges only: an edge to a node already placed is a loop back.
  for (let i = 0; i < order.length; i++) {
    const node = order[i];
    for (const edge of graph.edges) {
      if (edge.source !== node) continue;
      if (!(edge.target in depth)) {
        depth[edge.target] = depth[node] + 1;
        order.push(edge.target);
      }
    }
  }
  for (const node of graph.nodes) if (!(node in depth)) depth[node] = 1;
  const rows = [];
  for (const [node, d] of Object.entries(depth)) (rows[d] = rows[d] || []).push(node);
  return rows.filter(Boolean);
}

function drawGraph(graph) {
  const ns = "http://www.w3.org/2000/svg";
  const rows = layers(graph);
  const width = 560, rowHeight = 64, boxH = 28;
  const pos = {};
  rows.forEach((row, r) => row.forEach((node, i) => {
    pos[node] = { x: ((i + 0.5) * width) / row.length, y: 22 + r * rowHeight };
  }));
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 " + width + " " + (rows.length * rowHeight + 10));
  for (const edge of graph.edges) {
    const a = pos[edge.source], b = pos[edge.target];
    if (!a || !b) continue;
    const path = document.createElementNS(ns, "path");
    const back = b.y <= a.y;
    const bend = back ? Math.max(a.x, b.x) + 90 : (a.x + b.x) / 2;
    path.setAttribute("d", "M" + a.x + "," + (a.y + boxH / 2) + " Q" + bend + "," +
      (a.y + b.y) / 2 + " " + b.x + "," + (b.y - boxH / 2));
    path.setAttribute("class", "edge" + (edge.kind === "conditional" ? " conditional" : ""));
    svg.append(path);
  }
  for (const [node, p] of Object.entries(pos)) {
    const group = document.createElementNS(ns, "g");
    const virtual = node === graph.start || node === graph.end;
    group.setAttribute("class", "node" + (virtual ? " virtual" : ""));
    group.dataset.node = node;
    const w = Math.max(70, node.length * 7.5 + 16);
    const rect = document.createElementNS(ns, "rect");
    rect.setAttribute("x", p.x - w / 2); rect.setAttribute("y", p.y - boxH / 2);
    rect.setAttribute("width", w); rect.setAttribute("height", boxH);
    rect.setAttribute("rx", virtual ? 14 : 5);
    const text = document.createElementNS(ns, "text");
    text.setAttribute("x", p.x); text.setAttribute("y", p.y + 4);
    text.setAttribute("text-anchor", "middle");
    text.textContent = node;
    group.append(rect, text);
    svg.append(group);
  }
  $("graph").replaceChildren(svg);
}

function highlightNode(node) {
  for (const group of document.querySelectorAll("#graph .node")) {
    group.classList.toggle("active", group.dataset.node === node);
  }
}

async function loadGraph() {
  try {
    const graph = await api("api/graph?format=json");
    $("mermaid").textContent = graph.mermaid;
    drawGraph(graph);
  } catch (error) {
    $("graph").textContent = String(error.message || error);
  }
}

$("start").addEventListener("click", startRun);
$("send-answer").addEventListener("click", sendAnswer);
$("refresh").addEventListener("click", loadSessions);
loadGraph();
loadSessions();
