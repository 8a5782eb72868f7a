// The admin page: every button calls the same admin API as intakectl, with the token kept in
// this tab's session storage only.
"use strict";

const $ = (id) => document.getElementById(id);
let cursor = null;
let openId = null;

function token() { return sessionStorage.getItem("intake-admin-token"); }

function say(text, isError) {
  $("message").textContent = text;
  $("message").className = isError ? "error" : "";
}

async function api(path, options) {
  const response = await fetch(path, {
    ...options,
    headers: { "Authorization": "Bearer " + token(), "Content-Type": "application/json" },
  });
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) {
    signOut();
    throw new Error("The token was refused.");
  }
  if (!response.ok) {
    throw new Error((body.code ? body.code + ": " : "") + (body.detail || response.statusText));
  }
  return body;
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

async function loadQueue() {
  const q = await api("/admin/v1/queue");
  const box = $("queue");
  box.replaceChildren();
  for (const [label, value] of [["Waiting", q.waiting], ["Oldest wait (s)", q.oldest_waiting_secs],
    ["In flight", q.in_flight], ["Failed", q.failed], ["Workers", q.workers_alive]]) {
    const item = document.createElement("div");
    item.textContent = label + ": ";
    const strong = document.createElement("span");
    strong.textContent = String(value);
    item.appendChild(strong);
    box.appendChild(item);
  }
}

async function loadFailed(append) {
  const code = $("code").value;
  let path = "/admin/v1/registrations?status=failed&limit=50";
  if (code) path += "&code=" + encodeURIComponent(code);
  if (append && cursor) path += "&cursor=" + encodeURIComponent(cursor);
  const page = await api(path);
  const body = $("failed").querySelector("tbody");
  if (!append) body.replaceChildren();
  for (const item of page.items) {
    const row = document.createElement("tr");
    const pick = document.createElement("td");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.className = "pick";
    box.value = item.id;
    box.setAttribute("aria-label", "Select " + item.id);
    pick.appendChild(box);
    row.appendChild(pick);
    const idCell = document.createElement("td");
    const link = document.createElement("a");
    link.href = "#" + item.id;
    link.className = "open";
    link.textContent = item.id;
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
  for (const [name, value] of pairs) {
    const dt = document.createElement("dt"); dt.textContent = name;
    const dd = document.createElement("dd"); dd.textContent = value == null ? "" : String(value);
    fields.append(dt, dd);
  }
  const attempts = $("detail-attempts");
  attempts.replaceChildren();
  for (const a of d.attempt_errors || []) {
    const li = document.createElement("li");
    li.textContent = a.at + " — " + a.code + ": " + a.message;
    attempts.appendChild(li);
  }
  const audit = $("detail-audit");
  audit.replaceChildren();
  for (const a of d.audit || []) {
    const li = document.createElement("li");
    li.textContent = a.at + " — " + a.actor + " " + a.action + " (" + a.outcome + ")" + (a.reason ? ": " + a.reason : "");
    audit.appendChild(li);
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
  await Promise.all([loadQueue(), loadFailed(false)]);
}

function signOut() {
  sessionStorage.removeItem("intake-admin-token");
  $("console").hidden = true;
  $("sign-in").hidden = false;
  $("sign-out").hidden = true;
}

async function signIn(event) {
  if (event) event.preventDefault();
  if (event) sessionStorage.setItem("intake-admin-token", $("token").value.trim());
  if (!token()) return;
  try {
    await refresh();
    $("sign-in").hidden = true;
    $("console").hidden = false;
    $("sign-out").hidden = false;
    say("");
  } catch (err) {
    say(err.message, true);
  }
}

function guard(fn) {
  return (...args) => fn(...args).catch((err) => say(err.message, true));
}

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  $("filter").addEventListener("submit", (e) => { e.preventDefault(); guard(refresh)(); });
  $("more").addEventListener("click", guard(() => loadFailed(true)));
  $("action").addEventListener("submit", guard(redriveSelected));
  $("detail-redrive").addEventListener("click", guard(redriveOpen));
  $("detail-resend").addEventListener("click", guard(resendOpen));
  $("select-all").addEventListener("change", (e) => {
    for (const box of document.querySelectorAll("input.pick")) box.checked = e.target.checked;
  });
  signIn();
});
