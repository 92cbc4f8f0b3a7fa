// The server's HTTP API: JSON calls and the events stream (Server-Sent Events read with fetch, so
// the API token travels in a header and the page decides when to reconnect).

const TOKEN_KEY = "weavegraph-token";
let token = localStorage.getItem(TOKEN_KEY) || "";

export function setToken(value) {
  token = value;
  localStorage.setItem(TOKEN_KEY, value);
}

export function getToken() {
  return token;
}

function headers(extra) {
  const all = Object.assign({}, extra || {});
  if (token) all["Authorization"] = "Bearer " + token;
  return all;
}

export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// GET (no body) or POST (a JSON body); the answer's JSON, or an ApiError with the server's message.
export async function api(path, body) {
  const options = body === undefined
    ? { headers: headers() }
    : { method: "POST", headers: headers({ "Content-Type": "application/json" }), body: JSON.stringify(body) };
  const response = await fetch(path, options);
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new ApiError(response.status, answer.error || response.status + " " + response.statusText, answer.code);
  }
  return answer;
}

export const sessionPath = (id) => "api/sessions/" + encodeURIComponent(id);

// Read one SSE response: onEvent(event JSON) for each message. Resolves when the server closes
// the stream (true when a stream-end event came); rejects on a network error or an HTTP error.
export async function readEvents(sessionId, afterSeq, onEvent, signal) {
  let url = "api/runs/" + encodeURIComponent(sessionId) + "/events";
  // live=1: a model's chunks as they stream, before their step is stored (they carry no id).
  url += "?live=1";
  if (afterSeq !== null) url += "&last_event_id=" + encodeURIComponent(String(afterSeq));
  const response = await fetch(url, { headers: headers({ Accept: "text/event-stream" }), signal });
  if (!response.ok) {
    const answer = await response.json().catch(() => ({}));
    throw new ApiError(response.status, answer.error || String(response.status), answer.code);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let ended = false;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let cut;
    while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
      const data = block.split(/\r?\n/).filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).replace(/^ /, "")).join("\n");
      if (!data) continue; // a comment or a ping
      const event = JSON.parse(data);
      if (isStreamEnd(event)) ended = true;
      onEvent(event);
    }
  }
  return ended;
}

export const STREAM_END_SCOPE = "__weavegraph_stream_end__";

// The framework's own stream end (a node's diagnostic borrowing the scope carries node_id).
export function isStreamEnd(event) {
  return event.type === "diagnostic" && event.scope === STREAM_END_SCOPE &&
    !(event.metadata && "node_id" in event.metadata);
}

// "session=x status=completed step=12" -> "completed"
export function endStatus(event) {
  const meta = event.metadata || {};
  if (typeof meta.status === "string") return meta.status;
  const found = /(?:^|\s)status=(\w+)/.exec(event.message || "");
  return found ? found[1] : "";
}
