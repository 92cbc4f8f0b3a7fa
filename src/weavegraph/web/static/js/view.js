// One session on screen: header and actions, its pending question, step timeline, the inspector
// and its events (the stored log replayed, then followed live).
import { api, isStreamEnd, readEvents, sessionPath } from "./api.js";
import { $, ago, badge, pretty, showError } from "./dom.js";
import { renderValue } from "./inspect.js";
import { EventList } from "./events.js";
import { markGraph } from "./graph.js";
import { renderChanges, renderState } from "./inspect.js";
import { renderTimeline } from "./timeline.js";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const CAN_CONTINUE = new Set(["stopped", "error", "cancelled", "dead"]);
// A run in progress, or (on a `serve --queue` server) waiting for a worker.
const BUSY = new Set(["running", "queued"]);

export class SessionView {
  constructor({ onChanged, onNavigate, setConnection }) {
    this.onChanged = onChanged; // the session list should refresh
    this.onNavigate = onNavigate; // open another session (a fork)
    this.setConnection = setConnection;
    this.events = new EventList($("events"), $("event-count"));
    this.id = null;
    this.detail = null;
    this.selected = null; // the step shown; null follows the latest
    this.generation = 0;
    this.following = false;
    this.refreshTimer = null;
    this.stepCache = new Map();
    $("show-lifecycle").addEventListener("change", (e) => this.events.setShowLifecycle(e.target.checked));
    $("tab-changes").addEventListener("click", () => this.tab("changes"));
    $("tab-state").addEventListener("click", () => this.tab("state"));
  }

  async open(id, step) {
    this.generation += 1;
    if (this.abort) this.abort.abort();
    this.id = id;
    this.detail = null;
    this.selected = step;
    this.stepCache = new Map();
    this.events.reset();
    $("session-title").textContent = id;
    $("session-status").textContent = "";
    $("session-meta").textContent = "";
    $("timeline").replaceChildren();
    $("inspector").hidden = true;
    $("edit-panel").hidden = true;
    $("fork-panel").hidden = true;
    showError($("action-error"), null);
    const detail = await this.refresh(20);
    if (detail) this.follow();
  }

  close() {
    this.generation += 1;
    if (this.abort) this.abort.abort();
    this.id = null;
  }

  // --- the session's JSON: header, actions, question, timeline ------------------------------

  async refresh(patience) {
    const generation = this.generation;
    let detail;
    try {
      detail = await api(sessionPath(this.id));
    } catch (error) {
      if (error.status === 404 && patience > 0 && generation === this.generation) {
        await sleep(300); // a run just started: its first checkpoint is being written
        return this.refresh(patience - 1);
      }
      if (generation === this.generation) {
        showError($("action-error"), error);
        badge($("session-status"), error.status === 404 ? "unknown" : "error");
      }
      return null;
    }
    if (generation !== this.generation) return null;
    this.detail = detail;
    badge($("session-status"), detail.status);
    const last = detail.history[detail.history.length - 1];
    $("session-meta").textContent = "step " + detail.step + (last ? " · updated " + ago(last.created_at) : "");
    this.renderActions(detail);
    this.renderQuestion(detail.interrupt);
    const step = this.shownStep();
    renderTimeline($("timeline"), detail.history, step, this.events.stepTimes, (s) => this.selectStep(s, true));
    await this.inspect(step);
    return detail;
  }

  scheduleRefresh() {
    if (this.refreshTimer) return;
    this.refreshTimer = setTimeout(async () => {
      this.refreshTimer = null;
      if (this.id) await this.refresh();
    }, 250);
  }

  shownStep() {
    if (!this.detail) return null;
    const steps = this.detail.history.map((h) => h.step);
    return this.selected !== null && steps.includes(this.selected) ? this.selected : steps[steps.length - 1];
  }

  renderActions(detail) {
    const running = BUSY.has(detail.status);
    $("cancel-run").hidden = !running;
    // A static pause (interrupt_before/after) asks nothing: it continues with no answer.
    const paused = detail.status === "interrupted" && !detail.interrupt;
    $("continue-run").hidden = !CAN_CONTINUE.has(detail.status) && !paused;
    $("continue-run").textContent = detail.status === "error" ? "Retry the failed step"
      : paused ? "Continue past the pause" : "Continue run";
    $("edit-state").disabled = running;
    $("fork-step").disabled = !detail.history.length;
  }

  renderQuestion(interrupt) {
    const ask = $("ask");
    if (!interrupt) { ask.hidden = true; return; }
    const changed = ask.dataset.interrupt !== interrupt.id;
    ask.dataset.interrupt = interrupt.id;
    $("ask-node").textContent = "node " + interrupt.node + (interrupt.namespace ? " in " + interrupt.namespace : "");
    renderValue($("ask-question"), interrupt.value);
    if (changed) $("answer").value = "";
    ask.hidden = false;
  }

  // --- the inspector ------------------------------------------------------------------------

  async selectStep(step, explicit) {
    const latest = this.detail.history[this.detail.history.length - 1];
    this.selected = explicit && latest && step === latest.step ? null : step;
    const url = new URL(location.href);
    if (this.selected === null) url.searchParams.delete("step");
    else url.searchParams.set("step", String(step));
    history.replaceState(null, "", url);
    renderTimeline($("timeline"), this.detail.history, step, this.events.stepTimes, (s) => this.selectStep(s, true));
    await this.inspect(step);
  }

  async loadStep(step) {
    if (!this.stepCache.has(step)) {
      this.stepCache.set(step, api(sessionPath(this.id) + "/steps/" + step).catch((error) => {
        this.stepCache.delete(step);
        throw error;
      }));
    }
    return this.stepCache.get(step);
  }

  async inspect(step) {
    if (step === null || step === undefined) return;
    const generation = this.generation;
    const index = this.detail.history.findIndex((h) => h.step === step);
    const previous = index > 0 ? this.detail.history[index - 1].step : null;
    let shown, before = null;
    try {
      shown = await this.loadStep(step);
      if (previous !== null) before = await this.loadStep(previous).catch(() => null);
    } catch (error) {
      if (generation === this.generation) showError($("action-error"), error);
      return;
    }
    if (generation !== this.generation) return;
    this.shown = shown;
    $("inspector").hidden = false;
    $("inspect-step").textContent = "#" + step;
    $("fork-step-no").textContent = "#" + step;
    $("fork-step").textContent = "Fork from step #" + step;
    $("inspect-meta").textContent = (shown.ran_nodes.length ? "ran " + shown.ran_nodes.join(", ") : "no node ran") +
      (previous !== null ? " · compared with step #" + previous : "") + " · " + new Date(shown.created_at).toLocaleString();
    renderChanges($("changes"), before && before.state, shown.state);
    renderState($("state"), shown.state);
    this.mark();
  }

  tab(which) {
    $("tab-changes").classList.toggle("selected", which === "changes");
    $("tab-state").classList.toggle("selected", which === "state");
    $("changes").hidden = which !== "changes";
    $("state").hidden = which !== "state";
  }

  mark() {
    const running = this.detail && this.detail.status === "running" ? this.events.runningNode() : null;
    const asking = this.detail && this.detail.interrupt ? this.detail.interrupt.node : null;
    const shown = this.shown || { ran_nodes: [], frontier: [] };
    markGraph($("graph"), { running, asking, ran: shown.ran_nodes, next: shown.frontier });
  }

  // --- events: replayed from the stored log, then live --------------------------------------

  // True for an event not shown before.
  onEvent(event) {
    if (!this.events.add(event)) return false;
    const step = event.metadata && event.metadata.step;
    const known = this.detail ? this.detail.step : -1;
    // A step was committed (or the run paused or ended): the timeline and state move on.
    if (isStreamEnd(event) || (typeof step === "number" && step > known + 1) ||
        (event.type === "lifecycle" && event.scope === "checkpoint_saved") ||
        (event.type === "diagnostic" && event.scope === "interrupt")) {
      this.scheduleRefresh();
    }
    if (isStreamEnd(event)) this.onChanged();
    this.mark();
    return typeof event.seq === "number"; // a made-up end (no seq) is nothing more to read
  }

  // Read the session's events until nothing more comes: every stored run, then the live one;
  // after a stream ends, a run started since (an answer, a continue) is followed too.
  async follow() {
    if (this.following) return;
    this.following = true;
    const generation = this.generation;
    this.abort = new AbortController();
    try {
      for (;;) {
        let count = 0, ended = false;
        try {
          this.setConnection("live");
          ended = await readEvents(this.id, this.events.lastSeq, (event) => {
            if (generation === this.generation && this.onEvent(event)) count += 1;
          }, this.abort.signal);
        } catch (error) {
          if (generation !== this.generation) return;
          this.setConnection("down", error);
          await sleep(1500);
          continue;
        }
        if (generation !== this.generation) return;
        const detail = await this.refresh();
        if (!detail) return;
        if (BUSY.has(detail.status)) {
          if (!ended && count === 0) await sleep(400);
          continue;
        }
        if (count === 0) return; // the stored log has nothing more
      }
    } finally {
      if (generation === this.generation) this.setConnection("idle");
      this.following = false;
    }
  }

  // --- actions ------------------------------------------------------------------------------

  async act(button, work) {
    showError($("action-error"), null);
    button.disabled = true;
    try {
      await work();
    } catch (error) {
      showError($("action-error"), error);
    } finally {
      button.disabled = false;
    }
  }

  started() {
    this.selected = null;
    this.onChanged();
    this.refresh(20).then(() => this.follow());
  }

  cancel() {
    return this.act($("cancel-run"), async () => {
      await api("api/runs/" + encodeURIComponent(this.id) + "/cancel", {});
      this.scheduleRefresh();
    });
  }

  continueRun() {
    return this.act($("continue-run"), async () => {
      if (this.detail.status === "interrupted") await api(sessionPath(this.id) + "/resume", { value: null });
      else await api("api/runs", { session_id: this.id });
      this.started();
    });
  }

  answer() {
    const text = $("answer").value;
    let value = text;
    try { value = JSON.parse(text); } catch (_) { /* not JSON: the text itself */ }
    return this.act($("send-answer"), async () => {
      await api(sessionPath(this.id) + "/resume", { value });
      $("ask").hidden = true;
      this.started();
    });
  }

  openEditor() {
    $("fork-panel").hidden = true;
    const extra = this.shown && this.detail.step === this.shown.step ? this.shown.state.extra : (this.detail.state.extra || {});
    $("edit-json").value = pretty({ extra: extra || {} });
    $("edit-panel").hidden = false;
    $("edit-json").focus();
  }

  saveEdit() {
    return this.act($("edit-save"), async () => {
      let update;
      try { update = JSON.parse($("edit-json").value); } catch (error) {
        throw new Error("the update is not JSON: " + error.message);
      }
      await api(sessionPath(this.id) + "/state", update);
      $("edit-panel").hidden = true;
      this.selected = null;
      this.tab("changes"); // show what the edit changed
      await this.refresh();
      this.onChanged();
    });
  }

  openFork() {
    $("edit-panel").hidden = true;
    $("fork-id").value = "";
    $("fork-panel").hidden = false;
  }

  fork() {
    return this.act($("fork-save"), async () => {
      const body = { step: this.shownStep() };
      const newId = $("fork-id").value.trim();
      if (newId) body.new_id = newId;
      const forked = await api(sessionPath(this.id) + "/fork", body);
      $("fork-panel").hidden = true;
      this.onChanged();
      this.onNavigate(forked.session_id);
    });
  }
}
