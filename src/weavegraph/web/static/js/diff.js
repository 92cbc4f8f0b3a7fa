// What a step changed: a structural diff of two states' JSON (channel versions left out).
// Lists that only grew (messages, errors, appended lists) show their new items as added.

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

// [{path, kind: "added" | "removed" | "changed", before?, after?}]
export function diffJson(before, after, path, out) {
  out = out || [];
  path = path || "";
  if (same(before, after)) return out;
  if (isObject(before) && isObject(after)) {
    const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
    for (const key of keys) {
      const sub = path ? path + "." + key : key;
      if (!(key in before)) out.push({ path: sub, kind: "added", after: after[key] });
      else if (!(key in after)) out.push({ path: sub, kind: "removed", before: before[key] });
      else diffJson(before[key], after[key], sub, out);
    }
    return out;
  }
  if (Array.isArray(before) && Array.isArray(after)) {
    const common = Math.min(before.length, after.length);
    const prefix = before.slice(0, common).every((item, i) => same(item, after[i]));
    if (prefix) {
      for (let i = common; i < after.length; i++) out.push({ path: path + "[" + i + "]", kind: "added", after: after[i] });
      for (let i = common; i < before.length; i++) out.push({ path: path + "[" + i + "]", kind: "removed", before: before[i] });
      return out;
    }
  }
  out.push({ path, kind: "changed", before, after });
  return out;
}

export function stateDiff(before, after) {
  const strip = (state) => {
    const copy = Object.assign({}, state || {});
    delete copy.versions;
    return copy;
  };
  return diffJson(before ? strip(before) : {}, strip(after));
}
