// The admin page: every button calls the same admin API as intakectl, with the token kept in
// this tab's session storage only. Three views: Teams (the organisers': find, open, decide,
// export), Failed (support's: failed registrations, re-drive) and Webhooks (the organisers':
// endpoints, each secret shown once, and their deliveries). Everything the API returns
// reaches the page through textContent or attributes, never as HTML, and no handler is inline,
// so the page works under the service's `default-src 'self'` policy.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG_NS = "http://www.w3.org/2000/svg";
/** How often the figures refresh themselves while the console is open. */
const REFRESH_MS = 10000;
/** How long a blob URL (a download, a document) is kept before it is released. */
const BLOB_TTL_MS = 60000;
/** Deliveries shown per page; "Load more" follows the cursor. */
const DELIVERIES_PAGE = 20;

let cursor = null; // the Failed view's next page
let openId = null; // the registration open in the Failed view
let teamCursor = null; // the Teams view's next page
let openTeam = null; // the team detail as last loaded (its review.version is what a decision is made on)
let timer = null;
// Each list or detail load takes a number; an answer that is no longer the latest is dropped,
// so a slow search cannot overwrite a newer one.
let teamsSeq = 0;
let detailSeq = 0;
let webhooksSeq = 0;
let deliveriesSeq = 0;
let deliveriesFor = null; // the endpoint whose deliveries are open
let deliveriesCursor = null; // their next page

class ApiError extends Error {
  constructor(message, status, problem) {
    super(message);
    this.status = status;
    this.code = problem.code;
    this.detail = problem.detail;
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
  }
}

function token() { return sessionStorage.getItem("intake-admin-token"); }

function say(text, isError) {
  $("message").textContent = text;
  $("message").className = isError ? "error" : "";
}

// A call to the admin API with the token. Answers the response when it is a success; otherwise
// throws an ApiError whose message is fit to show. A refused token signs out; a role too low
// does not (the token is good, it just may not do this).
async function request(path, options = {}) {
  const headers = { "Authorization": "Bearer " + token() };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { ...options, headers });
  if (response.ok) return response;
  const problem = await response.json().catch(() => ({}));
  if (response.status === 401) {
    signOut();
    throw new ApiError("The token was refused.", 401, problem);
  }
  if (response.status === 403) {
    const detail = problem.detail ? " " + sentence(problem.detail) : "";
    throw new ApiError("Your token's role does not allow this." + detail, 403, problem);
  }
  let text = (problem.code ? problem.code + ": " : "") + (problem.detail || response.statusText || "HTTP " + response.status);
  if (Array.isArray(problem.errors) && problem.errors.length > 0) {
    text += " (" + problem.errors.map((e) => e.message || e.field).join("; ") + ")";
  }
  throw new ApiError(text, response.status, problem);
}

async function api(path, options) {
  const response = await request(path, options);
  return response.json().catch(() => ({}));
}

function sentence(text) {
  const s = String(text).trim();
  return s.charAt(0).toUpperCase() + s.slice(1) + (/[.!?]$/.test(s) ? "" : ".");
}

function el(name, text, className) {
  const node = document.createElement(name);
  if (text != null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function cell(row, text, className) {
  const td = el("td", text == null ? "" : text, className);
  row.appendChild(td);
  return td;
}

function field(list, name, value) {
  const dd = el("dd", value == null ? "" : value);
  list.append(el("dt", name), dd);
  return dd;
}

/** RFC 3339 as `2026-03-14 09:30 UTC`; the exact time stays in the title. */
function when(at) {
  if (!at) return "";
  const date = new Date(at);
  if (Number.isNaN(date.getTime())) return String(at);
  return date.toISOString().slice(0, 16).replace("T", " ") + " UTC";
}

function bytes(n) {
  if (n == null) return "";
  if (n < 1024) return n + " B";
  if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " kB";
  return (n / 1024 / 1024).toFixed(1) + " MB";
}

function badge(state) {
  return el("span", state || "", "badge state-" + (state || "unknown"));
}

function guard(fn) {
  return (...args) => fn(...args).catch((err) => say(err.message, true));
}

// --- Figures: queue, stats and the 30-day chart ---------------------------------------------

async function loadQueue() {
  const q = await api("/admin/v1/queue");
  const box = $("queue");
  box.replaceChildren();
  for (const [label, value] of [["Waiting", q.waiting], ["Oldest wait (s)", q.oldest_waiting_secs],
    ["In flight", q.in_flight], ["Failed", q.failed], ["Workers", q.workers_alive]]) {
    const item = el("div", label + ": ");
    item.appendChild(el("span", value));
    box.appendChild(item);
  }
  box.appendChild(el("div", "Updated " + new Date().toLocaleTimeString(), "muted"));
}

async function loadStats() {
  const s = await api("/admin/v1/stats");
  const regs = s.registrations || {};
  const teams = s.teams || {};
  const list = $("stats");
  list.replaceChildren();
  for (const [label, value, kind] of [
    ["Saved teams", regs.completed, "completed"], ["Pending", teams.pending, "pending"],
    ["Approved", teams.approved, "approved"], ["Rejected", teams.rejected, "rejected"],
    ["Failed", regs.failed, "failed"], ["Queued", regs.queued, "queued"],
    ["Processing", regs.processing, "processing"]]) {
    const group = el("div", null, "figure figure-" + kind);
    group.append(el("dt", label), el("dd", value == null ? "–" : value));
    list.appendChild(group);
  }
  drawChart(Array.isArray(s.per_day) ? s.per_day : []);
  return s;
}

function svg(name, attrs, parent) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (parent) parent.appendChild(node);
  return node;
}

// Two bars a day (saved, failed), scaled to the busiest day, drawn with DOM calls.
function drawChart(days) {
  const chart = $("chart");
  chart.replaceChildren();
  const width = 380, height = 96, top = 14, bottom = 14, side = 2;
  const plot = height - top - bottom;
  chart.setAttribute("viewBox", "0 0 " + width + " " + height);
  const max = Math.max(1, ...days.map((d) => Math.max(d.completed || 0, d.failed || 0)));
  const slot = (width - 2 * side) / Math.max(days.length, 1);
  const bar = Math.max(1, (slot - 3) / 2);
  svg("line", { x1: side, x2: width - side, y1: top + plot + 0.5, y2: top + plot + 0.5, class: "axis" }, chart);
  days.forEach((day, i) => {
    const x = side + i * slot + 1;
    const group = svg("g", { class: "day" }, chart);
    svg("title", {}, group).textContent = day.date + ": " + (day.completed || 0) + " saved, " + (day.failed || 0) + " failed";
    svg("rect", { x: x - 1, y: top, width: slot, height: plot, class: "hit" }, group);
    [[day.completed || 0, "bar-completed", 0], [day.failed || 0, "bar-failed", bar]].forEach(([value, kind, offset]) => {
      if (value <= 0) return;
      const h = Math.max(1.5, (value / max) * plot);
      svg("rect", { x: x + offset, y: top + plot - h, width: bar, height: h, class: kind }, group);
    });
  });
  const label = (text, x, y, anchor) => {
    svg("text", { x, y, "text-anchor": anchor, class: "label" }, chart).textContent = text;
  };
  label("max " + max, side, 10, "start");
  if (days.length > 0) {
    label(days[0].date, side, height - 3, "start");
    label(days[days.length - 1].date, width - side, height - 3, "end");
  }
  const saved = days.reduce((n, d) => n + (d.completed || 0), 0);
  const failed = days.reduce((n, d) => n + (d.failed || 0), 0);
  $("chart-summary").textContent = saved + " saved, " + failed + " failed";
}

async function refreshFigures() {
  await Promise.all([loadQueue(), loadStats()]);
}

function startFigures() {
  stopFigures();
  timer = setInterval(() => {
    if (document.hidden || !token()) return;
    refreshFigures().catch((err) => {
      if (err.status !== 401) $("queue").appendChild(el("div", "Not updated: " + err.message, "error"));
    });
  }, REFRESH_MS);
}

function stopFigures() {
  if (timer !== null) clearInterval(timer);
  timer = null;
}

// --- Views -------------------------------------------------------------------------------

const VIEWS = [["teams", "tab-teams", "teams-view"], ["failed", "tab-failed", "failed-view"],
  ["webhooks", "tab-webhooks", "webhooks-view"]];
const LOADERS = { teams: () => loadTeams(false), failed: () => loadFailed(false), webhooks: () => loadWebhooks() };

function showView(name) {
  for (const [view, tab, panel] of VIEWS) {
    const on = view === name;
    $(tab).setAttribute("aria-selected", String(on));
    $(tab).tabIndex = on ? 0 : -1;
    $(panel).hidden = !on;
  }
}

function switchView(name) {
  showView(name);
  return LOADERS[name]();
}

// Arrow keys move between the tabs, as a tab list does.
function tabKeys(event) {
  if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
  const current = VIEWS.findIndex(([, tab]) => $(tab).getAttribute("aria-selected") === "true");
  const next = VIEWS[(current + (event.key === "ArrowRight" ? 1 : VIEWS.length - 1)) % VIEWS.length];
  $(next[1]).focus();
  guard(switchView)(next[0]);
}

// --- Teams ---------------------------------------------------------------------------------

/** The search and state filter, as the list and the export take them. */
function teamFilter(params) {
  const q = $("q").value.trim();
  if (q) params.set("q", q);
  if ($("state").value) params.set("state", $("state").value);
  return params;
}

async function loadTeams(append) {
  const seq = ++teamsSeq;
  const params = teamFilter(new URLSearchParams({ limit: "50" }));
  if (append && teamCursor) params.set("cursor", teamCursor);
  const page = await api("/admin/v1/teams?" + params);
  if (seq !== teamsSeq) return;
  const body = $("teams").querySelector("tbody");
  if (!append) body.replaceChildren();
  for (const item of page.items) body.appendChild(teamRow(item));
  teamCursor = page.next_cursor;
  $("teams-more").hidden = !teamCursor;
  $("teams-empty").hidden = body.children.length > 0;
  markOpenTeam();
}

function teamRow(item) {
  const row = el("tr");
  row.dataset.team = item.team_id;
  const idCell = el("td");
  const link = el("a", item.team_id, "team-open");
  link.href = "#" + encodeURIComponent(item.team_id);
  idCell.appendChild(link);
  row.appendChild(idCell);
  cell(row, item.team_name);
  row.appendChild(el("td")).appendChild(badge(item.review_state));
  cell(row, item.payment_verified ? "verified" : "no", item.payment_verified ? "yes" : "no");
  cell(row, item.players, "num");
  const saved = cell(row, when(item.created_at).replace(/ UTC$/, ""));
  saved.title = item.created_at || "";
  // The link is what keyboards reach; a click anywhere on the row opens the team too.
  row.addEventListener("click", (e) => {
    e.preventDefault();
    guard(showTeam)(item.team_id);
  });
  return row;
}

function markOpenTeam() {
  for (const row of $("teams").querySelectorAll("tbody tr")) {
    const open = openTeam !== null && row.dataset.team === openTeam.team_id;
    row.classList.toggle("selected", open);
    if (open) row.setAttribute("aria-current", "true"); else row.removeAttribute("aria-current");
  }
}

async function showTeam(teamId, revealReason) {
  const seq = ++detailSeq;
  let path = "/admin/v1/teams/" + encodeURIComponent(teamId);
  if (revealReason) path += "?reveal=true&reason=" + encodeURIComponent(revealReason);
  const t = await api(path);
  if (seq !== detailSeq) return;
  openTeam = t;
  const review = t.review || {};
  $("teams-layout").classList.add("with-detail");
  $("team-detail").hidden = false;
  $("team-id").textContent = t.team_id;
  $("team-name").textContent = t.team_name;

  const fields = $("team-fields");
  fields.replaceChildren();
  field(fields, "Review").appendChild(badge(review.state || t.review_state));
  field(fields, "Version", review.version);
  field(fields, "Payment verified", review.payment_verified ? "yes" : "no");
  field(fields, "Confirmation email", t.email_status || "none");
  field(fields, "Saved at", when(t.created_at)).title = t.created_at || "";
  field(fields, "Registration", t.registration_id).className = "mono";
  field(fields, "Contacts", t.personal_data === "revealed" ? "revealed (audited)" : "masked");

  const contacts = $("team-contacts");
  contacts.replaceChildren();
  for (const [label, c] of [["Captain", t.captain], ["Vice-captain", t.vice_captain]]) {
    const dd = field(contacts, label);
    if (!c) continue;
    dd.append(el("span", c.name), el("span", c.phone, "mono"), el("span", c.email, "mono"));
    dd.className = "contact";
  }

  const players = $("team-players");
  players.replaceChildren();
  for (const p of t.players || []) {
    const li = el("li");
    li.append(el("span", p.name), el("span", p.role, "role"));
    players.appendChild(li);
  }

  const documents = $("team-documents");
  documents.replaceChildren();
  for (const d of t.documents || []) documents.appendChild(documentItem(d));
  if (documents.children.length === 0) documents.appendChild(el("li", "No documents.", "muted"));

  $("payment-verified").checked = Boolean(review.payment_verified);

  const history = $("team-history");
  history.replaceChildren();
  for (const h of review.history || []) {
    history.appendChild(el("li", "v" + h.version + " " + h.decision + " by " + h.actor + ", " + when(h.at) +
      (h.payment_verified ? ", payment verified" : ", payment not verified") + (h.reason ? ": " + h.reason : "")));
  }
  if (history.children.length === 0) history.appendChild(el("li", "Not reviewed yet.", "muted"));

  const audit = $("team-audit");
  audit.replaceChildren();
  for (const a of t.audit || []) {
    audit.appendChild(el("li", when(a.at) + " — " + a.actor + " " + a.action + " (" + a.outcome + ")" + (a.reason ? ": " + a.reason : "")));
  }
  markOpenTeam();
}

function documentItem(d) {
  const li = el("li");
  li.append(el("span", d.field, "doc-field"), el("span", d.content_type + ", " + bytes(d.bytes), "muted"));
  if (!d.url) return li;
  if (d.url.startsWith("/admin/")) {
    // Our own route: it needs the token, which a plain link cannot send.
    const open = el("button", "Open", "link");
    open.type = "button";
    open.addEventListener("click", guard(() => openProtected(d.url, d.field)));
    li.appendChild(open);
  } else if (/^https?:\/\//i.test(d.url)) {
    const link = el("a", "Open");
    link.href = d.url;
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    li.appendChild(link);
  }
  return li;
}

async function openProtected(url, name) {
  // Opened while the click still counts as a user's, so no popup blocker stops it.
  const win = window.open("", "_blank");
  try {
    const blob = await (await request(url)).blob();
    const href = URL.createObjectURL(blob);
    setTimeout(() => URL.revokeObjectURL(href), BLOB_TTL_MS);
    if (win) {
      win.opener = null;
      win.location.href = href;
    } else {
      const a = el("a");
      a.href = href;
      a.target = "_blank";
      a.click();
    }
    say("Opened " + name + " (" + bytes(blob.size) + ").");
  } catch (err) {
    if (win) win.close();
    throw err;
  }
}

function teamReason() {
  const text = $("team-reason").value.trim();
  if (!text) {
    $("team-reason").focus();
    throw new Error("Give a reason first.");
  }
  return text;
}

function busy(on) {
  for (const id of ["approve", "reject", "reveal"]) $(id).disabled = on;
}

async function decide(decision) {
  if (!openTeam) return;
  const team = openTeam;
  const body = {
    decision,
    reason: teamReason(),
    payment_verified: $("payment-verified").checked,
    version: (team.review || {}).version ?? 0,
  };
  busy(true);
  try {
    const result = await api("/admin/v1/teams/" + encodeURIComponent(team.team_id) + "/review",
      { method: "POST", body: JSON.stringify(body) });
    $("team-reason").value = "";
    await Promise.allSettled([showTeam(team.team_id), loadTeams(false), refreshFigures()]);
    const email = result.decision_email === "queued"
      ? "the decision email to the captain is queued."
      : "the decision email could not be queued (the decision stands).";
    say(team.team_id + " " + decision + " (review version " + result.review.version + "); " + email);
  } catch (err) {
    if (err.status === 409 && err.code === "CONFLICT") {
      await showTeam(team.team_id).catch(() => {});
      say(team.team_id + " was changed by someone else meanwhile, so nothing was decided. " +
        "It has been reloaded: check it and decide again.", true);
      return;
    }
    throw err;
  } finally {
    busy(false);
  }
}

async function reveal() {
  if (!openTeam) return;
  await showTeam(openTeam.team_id, teamReason());
  say("Contacts of " + openTeam.team_id + " revealed; the reveal is in the audit log.");
}

function closeTeam() {
  openTeam = null;
  detailSeq++;
  $("team-detail").hidden = true;
  $("teams-layout").classList.remove("with-detail");
  for (const id of ["team-fields", "team-contacts", "team-players", "team-documents", "team-history", "team-audit"]) {
    $(id).replaceChildren();
  }
  markOpenTeam();
}

/** `attachment; filename="teams-….csv"` → `teams-….csv`. */
function filenameFrom(disposition) {
  if (!disposition) return null;
  const star = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(disposition);
  if (star) {
    try { return decodeURIComponent(star[1].trim()); } catch { /* fall through to filename= */ }
  }
  const plain = /filename\s*=\s*"?([^";]+)"?/i.exec(disposition);
  return plain ? plain[1].trim() : null;
}

async function exportTeams(format) {
  const params = teamFilter(new URLSearchParams({ format }));
  say("Preparing the " + format.toUpperCase() + " export…");
  const response = await request("/admin/v1/teams/export?" + params);
  const blob = await response.blob();
  const name = (filenameFrom(response.headers.get("Content-Disposition")) || "teams." + format).replace(/[\\/]/g, "_");
  const href = URL.createObjectURL(blob);
  const a = el("a");
  a.href = href;
  a.download = name;
  a.hidden = true;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), BLOB_TTL_MS);
  say("Downloaded " + name + " (" + blob.size + " bytes).");
}

// --- Failed registrations ----------------------------------------------------------------------

async function loadFailed(append) {
  const code = $("code").value;
  let path = "/admin/v1/registrations?status=failed&limit=50";
  if (code) path += "&code=" + encodeURIComponent(code);
  if (append && cursor) path += "&cursor=" + encodeURIComponent(cursor);
  const page = await api(path);
  const body = $("failed").querySelector("tbody");
  if (!append) body.replaceChildren();
  for (const item of page.items) {
    const row = el("tr");
    const pick = el("td");
    const box = el("input");
    box.type = "checkbox";
    box.className = "pick";
    box.value = item.id;
    box.setAttribute("aria-label", "Select " + item.id);
    pick.appendChild(box);
    row.appendChild(pick);
    const idCell = el("td");
    const link = el("a", item.id, "open");
    link.href = "#" + item.id;
    link.addEventListener("click", (e) => { e.preventDefault(); openDetail(item.id).catch((err) => say(err.message, true)); });
    idCell.appendChild(link);
    row.appendChild(idCell);
    cell(row, item.failed_at);
    cell(row, item.error && item.error.code, "code");
    cell(row, item.attempts);
    cell(row, item.error && item.error.message, "message");
    body.appendChild(row);
  }
  cursor = page.next_cursor;
  $("more").hidden = !cursor;
  $("empty").hidden = body.children.length > 0;
}

async function openDetail(id) {
  const d = await api("/admin/v1/registrations/" + encodeURIComponent(id));
  openId = id;
  $("detail").hidden = false;
  $("detail-id").textContent = id;
  const fields = $("detail-fields");
  fields.replaceChildren();
  const status = d.status || {};
  const reg = d.registration || {};
  const pairs = [
    ["Status", status.status], ["Step", status.step], ["Team ID", d.team_id],
    ["Error", status.error ? status.error.code + ": " + status.error.message : ""],
    ["Team", reg.team_name], ["Captain", reg.captain ? reg.captain.name + " · " + reg.captain.phone + " · " + reg.captain.email : ""],
    ["Email", d.email ? d.email.status : ""],
  ];
  for (const [name, value] of pairs) field(fields, name, value);
  const attempts = $("detail-attempts");
  attempts.replaceChildren();
  for (const a of d.attempt_errors || []) attempts.appendChild(el("li", a.at + " — " + a.code + ": " + a.message));
  const audit = $("detail-audit");
  audit.replaceChildren();
  for (const a of d.audit || []) {
    audit.appendChild(el("li", a.at + " — " + a.actor + " " + a.action + " (" + a.outcome + ")" + (a.reason ? ": " + a.reason : "")));
  }
}

function reason() {
  const text = $("reason").value.trim();
  if (!text) { $("reason").focus(); throw new Error("Give a reason first."); }
  return text;
}

async function redriveSelected(event) {
  event.preventDefault();
  const ids = [...document.querySelectorAll("input.pick:checked")].map((b) => b.value);
  if (ids.length === 0) { say("Select registrations first.", true); return; }
  const result = await api("/admin/v1/redrive", { method: "POST", body: JSON.stringify({ reason: reason(), ids }) });
  say(result.requeued + " of " + result.requested + " re-driven.");
  await refresh();
}

async function redriveOpen() {
  await api("/admin/v1/registrations/" + encodeURIComponent(openId) + "/redrive",
    { method: "POST", body: JSON.stringify({ reason: reason() }) });
  say("Re-driven: " + openId);
  await refresh();
}

async function resendOpen() {
  const result = await api("/admin/v1/registrations/" + encodeURIComponent(openId) + "/resend-email",
    { method: "POST", body: JSON.stringify({ reason: reason() }) });
  say("Confirmation email " + result.email_status + ".");
}

async function refresh() {
  await Promise.all([refreshFigures(), loadFailed(false)]);
}

// --- Webhooks ----------------------------------------------------------------------------------

function webhookPath(id) { return "/admin/v1/webhooks/" + encodeURIComponent(id); }

function button(text, className, label) {
  const b = el("button", text, className);
  b.type = "button";
  if (label) b.setAttribute("aria-label", label);
  return b;
}

// Only organisers manage endpoints. The list is the first call the view makes; when the
// token's role is refused, the view says so instead of offering controls that would all be
// refused too.
async function loadWebhooks() {
  const seq = ++webhooksSeq;
  let page;
  try {
    page = await api("/admin/v1/webhooks");
  } catch (err) {
    if (seq === webhooksSeq && err.status === 403) {
      webhooksForbidden(err);
      return;
    }
    throw err;
  }
  if (seq !== webhooksSeq) return;
  const items = Array.isArray(page.items) ? page.items : [];
  $("webhooks-forbidden").hidden = true;
  $("webhooks-body").hidden = false;
  const body = $("webhooks").querySelector("tbody");
  body.replaceChildren();
  for (const item of items) body.appendChild(webhookRow(item));
  $("webhooks-empty").hidden = items.length > 0;
  // The open deliveries may belong to an endpoint someone has deleted meanwhile.
  if (deliveriesFor) {
    const open = items.find((e) => e.id === deliveriesFor.id);
    if (open) deliveriesFor = open; else closeDeliveries();
  }
  markOpenWebhook();
}

function webhooksForbidden(err) {
  clearWebhooks();
  const notice = $("webhooks-forbidden");
  notice.textContent = "Webhook endpoints are managed by organisers. " + err.message;
  notice.hidden = false;
}

function webhookRow(item) {
  const row = el("tr");
  row.dataset.webhook = item.id;
  cell(row, item.url, "url mono");
  cell(row, (item.events || []).join(", "), "events");
  const state = el("td");
  state.appendChild(badge(item.enabled ? "enabled" : "disabled"));
  if (!item.enabled && item.disabled_reason) state.appendChild(el("div", item.disabled_reason, "reason"));
  row.appendChild(state);
  cell(row, item.description, "description");
  cell(row, when(item.created_at).replace(/ UTC$/, "")).title = item.created_at || "";
  row.appendChild(webhookActions(item));
  return row;
}

function webhookActions(item) {
  const td = el("td", null, "actions");
  const toggle = item.enabled
    ? button("Disable", "webhook-disable", "Disable " + item.url)
    : button("Enable", "webhook-enable", "Enable " + item.url);
  toggle.addEventListener("click", guard(() => setEnabled(item, !item.enabled, toggle)));
  const deliveries = button("Deliveries", "webhook-deliveries", "Deliveries to " + item.url);
  deliveries.addEventListener("click", guard(() => openDeliveries(item)));
  const remove = button("Delete", "webhook-delete danger", "Delete " + item.url);
  remove.addEventListener("click", () => confirmDelete(td, item));
  td.append(toggle, deliveries, remove);
  return td;
}

// Deleting cannot be undone, so it takes a second, explicit click; Cancel puts the row's
// buttons back.
function confirmDelete(td, item) {
  const prompt = el("span", "Delete this endpoint? No events go to it any more.", "confirm");
  const yes = button("Delete for good", "webhook-delete-confirm danger", "Delete " + item.url + " for good");
  const no = button("Cancel", "webhook-delete-cancel");
  no.addEventListener("click", () => {
    const actions = webhookActions(item);
    td.replaceWith(actions);
    actions.querySelector(".webhook-delete").focus();
  });
  yes.addEventListener("click", guard(async () => {
    yes.disabled = true;
    no.disabled = true;
    try {
      await deleteWebhook(item);
    } finally {
      yes.disabled = false;
      no.disabled = false;
    }
  }));
  td.replaceChildren(prompt, yes, no);
  no.focus();
}

async function setEnabled(item, enabled, control) {
  control.disabled = true;
  let updated;
  try {
    updated = await api(webhookPath(item.id), { method: "PATCH", body: JSON.stringify({ enabled }) });
  } catch (err) {
    control.disabled = false;
    if (err.status === 404) await loadWebhooks().catch(() => {});
    throw err;
  }
  await loadWebhooks();
  say(enabled
    ? "Enabled " + updated.url + "."
    : "Disabled " + updated.url + ": no events are sent to it until it is enabled again.");
}

async function deleteWebhook(item) {
  try {
    await request(webhookPath(item.id), { method: "DELETE" });
  } catch (err) {
    if (err.status === 404) await loadWebhooks().catch(() => {});
    throw err;
  }
  if (deliveriesFor && deliveriesFor.id === item.id) closeDeliveries();
  await loadWebhooks();
  say("Deleted " + item.url + ".");
}

/** Where each field's problems are shown; `events[2]` goes with `events`. */
const WEBHOOK_FIELDS = {
  url: ["webhook-url", "webhook-url-error", "URL"],
  events: ["webhook-events", "webhook-events-error", "Events"],
  description: ["webhook-description", "webhook-description-error", "Description"],
};

function clearWebhookErrors() {
  for (const [input, slot] of Object.values(WEBHOOK_FIELDS)) {
    $(input).removeAttribute("aria-invalid");
    $(slot).replaceChildren();
    $(slot).hidden = true;
  }
  $("webhook-add-error").replaceChildren();
  $("webhook-add-error").hidden = true;
}

/** Each problem next to its field; one without a field of the form under the form. */
function showWebhookErrors(errors) {
  let first = null;
  for (const e of errors) {
    const name = String(e.field || "").replace(/\[\d+\]$/, "");
    const known = WEBHOOK_FIELDS[name];
    const slot = known ? $(known[1]) : $("webhook-add-error");
    const label = known ? known[2] : (e.field || "");
    slot.appendChild(el("span", (label ? label + " " : "") + (e.message || e.code || "is not valid") + ". "));
    slot.hidden = false;
    if (known) {
      $(known[0]).setAttribute("aria-invalid", "true");
      first = first || $(known[0]);
    }
  }
  if (first) (first.tagName === "FIELDSET" ? first.querySelector("input") : first).focus();
}

async function addWebhook(event) {
  event.preventDefault();
  clearWebhookErrors();
  const body = {
    url: $("webhook-url").value.trim(),
    events: [...$("webhook-events").querySelectorAll("input[name=event]:checked")].map((b) => b.value),
  };
  const description = $("webhook-description").value.trim();
  if (description) body.description = description;
  const submit = $("webhook-add-submit");
  submit.disabled = true;
  let created;
  try {
    created = await api("/admin/v1/webhooks", { method: "POST", body: JSON.stringify(body) });
  } catch (err) {
    if (err.status === 403) {
      webhooksForbidden(err);
    } else if (err.errors.length > 0) {
      showWebhookErrors(err.errors);
      say("The endpoint was not added: correct the fields marked in the form.", true);
      return;
    } else if (err.status !== 401) {
      $("webhook-add-error").textContent = err.message;
      $("webhook-add-error").hidden = false;
    }
    throw err;
  } finally {
    submit.disabled = false;
  }
  $("webhook-add").reset();
  showSecret(created);
  say("Added " + created.url + ". Copy its signing secret now: it is not shown again.");
  await loadWebhooks();
}

// The secret is in the create answer only. It stays on the page until it is dismissed or the
// token signed out, and is kept nowhere else (not in the list, not in storage).
function showSecret(endpoint) {
  $("webhook-secret-url").textContent = endpoint.url;
  $("webhook-secret-value").textContent = endpoint.secret || "";
  $("webhook-secret").hidden = false;
  $("webhook-secret-copy").focus();
}

function hideSecret() {
  $("webhook-secret-value").replaceChildren();
  $("webhook-secret-url").replaceChildren();
  $("webhook-secret").hidden = true;
}

async function copySecret() {
  const secret = $("webhook-secret-value").textContent;
  try {
    await navigator.clipboard.writeText(secret);
    say("The signing secret is on the clipboard.");
  } catch {
    // No clipboard (a browser's policy, an insecure origin): select it for the keyboard.
    const range = document.createRange();
    range.selectNodeContents($("webhook-secret-value"));
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    say("The browser did not allow copying: the secret is selected, press Ctrl+C to copy it.", true);
  }
}

function markOpenWebhook() {
  for (const row of $("webhooks").querySelectorAll("tbody tr")) {
    const open = deliveriesFor !== null && row.dataset.webhook === deliveriesFor.id;
    row.classList.toggle("selected", open);
    if (open) row.setAttribute("aria-current", "true"); else row.removeAttribute("aria-current");
  }
}

async function openDeliveries(item) {
  deliveriesFor = item;
  deliveriesCursor = null;
  $("deliveries-url").textContent = item.url;
  $("delivery-state").value = "";
  $("deliveries-table").querySelector("tbody").replaceChildren();
  $("deliveries-more").hidden = true;
  $("deliveries-empty").hidden = true;
  $("deliveries").hidden = false;
  markOpenWebhook();
  await loadDeliveries(false);
  $("deliveries").scrollIntoView({ block: "nearest" });
}

async function loadDeliveries(append) {
  if (!deliveriesFor) return;
  const endpoint = deliveriesFor;
  const seq = ++deliveriesSeq;
  const params = new URLSearchParams({ limit: String(DELIVERIES_PAGE) });
  if ($("delivery-state").value) params.set("state", $("delivery-state").value);
  if (append && deliveriesCursor) params.set("cursor", deliveriesCursor);
  const page = await api(webhookPath(endpoint.id) + "/deliveries?" + params);
  if (seq !== deliveriesSeq) return;
  const body = $("deliveries-table").querySelector("tbody");
  if (!append) body.replaceChildren();
  for (const d of Array.isArray(page.items) ? page.items : []) body.appendChild(deliveryRow(endpoint, d));
  deliveriesCursor = page.next_cursor || null;
  $("deliveries-more").hidden = !deliveriesCursor;
  $("deliveries-empty").hidden = body.children.length > 0;
}

function deliveryRow(endpoint, d) {
  const row = el("tr");
  row.dataset.delivery = d.id;
  cell(row, when(d.created_at).replace(/ UTC$/, "")).title = d.created_at || "";
  cell(row, d.event_type).appendChild(el("div", d.event_id, "mono small muted"));
  cell(row, d.registration_id, "mono");
  row.appendChild(el("td")).appendChild(badge(d.state));
  cell(row, d.attempts, "num");
  cell(row, d.last_status, "num");
  cell(row, d.last_error, "message");
  const [label, at] = d.state === "delivered" ? ["", d.delivered_at]
    : d.state === "pending" && d.next_attempt_at ? ["next ", d.next_attempt_at] : ["", null];
  cell(row, at ? label + when(at).replace(/ UTC$/, "") : "").title = at || "";
  const actions = el("td", null, "actions");
  if (d.state === "delivered" || d.state === "failed") {
    const resend = button("Resend", "delivery-resend", "Resend " + (d.event_type || "delivery") + " " + (d.event_id || d.id));
    resend.addEventListener("click", guard(() => resendDelivery(endpoint, d, row, resend)));
    actions.appendChild(resend);
  }
  row.appendChild(actions);
  return row;
}

async function resendDelivery(endpoint, d, row, control) {
  control.disabled = true;
  let updated;
  try {
    updated = await api(webhookPath(endpoint.id) + "/deliveries/" + encodeURIComponent(d.id) + "/resend",
      { method: "POST" });
  } catch (err) {
    control.disabled = false;
    if (err.status !== 409) throw err;
    // Refused for the endpoint's state (disabled meanwhile, perhaps by a 410): show it as it is.
    await loadWebhooks().catch(() => {});
    throw new Error("Not resent. " + err.message);
  }
  if (row.isConnected) row.replaceWith(deliveryRow(endpoint, { ...d, ...updated }));
  say("The " + (d.event_type || "event") + " delivery to " + endpoint.url + " is queued again.");
}

function closeDeliveries() {
  deliveriesFor = null;
  deliveriesCursor = null;
  deliveriesSeq++;
  $("deliveries").hidden = true;
  $("deliveries-url").replaceChildren();
  $("deliveries-table").querySelector("tbody").replaceChildren();
  $("deliveries-more").hidden = true;
  $("deliveries-empty").hidden = true;
  markOpenWebhook();
}

/** Empties the view; the next list load decides what it shows. */
function clearWebhooks() {
  webhooksSeq++;
  closeDeliveries();
  hideSecret();
  clearWebhookErrors();
  $("webhook-add").reset();
  $("webhooks").querySelector("tbody").replaceChildren();
  $("webhooks-empty").hidden = true;
  $("webhooks-body").hidden = true;
  $("webhooks-forbidden").replaceChildren();
  $("webhooks-forbidden").hidden = true;
}

// --- Signing in and out ----------------------------------------------------------------------

function signOut() {
  stopFigures();
  sessionStorage.removeItem("intake-admin-token");
  // Nothing read with the token (contacts, perhaps revealed) stays on the page.
  closeTeam();
  clearWebhooks();
  openId = null;
  $("detail").hidden = true;
  $("teams").querySelector("tbody").replaceChildren();
  $("failed").querySelector("tbody").replaceChildren();
  $("console").hidden = true;
  $("sign-in").hidden = false;
  $("sign-out").hidden = true;
}

async function signIn(event) {
  if (event) event.preventDefault();
  if (event) sessionStorage.setItem("intake-admin-token", $("token").value.trim());
  if (!token()) return;
  try {
    const [stats] = await Promise.all([loadStats(), loadQueue()]);
    // Teams first; but before any team is saved, the only work there is is the failures.
    const regs = stats.registrations || {};
    showView(regs.completed === 0 && regs.failed > 0 ? "failed" : "teams");
    $("token").value = "";
    $("sign-in").hidden = true;
    $("console").hidden = false;
    $("sign-out").hidden = false;
    startFigures();
    say("");
    // The lists fill in once the view they are in is showing.
    await Promise.all([loadTeams(false), loadFailed(false)]);
  } catch (err) {
    say(err.message, true);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);

  $("tab-teams").addEventListener("click", () => guard(switchView)("teams"));
  $("tab-failed").addEventListener("click", () => guard(switchView)("failed"));
  $("tab-webhooks").addEventListener("click", () => guard(switchView)("webhooks"));
  for (const [, tab] of VIEWS) $(tab).addEventListener("keydown", tabKeys);

  $("team-search").addEventListener("submit", (e) => { e.preventDefault(); guard(loadTeams)(false); });
  $("state").addEventListener("change", () => guard(loadTeams)(false));
  $("teams-more").addEventListener("click", guard(() => loadTeams(true)));
  $("export-csv").addEventListener("click", guard(() => exportTeams("csv")));
  $("export-xlsx").addEventListener("click", guard(() => exportTeams("xlsx")));
  $("team-close").addEventListener("click", closeTeam);
  $("team-decide").addEventListener("submit", (e) => e.preventDefault());
  $("approve").addEventListener("click", guard(() => decide("approved")));
  $("reject").addEventListener("click", guard(() => decide("rejected")));
  $("reveal").addEventListener("click", guard(reveal));

  $("filter").addEventListener("submit", (e) => { e.preventDefault(); guard(refresh)(); });
  $("more").addEventListener("click", guard(() => loadFailed(true)));
  $("action").addEventListener("submit", guard(redriveSelected));
  $("detail-redrive").addEventListener("click", guard(redriveOpen));
  $("detail-resend").addEventListener("click", guard(resendOpen));
  $("webhook-add").addEventListener("submit", guard(addWebhook));
  $("webhook-secret-copy").addEventListener("click", guard(copySecret));
  $("webhook-secret-done").addEventListener("click", () => { hideSecret(); say(""); });
  $("deliveries-filter").addEventListener("submit", (e) => { e.preventDefault(); guard(loadDeliveries)(false); });
  $("delivery-state").addEventListener("change", () => guard(loadDeliveries)(false));
  $("deliveries-more").addEventListener("click", guard(() => loadDeliveries(true)));
  $("deliveries-close").addEventListener("click", closeDeliveries);
  $("select-all").addEventListener("change", (e) => {
    for (const box of document.querySelectorAll("input.pick")) box.checked = e.target.checked;
  });
  signIn();
});
