// Small DOM helpers. Every user-supplied string goes through textContent, never HTML.

export const $ = (id) => document.getElementById(id);

// el("span", {class: "x", data: {seq: 1}}, "text", child, ...)
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "data") Object.assign(node.dataset, value);
    else if (key === "title") node.title = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// How the server's status words are shown ("interrupted" is a session waiting for a person).
const LABELS = { interrupted: "waiting for an answer" };
export const statusLabel = (status) => LABELS[status] || String(status || "unknown");
export const statusClass = (status) => "s-" + String(status || "unknown").replace(/[^a-z]/g, "");

export function badge(node, status) {
  node.textContent = statusLabel(status);
  node.className = "badge " + statusClass(status);
}

export function showError(node, error) {
  node.textContent = error ? String(error.message || error) : "";
}

export function clockTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const pad = (n, w) => String(n).padStart(w || 2, "0");
  return pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds()) +
    "." + pad(date.getMilliseconds(), 3);
}

export function ago(iso) {
  const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (seconds < 5) return "just now";
  if (seconds < 60) return Math.round(seconds) + " s ago";
  if (seconds < 3600) return Math.round(seconds / 60) + " min ago";
  if (seconds < 86400) return Math.round(seconds / 3600) + " h ago";
  return new Date(iso).toLocaleDateString();
}

export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "";
  if (ms < 1) return "<1 ms";
  if (ms < 1000) return Math.round(ms) + " ms";
  if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
  return Math.floor(ms / 60000) + " min " + Math.round((ms % 60000) / 1000) + " s";
}

export const pretty = (value) => JSON.stringify(value, null, 2);
