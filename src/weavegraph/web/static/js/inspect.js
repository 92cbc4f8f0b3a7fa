// The inspector: one step's changes (against the step before it) and its whole state.
import { el, pretty } from "./dom.js";
import { stateDiff } from "./diff.js";

const isMessage = (v) => v !== null && typeof v === "object" && typeof v.role === "string" && "content" in v;

// Strings as they are, a chat message as "role: content", anything else as JSON.
function text(value) {
  if (typeof value === "string") return value;
  if (isMessage(value) && typeof value.content === "string" && Object.keys(value).length === 2) {
    return value.role + ": " + value.content;
  }
  return pretty(value);
}

export function renderChanges(container, before, after) {
  const changes = stateDiff(before, after);
  if (!changes.length) {
    container.replaceChildren(el("p", { class: "hint" }, before ? "This step changed nothing in the state." : "The initial state."));
    return;
  }
  const list = el("ul", { class: "diff" });
  for (const change of changes) {
    const item = el("li", { class: change.kind, data: { path: change.path } },
      el("span", { class: "path" }, el("span", { class: "kind" }, change.kind), change.path));
    if ("before" in change) item.append(el("pre", { class: "before" }, text(change.before)));
    if ("after" in change) item.append(el("pre", { class: "after" }, text(change.after)));
    list.append(item);
  }
  container.replaceChildren(list);
}

// A value as people read it: a string as is, an object as "key  value" rows, anything else JSON.
export function renderValue(container, value) {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    const grid = el("div", { class: "kv" });
    for (const [key, item] of Object.entries(value)) grid.append(el("span", { class: "k" }, key), el("pre", {}, text(item)));
    container.replaceChildren(grid);
  } else {
    container.replaceChildren(document.createTextNode(text(value)));
  }
}

export function renderState(container, state) {
  const parts = [];
  const messages = state.messages || [];
  const messagesPart = el("div", { class: "state-section" }, el("h4", {}, "messages (" + messages.length + ")"));
  for (const message of messages) {
    messagesPart.append(el("div", { class: "msg-bubble" },
      el("span", { class: "role" }, message.role + (message.name ? " · " + message.name : "")),
      typeof message.content === "string" ? message.content : pretty(message.content)));
  }
  parts.push(messagesPart);
  const extra = state.extra || {};
  const extraPart = el("div", { class: "state-section" }, el("h4", {}, "extra (" + Object.keys(extra).length + ")"));
  const grid = el("div", { class: "kv" });
  for (const [key, value] of Object.entries(extra)) {
    grid.append(el("span", { class: "k" }, key), el("pre", {}, text(value)));
  }
  extraPart.append(grid);
  parts.push(extraPart);
  const errors = state.errors || [];
  if (errors.length) {
    const errorsPart = el("div", { class: "state-section" }, el("h4", {}, "errors (" + errors.length + ")"));
    for (const error of errors) {
      errorsPart.append(el("div", { class: "err-item" },
        "step " + (error.step ?? "?") + " · " + (error.node_id || error.scope) + ": " +
        (error.error_type ? error.error_type + ": " : "") + error.message));
    }
    parts.push(errorsPart);
  }
  container.replaceChildren(...parts);
}
