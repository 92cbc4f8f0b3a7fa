// The event list of one session: stored events replayed, then live ones. Each event is shown once
// (by seq); an LLM stream's chunks fold into one growing message; framework (lifecycle) events
// are hidden unless asked for, but their timings still feed the step timeline.
import { clockTime, el, statusLabel } from "./dom.js";
import { endStatus, isStreamEnd } from "./api.js";

const BAD_ENDS = new Set(["error", "cancelled", "stopped"]);
const MAX_ROWS = 5000;

// Where an event comes from: its node (a subgraph's as "research/search"), else its scope.
function whereOf(event) {
  const node = event.metadata && event.metadata.node_id;
  if (!node) return event.scope;
  return event.namespace ? event.namespace + "/" + node : node;
}

export class EventList {
  constructor(list, counter) {
    this.list = list;
    this.counter = counter;
    this.showLifecycle = false;
    this.reset();
  }

  reset() {
    this.seen = new Set();
    this.streams = new Map(); // stream key -> {row, text}
    this.lastSeq = -1;
    this.framework = 0;
    this.stepTimes = new Map(); // step -> {start, end} (ms since epoch)
    this.running = new Set(); // nodes started and not finished (lifecycle events)
    this.lastNode = null;
    this.list.replaceChildren();
    this.counter.textContent = "";
  }

  setShowLifecycle(show) {
    this.showLifecycle = show;
    for (const row of this.list.querySelectorAll("li.lifecycle")) row.hidden = !show;
    this.count();
  }

  count() {
    this.counter.textContent = this.seen.size + " events" +
      (this.framework && !this.showLifecycle ? " (" + this.framework + " framework events hidden)" : "");
  }

  // Returns false for an event already shown.
  add(event) {
    const seq = typeof event.seq === "number" ? event.seq : null;
    // A stream end the server made up for a run that left none (no seq): shown once.
    if (seq === null && isStreamEnd(event)) {
      const last = this.list.lastElementChild;
      if (last && last.classList.contains("end")) return false;
    }
    if (seq !== null) {
      if (this.seen.has(seq)) return false;
      this.seen.add(seq);
      this.lastSeq = Math.max(this.lastSeq, seq);
    }
    this.track(event);
    const stick = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40;
    if (event.type === "llm" && (event.scope === "chunk" || event.scope === "final")) this.fold(event);
    else this.list.append(this.row(event));
    if (isStreamEnd(event)) this.cutStreams();
    // A very long log keeps its newest rows on screen (every event still counts once).
    while (this.list.childElementCount > MAX_ROWS) this.list.firstElementChild.remove();
    if (event.type === "lifecycle") this.framework += 1;
    this.count();
    if (stick) this.list.scrollTop = this.list.scrollHeight;
    return true;
  }

  track(event) {
    const meta = event.metadata || {};
    const time = new Date(event.timestamp).getTime();
    if (event.type === "lifecycle" && typeof meta.step === "number") {
      const times = this.stepTimes.get(meta.step) || {};
      if (event.scope === "step_start") times.start = time;
      if (event.scope === "step_end") times.end = time;
      this.stepTimes.set(meta.step, times);
    }
    if (event.type === "lifecycle" && event.scope === "node_start" && !event.namespace) this.running.add(meta.node_id);
    if (event.type === "lifecycle" && event.scope === "node_finish") this.running.delete(meta.node_id);
    if (event.type === "lifecycle" && event.scope === "step_end") this.running.clear();
    // In the graph drawn here, a subgraph's node is the parent's node that runs it.
    if (typeof meta.node_id === "string") this.lastNode = event.namespace ? event.namespace.split("/")[0] : meta.node_id;
    if (isStreamEnd(event)) { this.running.clear(); this.lastNode = null; }
  }

  row(event) {
    const meta = event.metadata || {};
    const end = isStreamEnd(event);
    const status = end ? endStatus(event) : "";
    const where = end ? "stream end" : whereOf(event);
    const classes = [event.type, end ? "end" : "", BAD_ENDS.has(status) ? "bad" : ""].join(" ").trim();
    const row = el("li", { class: classes, data: { seq: event.seq, type: event.type, step: meta.step } },
      el("span", { class: "seq" }, event.seq ?? ""),
      el("span", { class: "time" }, clockTime(event.timestamp)),
      el("span", { class: "t-" + event.type }, event.type),
      el("span", { class: "where", title: where }, where),
      el("span", { class: "msg" }, end ? "run ended: " + (status ? statusLabel(status) : event.message) : event.message));
    if (event.type === "lifecycle") row.hidden = !this.showLifecycle;
    return row;
  }

  fold(event) {
    const meta = event.metadata || {};
    const key = meta.stream_id || (meta.node_id || "") + "@" + (meta.step ?? "");
    let stream = this.streams.get(key);
    if (!stream) {
      const row = this.row(Object.assign({}, event, { message: "" }));
      row.classList.add("streaming");
      row.dataset.stream = key;
      this.list.append(row);
      stream = { row, text: "", chunks: 0 };
      this.streams.set(key, stream);
    }
    const msg = stream.row.querySelector(".msg");
    if (event.scope === "final") {
      stream.text = event.message;
      stream.row.classList.remove("streaming");
    } else {
      stream.text += event.message;
      stream.chunks += 1;
    }
    msg.textContent = stream.text;
    stream.row.querySelector(".where").textContent =
      whereOf(event) + (stream.chunks ? " · " + stream.chunks + " chunks" : "");
  }

  // A run that ended with a model stream unfinished (cancelled, stopped): that message was cut.
  cutStreams() {
    for (const stream of this.streams.values()) {
      if (stream.row.classList.contains("streaming")) stream.row.classList.replace("streaming", "cut");
    }
    this.streams.clear();
  }

  // The node to mark as running: a started, unfinished node, else the last one heard from.
  runningNode() {
    const started = [...this.running];
    return started.length ? started[started.length - 1] : this.lastNode;
  }
}
