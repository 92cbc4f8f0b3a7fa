// weavegraph studio: start runs, browse sessions, replay and follow a session's events, inspect
// any step, answer, edit, fork and cancel. Vanilla JS modules, no external resources: the page
// works on machines without internet, under a Content-Security-Policy without inline scripts.
// The URL names what is shown (?session=ID&step=N), so a reload or a link keeps the view.
import { api, getToken, setToken } from "./js/api.js";
import { $, showError } from "./js/dom.js";
import { drawGraph } from "./js/graph.js";
import { SessionList } from "./js/sessions.js";
import { SessionView } from "./js/view.js";

function setConnection(state, error) {
  const node = $("connection");
  node.className = "connection " + (state === "live" ? "live" : state === "down" ? "down" : "");
  node.textContent = state === "live" ? "● following events" : state === "down"
    ? "reconnecting… " + String((error && error.message) || "") : "○ idle";
}

const sessions = new SessionList((id) => navigate(id));
const view = new SessionView({
  onChanged: () => sessions.load(),
  onNavigate: (id) => navigate(id),
  setConnection,
});

// --- routing: the URL names the session and step -------------------------------------------

function navigate(id, step) {
  const url = new URL(location.href);
  url.search = "";
  if (id) url.searchParams.set("session", id);
  if (id && step !== undefined && step !== null) url.searchParams.set("step", String(step));
  history.pushState(null, "", url);
  route();
}

function route() {
  const params = new URLSearchParams(location.search);
  const id = params.get("session");
  const stepText = params.get("step");
  const step = stepText !== null && /^\d+$/.test(stepText) ? Number(stepText) : null;
  sessions.select(id);
  $("start-view").hidden = Boolean(id);
  $("session-view").hidden = !id;
  document.title = id ? id + " · weavegraph studio" : "weavegraph studio";
  if (id) view.open(id, step);
  else { view.close(); $("inspector").hidden = true; setConnection("idle"); }
}

window.addEventListener("popstate", route);

// --- starting a run ------------------------------------------------------------------------

let startMode = "input";

function setStartMode(mode) {
  startMode = mode;
  $("start-mode-input").classList.toggle("selected", mode === "input");
  $("start-mode-state").classList.toggle("selected", mode === "state");
  $("input").hidden = mode !== "input";
  $("state-input").hidden = mode !== "state";
}

async function startRun() {
  showError($("start-error"), null);
  const body = {};
  if (startMode === "input") body.input = $("input").value;
  else {
    try { body.state = JSON.parse($("state-input").value); } catch (error) {
      showError($("start-error"), "the state is not JSON: " + error.message);
      return;
    }
  }
  const sessionId = $("session-id").value.trim();
  if (sessionId) body.session_id = sessionId;
  $("start").disabled = true;
  try {
    const started = await api("api/runs", body);
    await sessions.load();
    navigate(started.session_id);
  } catch (error) {
    showError($("start-error"), error);
  } finally {
    $("start").disabled = false;
  }
}

// --- wiring --------------------------------------------------------------------------------

$("token").value = getToken();
$("token").addEventListener("change", () => { setToken($("token").value); sessions.load(); });
$("home").addEventListener("click", (e) => { e.preventDefault(); navigate(null); });
$("new-run").addEventListener("click", () => navigate(null));
$("start-mode-input").addEventListener("click", () => setStartMode("input"));
$("start-mode-state").addEventListener("click", () => setStartMode("state"));
$("start").addEventListener("click", startRun);
$("cancel-run").addEventListener("click", () => view.cancel());
$("continue-run").addEventListener("click", () => view.continueRun());
$("send-answer").addEventListener("click", () => view.answer());
$("edit-state").addEventListener("click", () => view.openEditor());
$("edit-save").addEventListener("click", () => view.saveEdit());
$("edit-close").addEventListener("click", () => { $("edit-panel").hidden = true; });
$("fork-step").addEventListener("click", () => view.openFork());
$("fork-save").addEventListener("click", () => view.fork());
$("fork-close").addEventListener("click", () => { $("fork-panel").hidden = true; });

async function loadGraph() {
  try {
    const graph = await api("api/graph?format=json");
    $("mermaid").textContent = graph.mermaid;
    drawGraph($("graph"), graph);
    view.mark();
  } catch (error) {
    showError($("graph"), error);
  }
}

setConnection("idle");
loadGraph();
sessions.load();
route();
// The list keeps its statuses current (a run started elsewhere, one that ended).
setInterval(() => { if (!document.hidden) sessions.load(); }, 3000);
