// The failover console: plain JavaScript over the service's own API (/v1, documented at
// /v1/openapi.json). No framework, no build step, nothing fetched from elsewhere.
// The token is kept in sessionStorage (this tab only) and sent as `Authorization: Bearer`;
// the live stream (EventSource cannot send headers) passes it as `access_token`, which the
// service accepts on its read-only event streams only.
"use strict";

const $ = (sel) => document.querySelector(sel);
const SVG = "http://www.w3.org/2000/svg";
const state = {
  token: sessionStorage.getItem("failover.token") || "",
  me: null,
  selected: sessionStorage.getItem("failover.run") || null,
  runbooks: [],
  stream: null,
  pending: {},
};

/** An element with attributes and children (text is set as text, never parsed as HTML). */
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const k of kids.flat()) {
    if (k === null || k === undefined) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function showError(e) {
  const box = $("#error");
  box.textContent = e ? String(e.message || e) : "";
  box.hidden = !e;
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (state.token) headers.Authorization = "Bearer " + state.token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let v = null;
  try {
    v = await r.json();
  } catch (_) {
    v = null;
  }
  if (!r.ok) {
    let msg = (v && v.message) || r.status + " " + r.statusText;
    if (v && Array.isArray(v.diagnostics) && v.diagnostics.length) {
      msg += "\n" + v.diagnostics.map((d) => `${d.file}:${d.line}:${d.col}: ${d.message}${d.hint ? "\n  hint: " + d.hint : ""}`).join("\n");
    }
    const err = new Error(msg);
    err.status = r.status;
    throw err;
  }
  return v;
}

/** Run `f` once, `ms` after the last call for `key` (bursts of events cause one refresh). */
function soon(key, ms, f) {
  clearTimeout(state.pending[key]);
  state.pending[key] = setTimeout(() => f().catch(showError), ms);
}

/** A duration on the chart's axis: 250ms, 4.2s, 3m05s. */
function fmtDur(ms) {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)}s`;
  const m = Math.floor(ms / 60000), sec = Math.round((ms % 60000) / 1000);
  return `${m}m${String(sec).padStart(2, "0")}s`;
}

const fmtTime = (ms) => (ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) + "Z" : "");
const has = (role) => !!state.me && state.me.roles.includes(role);

// ---- who, and the live stream ----------------------------------------------------------

async function loadMe() {
  if (!state.token) {
    state.me = null;
    $("#whoami").textContent = "no token: enter one to see and act";
    return;
  }
  state.me = await api("GET", "/v1/whoami");
  $("#whoami").textContent = `${state.me.name} (${state.me.roles.join(", ")})`;
}

function connect() {
  if (state.stream) state.stream.close();
  state.stream = null;
  const live = $("#live");
  live.textContent = "offline";
  live.className = "pill off";
  if (!state.token) return;
  const es = new EventSource("/v1/events?access_token=" + encodeURIComponent(state.token));
  state.stream = es;
  es.onopen = () => {
    live.textContent = "live";
    live.className = "pill on";
  };
  es.onerror = () => {
    live.textContent = "reconnecting";
    live.className = "pill off";
  };
  es.onmessage = (m) => onEvent(m);
  for (const kind of ["run_started", "step_started", "step_finished", "intent", "outcome", "settled",
    "approval_requested", "approved", "rejected", "comment", "run_finished", "leases_acquired",
    "leases_released", "aborted", "note", "shed", "restored", "calls"]) {
    es.addEventListener(kind, onEvent);
  }
}

function onEvent(m) {
  let ev = null;
  try {
    ev = JSON.parse(m.data);
  } catch (_) {
    return;
  }
  soon("runs", 150, loadRuns);
  if (ev.run_id && ev.run_id === state.selected) soon("run", 100, loadRun);
  if (ev.kind === "run_finished" || ev.kind === "shed" || ev.kind === "restored") soon("envs", 300, loadEnvironments);
}

// ---- environments: zones' health and the traffic ladder --------------------------------

async function loadEnvironments() {
  if (!state.token) return;
  const { environments } = await api("GET", "/v1/environments");
  const box = $("#envs");
  const envSelect = $("#start-env");
  const chosen = envSelect.value;
  envSelect.replaceChildren(...environments.filter((e) => e.loads).map((e) => el("option", { value: e.name }, e.name)));
  if (chosen) envSelect.value = chosen;
  const cards = [];
  for (const e of environments) {
    const card = el("div", { class: "card", "data-env": e.name }, el("h3", {}, e.name, " ", el("span", { class: "muted" }, e.loads ? `${e.region}${e.simulated ? ", simulated" : ""}` : "does not load")));
    cards.push(card);
    if (!e.loads) {
      card.append(el("pre", { class: "text" }, e.text || ""));
      continue;
    }
    const zones = el("div", { class: "zones" }, "zones: ");
    card.append(zones);
    if (e.health && !e.simulated) {
      try {
        const h = await api("GET", `/v1/environments/${encodeURIComponent(e.name)}/health`);
        for (const z of (h.report && h.report.zones) || []) {
          const name = z.target.zone || z.target.region || JSON.stringify(z.target);
          zones.append(el("span", { class: `zone state-${z.state}`, "data-zone": name, title: (z.why && z.why.summary) || "" }, `${name} ${z.state}`));
        }
        if (h.watch) card.append(el("div", { class: "muted" }, h.watch.summary));
      } catch (err) {
        zones.append(el("span", { class: "muted" }, err.message.split("\n")[0]));
      }
    } else {
      for (const z of e.zones || []) zones.append(el("span", { class: "zone state-unknown", "data-zone": z }, `${z} (not probed)`));
    }
    if (e.traffic) {
      const ladder = el("div", { class: "ladder" }, "traffic: ");
      card.append(ladder);
      try {
        const t = await api("GET", `/v1/environments/${encodeURIComponent(e.name)}/traffic`);
        for (const tier of t.tiers) {
          const cls = `tier ${tier.shed ? "shed" : "kept"}${tier.protected ? " protected" : ""}`;
          const title = tier.shed ? `shed since ${tier.since} by run ${tier.run_id}` : tier.protected ? "protected: never shed" : "served";
          ladder.append(el("span", { class: cls, title, "data-tier": tier.name }, `${tier.name}${tier.shed ? " (shed)" : ""}`));
        }
      } catch (err) {
        ladder.append(el("span", { class: "muted" }, err.message.split("\n")[0]));
      }
    }
  }
  box.replaceChildren(...cards);
}

// ---- readiness ------------------------------------------------------------------------

async function loadReadiness() {
  if (!state.token) return;
  const r = await api("GET", "/v1/readiness");
  const rows = r.checks.map((c) => el("tr", { class: `ready-${c.ready}`, "data-check": `${c.environment}/${c.runbook}/${c.zone}` },
    el("td", {}, c.environment), el("td", {}, c.runbook), el("td", {}, c.zone),
    el("td", {}, c.ready ? "yes" : "NO"),
    el("td", {}, c.reasons.map((x) => el("div", {}, `${x.step ? x.step + ": " : ""}${x.text} [${x.cause}]`)))));
  $("#readiness-rows").replaceChildren(...rows);
  $("#readiness-summary").textContent = !r.enabled ? "(checks are off: --readiness-interval)"
    : r.rounds === 0 ? "(first round under way)"
    : `(${r.ready ? "every runbook would succeed" : "some runbooks would NOT succeed"}; checked ${fmtTime(r.last_round_ms)}, every ${r.interval_s}s)`;
}

// ---- starting a run -------------------------------------------------------------------

async function loadRunbooks() {
  if (!state.token) return;
  const { runbooks } = await api("GET", "/v1/runbooks");
  state.runbooks = runbooks.filter((r) => r.loads);
  const sel = $("#start-runbook");
  const chosen = sel.value;
  sel.replaceChildren(...state.runbooks.map((r) => el("option", { value: r.id, title: r.description || "" }, r.id)));
  if (chosen) sel.value = chosen;
  renderParams();
}

function renderParams() {
  const rb = state.runbooks.find((r) => r.id === $("#start-runbook").value);
  const box = $("#start-params");
  box.replaceChildren();
  if (!rb) return;
  for (const p of rb.params) {
    if (p.name === "require_approval") continue; // the checkbox below
    const input = p.type === "bool"
      ? el("select", { name: p.name, "data-param": p.name }, el("option", { value: "" }, `default (${p.default})`), el("option", { value: "true" }, "true"), el("option", { value: "false" }, "false"))
      : el("input", { name: p.name, "data-param": p.name, placeholder: p.default ? `default: ${p.default}` : p.type, required: p.required });
    box.append(el("label", { title: p.description || "" }, `${p.name}${p.required ? " *" : ""}`, input));
  }
}

async function startRun(ev) {
  ev.preventDefault();
  showError(null);
  const params = {};
  for (const i of document.querySelectorAll("#start-params [data-param]")) {
    if (i.value.trim() !== "") params[i.dataset.param] = i.value.trim();
  }
  const body = {
    runbook: $("#start-runbook").value,
    env: $("#start-env").value,
    params,
    mode: $("#start-mode").value,
    require_approval: $("#start-approval").checked,
  };
  const out = $("#start-result");
  try {
    const r = await api("POST", "/v1/runs", body);
    out.hidden = false;
    if (body.mode === "plan") {
      out.textContent = r.text;
    } else {
      out.textContent = `run ${r.run_id}: ${r.status}`;
      await selectRun(r.run_id);
      await loadRuns();
    }
  } catch (e) {
    out.hidden = false;
    out.textContent = e.message;
    showError(e);
  }
}

// ---- runs -----------------------------------------------------------------------------

async function loadRuns() {
  if (!state.token) return;
  const { runs } = await api("GET", "/v1/runs?limit=30");
  const rows = runs.filter((r) => r.mode !== "watch").map((r) => el("tr", {
    "data-run": r.id,
    class: r.id === state.selected ? "selected" : "",
    onclick: () => selectRun(r.id).catch(showError),
  },
  el("td", {}, el("code", {}, r.id)), el("td", {}, r.runbook), el("td", {}, r.environment), el("td", {}, r.mode),
  el("td", {}, el("span", { class: `status ${r.status}`, "data-status": r.status }, r.status.replace("_", " "))),
  el("td", {}, r.initiator), el("td", {}, fmtTime(r.started_at))));
  $("#runs-rows").replaceChildren(...rows);
}

async function selectRun(id) {
  state.selected = id;
  sessionStorage.setItem("failover.run", id);
  for (const tr of document.querySelectorAll("#runs-rows tr")) tr.classList.toggle("selected", tr.dataset.run === id);
  $("#action-result").textContent = "";
  await loadRun();
}

async function loadRun() {
  if (!state.selected || !state.token) return;
  const d = await api("GET", `/v1/runs/${encodeURIComponent(state.selected)}`);
  const r = d.run;
  $("#run").hidden = false;
  $("#run-id").textContent = r.id;
  const st = $("#run-status");
  st.textContent = r.status.replace("_", " ");
  st.className = `status ${r.status}`;
  st.dataset.status = r.status;
  $("#run-text").textContent = d.text;
  const ended = r.ended_at !== null && r.ended_at !== undefined;
  const waiting = r.status === "waiting_approval";
  $("#btn-approve").disabled = !waiting || !has("approver");
  $("#btn-reject").disabled = !waiting || !has("approver");
  $("#btn-abort").disabled = ended || !has("operator");
  const doubt = $("#run-indoubt");
  doubt.replaceChildren(...(d.in_doubt || []).map((c) => el("div", { class: "indoubt", "data-seq": c.seq },
    el("strong", {}, "call in doubt: "), `#${c.seq} ${c.step_id || ""} ${c.operation || ""} ${c.resource || ""}`,
    " — it may or may not have been made; a resume waits for its effect before making it again.")));
  drawPhases(d);
}

async function act(what) {
  const id = state.selected;
  const comment = $("#run-comment").value.trim();
  const body = what === "abort" ? (comment ? { reason: comment } : {}) : (comment ? { comment } : {});
  const out = $("#action-result");
  try {
    const r = await api("POST", `/v1/runs/${encodeURIComponent(id)}/${what}`, body);
    out.textContent = what === "approve"
      ? `approved by ${r.by} (${r.approvals}/${r.required})${r.released ? ": released" : ""}`
      : `${what}: ${r.status}`;
    showError(null);
    $("#run-comment").value = "";
  } catch (e) {
    out.textContent = "";
    showError(e);
  }
  await loadRun();
}

// ---- the phases of a run on a time axis -------------------------------------------------

const PHASES = ["detection", "approval", "failover", "dns", "shedding", "other"];

function phaseOf(action) {
  if (action.startsWith("health.")) return "detection";
  if (action.startsWith("rds.")) return "failover";
  if (action.startsWith("dns.")) return "dns";
  if (action.startsWith("traffic.")) return "shedding";
  if (action === "approval") return "approval";
  return "other";
}

function drawPhases(d) {
  const box = $("#phases");
  const start = d.run.started_at;
  const end = d.run.ended_at || Date.now();
  const steps = d.steps.filter((s) => s.started_at);
  if (!steps.length) {
    box.replaceChildren(el("p", { class: "muted" }, "no step has started yet"));
    return;
  }
  const lanes = PHASES.filter((p) => steps.some((s) => phaseOf(s.action) === p));
  const W = 760, left = 90, right = 20, laneH = 26, top = 10;
  const H = top + lanes.length * laneH + 30;
  const span = Math.max(end - start, 1);
  const x = (t) => left + ((t - start) / span) * (W - left - right);
  const s = svg("svg", { class: "phases", viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img", "aria-label": "phases of the run on a time axis" });
  lanes.forEach((p, i) => {
    const y = top + i * laneH;
    s.append(svg("text", { x: 4, y: y + 16 }, p));
    s.append(svg("line", { class: "axis", x1: left, x2: W - right, y1: y + laneH - 2, y2: y + laneH - 2 }));
    for (const st of steps.filter((st) => phaseOf(st.action) === p)) {
      const a = x(st.started_at), b = x(st.ended_at || end);
      const rect = svg("rect", { class: `p-${p}`, x: a, y: y + 4, width: Math.max(b - a, 2), height: laneH - 10, rx: 2, "data-step": st.step_id });
      rect.append(svg("title", {}, `${st.step_id} (${st.action}): ${st.status}, ${fmtDur((st.ended_at || end) - st.started_at)}`));
      s.append(rect);
    }
  });
  const ay = top + lanes.length * laneH + 14;
  for (let k = 0; k <= 4; k++) {
    const t = start + (span * k) / 4;
    s.append(svg("text", { x: x(t) - 10, y: ay }, fmtDur(t - start)));
  }
  box.replaceChildren(s);
}

// ---- start ----------------------------------------------------------------------------

async function refreshAll() {
  showError(null);
  // Until the selected run is read again, no button acts on the previous token's roles.
  for (const b of ["#btn-approve", "#btn-reject", "#btn-abort"]) $(b).disabled = true;
  await loadMe();
  connect();
  await Promise.all([loadRunbooks(), loadRuns(), loadReadiness(), loadEnvironments(), loadRun()]);
}

function init() {
  $("#token").value = state.token;
  $("#auth").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.token = $("#token").value.trim();
    sessionStorage.setItem("failover.token", state.token);
    refreshAll().catch(showError);
  });
  $("#token-forget").addEventListener("click", () => {
    state.token = "";
    sessionStorage.removeItem("failover.token");
    $("#token").value = "";
    refreshAll().catch(showError);
  });
  $("#start-runbook").addEventListener("change", renderParams);
  $("#start-form").addEventListener("submit", startRun);
  $("#btn-approve").addEventListener("click", () => act("approve"));
  $("#btn-reject").addEventListener("click", () => act("reject"));
  $("#btn-abort").addEventListener("click", () => act("abort"));
  setInterval(() => {
    if (!state.token) return;
    loadReadiness().catch(showError);
    loadEnvironments().catch(showError);
  }, 10000);
  refreshAll().catch(showError);
}

init();
