// The session list: newest first, with the status the server reports, filterable by id and status.
import { api } from "./api.js";
import { $, ago, el, showError, statusClass, statusLabel } from "./dom.js";

export class SessionList {
  constructor(onOpen) {
    this.onOpen = onOpen;
    this.sessions = [];
    this.selected = null;
    $("session-filter").addEventListener("input", () => this.render());
    $("status-filter").addEventListener("change", () => this.render());
  }

  async load() {
    try {
      this.sessions = (await api("api/sessions")).sessions;
      showError($("sessions-error"), null);
    } catch (error) {
      showError($("sessions-error"), error);
    }
    this.render();
  }

  find(id) {
    return this.sessions.find((s) => s.session_id === id) || null;
  }

  select(id) {
    this.selected = id;
    this.render();
  }

  render() {
    const text = $("session-filter").value.trim().toLowerCase();
    const status = $("status-filter").value;
    const shown = this.sessions.filter((s) =>
      (!text || s.session_id.toLowerCase().includes(text)) && (!status || s.status === status));
    const items = shown.map((s) => {
      const item = el("li", { class: s.session_id === this.selected ? "selected" : "",
        data: { session: s.session_id, status: s.status } },
        el("span", { class: "dot " + statusClass(s.status), title: statusLabel(s.status) }),
        el("span", { class: "sid", title: s.session_id }, s.session_id),
        el("span", { class: "sub" }, statusLabel(s.status) + " · step " + s.latest_step + " · " + ago(s.updated_at)));
      item.addEventListener("click", () => this.onOpen(s.session_id));
      return item;
    });
    $("sessions").replaceChildren(...items);
    $("sessions-empty").hidden = this.sessions.length > 0;
  }
}
