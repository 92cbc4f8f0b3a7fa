// The step timeline: one row per checkpointed step, with what ran, how long it took and which
// channels it changed. Durations come from the framework's step events when the run recorded
// them, else from the time between two checkpoints (marked "≈").
import { duration, el } from "./dom.js";

function took(entry, previous, stepTimes) {
  const times = stepTimes.get(entry.step);
  if (times && times.start !== undefined && times.end !== undefined) {
    return { text: duration(times.end - times.start), title: "measured by the run" };
  }
  if (!previous || entry.step === 0 || !entry.ran_nodes.length) return { text: "", title: "" };
  const ms = new Date(entry.created_at) - new Date(previous.created_at);
  return { text: "≈ " + duration(ms), title: "time since the previous checkpoint" };
}

// A step where no node ran: a pause (nothing changed), a failure (only errors) or an edit.
function kindOf(entry) {
  const changed = entry.updated_channels;
  if (!changed.length) return "paused";
  return changed.length === 1 && changed[0] === "errors" ? "failed step" : "state edit";
}

function what(entry) {
  const chips = [];
  if (entry.step === 0) chips.push(el("span", { class: "chip none" }, "initial state"));
  for (const node of entry.ran_nodes) chips.push(el("span", { class: "chip" }, node));
  for (const node of entry.skipped_nodes || []) chips.push(el("span", { class: "chip skipped", title: "skipped" }, node));
  if (entry.step > 0 && !entry.ran_nodes.length) chips.push(el("span", { class: "chip none" }, kindOf(entry)));
  return chips;
}

export function renderTimeline(list, history, selected, stepTimes, onSelect) {
  const rows = [];
  history.forEach((entry, i) => {
    const time = took(entry, history[i - 1], stepTimes);
    const changed = entry.updated_channels.length
      ? entry.updated_channels.map((c) => el("span", { class: "chip" }, "+" + c))
      : [el("span", { class: "chip none" }, "no change")];
    const row = el("li", { class: entry.step === selected ? "selected" : "", data: { step: entry.step } },
      el("span", { class: "no" }, "#" + entry.step),
      el("span", { class: "nodes" }, ...what(entry)),
      el("span", { class: "took", title: time.title }, time.text),
      el("span", { class: "changed" }, ...changed));
    row.addEventListener("click", () => onSelect(entry.step));
    rows.push(row);
  });
  list.replaceChildren(...rows);
  const current = list.querySelector("li.selected");
  if (current) current.scrollIntoView({ block: "nearest" });
}
