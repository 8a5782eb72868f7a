// The registration form: checks what the server checks (the server stays the authority),
// sends multipart/form-data with one Idempotency-Key per filled-in form, and then follows
// the registration's status through Server-Sent Events, falling back to polling.
"use strict";

const $ = (id) => document.getElementById(id);
const MAX_FILE = 5 * 1024 * 1024;
const ROLES = [["batsman", "Batsman"], ["bowler", "Bowler"], ["all-rounder", "All-rounder"], ["wicket-keeper", "Wicket-keeper"]];
const NAME = /^[\p{L}\p{M}' \u2019-]+$/u;
let idempotencyKey = newKey();
let playerSeq = 0;

function newKey() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return String(Date.now()) + "-" + Math.random().toString(16).slice(2);
}

function addPlayer(name, role) {
  const list = $("players");
  if (list.children.length >= 15) return;
  const n = playerSeq++;
  const li = document.createElement("li");
  li.className = "player";
  li.dataset.index = String(n);
  const nameInput = document.createElement("input");
  nameInput.className = "player-name";
  nameInput.setAttribute("aria-label", "Player name");
  nameInput.maxLength = 50;
  nameInput.value = name || "";
  const select = document.createElement("select");
  select.className = "player-role";
  select.setAttribute("aria-label", "Role");
  for (const [value, label] of ROLES) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = label;
    select.appendChild(option);
  }
  if (role) select.value = role;
  const remove = document.createElement("button");
  remove.type = "button";
  remove.textContent = "Remove";
  remove.setAttribute("aria-label", "Remove this player");
  remove.addEventListener("click", () => { li.remove(); updateCount(); });
  const error = document.createElement("p");
  error.className = "error player-error";
  error.setAttribute("role", "alert");
  li.append(nameInput, select, remove, error);
  list.appendChild(li);
  updateCount();
}

function updateCount() {
  const n = $("players").children.length;
  $("player-count").textContent = n + " player" + (n === 1 ? "" : "s") + " (11 to 15).";
  $("add-player").disabled = n >= 15;
}

function clearErrors() {
  for (const el of document.querySelectorAll(".error")) el.textContent = "";
  for (const el of document.querySelectorAll(".invalid")) el.classList.remove("invalid");
}

function showError(field, message) {
  const player = /^players\[(\d+)\]/.exec(field);
  if (player) {
    const li = $("players").children[Number(player[1])];
    if (li) {
      li.querySelector(".player-error").textContent = message;
      li.classList.add("invalid");
      return;
    }
    field = "players";
  }
  const target = $(field + "-error");
  if (target) {
    target.textContent = message;
    const box = document.querySelector('[data-field="' + field + '"]');
    if (box) box.classList.add("invalid");
  } else {
    $("form-error").textContent = field + ": " + message;
  }
}

function players() {
  return [...$("players").children].map((li) => ({
    name: li.querySelector(".player-name").value.trim(),
    role: li.querySelector(".player-role").value,
  }));
}

// Mirrors docs/contract.md §2; returns [field, message] pairs.
function check(form) {
  const problems = [];
  const text = (name) => form.elements[name].value.trim();
  const length = (name, min, max) => {
    const n = [...text(name)].length;
    if (n === 0) problems.push([name, "is required"]);
    else if (n < min) problems.push([name, "must be at least " + min + " characters"]);
    else if (n > max) problems.push([name, "must be at most " + max + " characters"]);
    return n >= min && n <= max;
  };
  length("team_name", 3, 80);
  for (const who of ["captain", "vice_captain"]) {
    if (length(who + "_name", 3, 50) && !NAME.test(text(who + "_name"))) {
      problems.push([who + "_name", "may contain only letters, spaces, hyphens and apostrophes"]);
    }
    if (!/^[0-9]{10}$/.test(text(who + "_phone"))) problems.push([who + "_phone", "must be exactly 10 digits"]);
    const email = text(who + "_email");
    if (!email) problems.push([who + "_email", "is required"]);
    else if (!form.elements[who + "_email"].checkValidity() || !/@[^@]+\.[^@]+$/.test(email)) {
      problems.push([who + "_email", "must be a valid email address"]);
    }
  }
  const list = players();
  if (list.length < 11) problems.push(["players", "must list at least 11 players"]);
  if (list.length > 15) problems.push(["players", "must list at most 15 players"]);
  const seen = new Map();
  list.forEach((p, i) => {
    const n = [...p.name].length;
    if (n < 3 || n > 50) problems.push(["players[" + i + "].name", "must be 3 to 50 characters"]);
    else if (!NAME.test(p.name)) problems.push(["players[" + i + "].name", "may contain only letters, spaces, hyphens and apostrophes"]);
    const key = p.name.toLowerCase().replace(/\s+/g, " ");
    if (key && seen.has(key)) problems.push(["players[" + i + "].name", "is the same player as players[" + seen.get(key) + "]"]);
    else seen.set(key, i);
  });
  for (const name of ["payment_receipt", "pastor_letter"]) {
    const file = form.elements[name].files[0];
    if (!file) {
      if (name === "payment_receipt") problems.push([name, "is required"]);
    } else if (file.size > MAX_FILE) {
      problems.push([name, "must be at most 5 MB"]);
    }
  }
  return problems;
}

function body(form) {
  const data = new FormData();
  for (const name of ["team_name", "captain_name", "captain_phone", "captain_email",
    "vice_captain_name", "vice_captain_phone", "vice_captain_email"]) {
    data.append(name, form.elements[name].value.trim());
  }
  data.append("players", JSON.stringify(players()));
  data.append("payment_receipt", form.elements.payment_receipt.files[0]);
  const letter = form.elements.pastor_letter.files[0];
  if (letter) data.append("pastor_letter", letter);
  return data;
}

let submitting = false;

async function submit(event) {
  event.preventDefault();
  if (submitting) return; // a double click sends once; the key covers retries too
  const form = event.target;
  clearErrors();
  const problems = check(form);
  if (problems.length) {
    problems.forEach(([f, m]) => showError(f, m));
    const first = document.querySelector(".invalid input, .invalid select");
    if (first) first.focus();
    return;
  }
  submitting = true;
  $("submit").disabled = true;
  $("submit").textContent = "Sending…";
  try {
    const response = await fetch("/v1/registrations", {
      method: "POST",
      headers: { "Idempotency-Key": idempotencyKey },
      body: body(form),
    });
    const answer = await response.json().catch(() => ({}));
    if (response.status === 202) {
      follow(answer.id, answer.status_url);
      return;
    }
    if (response.status === 400 && answer.errors) {
      answer.errors.forEach((e) => showError(e.field, e.message));
    } else if (answer.code === "DUPLICATE_TEAM") {
      showError("team_name", "is already registered with this captain's phone number");
      $("form-error").textContent = "This team is already registered, or being registered, with this captain's phone number. If that was not you, contact the organisers.";
    } else if (response.status === 429 || response.status === 503 || response.status === 409) {
      const wait = response.headers.get("Retry-After") || "a few";
      $("form-error").textContent = (answer.detail || "Please try again.") + " Try again in " + wait + " seconds.";
    } else if (response.status === 422) {
      idempotencyKey = newKey();
      $("form-error").textContent = "This form was already sent with other details. Press Register again to send it as a new registration.";
    } else {
      $("form-error").textContent = answer.detail || "Something went wrong; please try again.";
    }
  } catch (err) {
    $("form-error").textContent = "The network failed. Your details are still here: press Register to try again.";
  } finally {
    submitting = false;
    $("submit").disabled = false;
    $("submit").textContent = "Register";
  }
}

function render(status) {
  const reached = {
    queued: true,
    checked: ["uploading_files", "saving", "sending_email"].includes(status.step) || status.status === "completed",
    documents: ["saving", "sending_email"].includes(status.step) || status.status === "completed",
    saved: status.step === "sending_email" || status.status === "completed",
    email: status.status === "completed",
  };
  for (const li of document.querySelectorAll(".steps li")) {
    li.classList.toggle("done", reached[li.dataset.step]);
  }
  if (status.team_id) {
    $("team-id").hidden = false;
    $("team-id").textContent = "Your team ID: " + status.team_id;
  }
  const outcome = $("outcome");
  if (status.status === "completed") {
    outcome.className = "";
    outcome.textContent = status.email_status === "sent"
      ? "You are registered. A confirmation email is on its way."
      : "You are registered. We could not send the confirmation email; keep your team ID.";
  } else if (status.status === "failed") {
    outcome.className = "failed";
    outcome.textContent = (status.error && status.error.message ? status.error.message : "The registration failed.")
      + " Contact the organisers and quote reference " + status.id + ".";
  } else {
    outcome.className = "";
    outcome.textContent = "Working on it…";
  }
  return status.status === "completed" || status.status === "failed";
}

function follow(id, statusUrl) {
  $("registration").hidden = true;
  $("progress").hidden = false;
  render({ id, status: "queued" });
  if (!window.EventSource) {
    poll(statusUrl);
    return;
  }
  const source = new EventSource(statusUrl + "/events");
  let settled = false;
  // Any end before a final status falls back to polling, once: the server ending the stream
  // at its maximum age (`timeout`), a refusal when it opens (429: this browser holds too
  // many streams) and a broken connection alike. EventSource would otherwise reconnect.
  const fallBack = () => {
    if (settled) return;
    settled = true;
    source.close();
    poll(statusUrl);
  };
  source.addEventListener("status", (e) => {
    let status;
    try { status = JSON.parse(e.data); } catch (err) { return; }
    if (render(status)) {
      settled = true;
      source.close();
    }
  });
  source.addEventListener("timeout", fallBack);
  source.onerror = fallBack;
}

async function poll(statusUrl) {
  try {
    const response = await fetch(statusUrl, { cache: "no-store" });
    if (response.ok && render(await response.json())) return;
    const wait = Number(response.headers.get("Retry-After")) || 1;
    setTimeout(() => poll(statusUrl), wait * 1000);
  } catch (err) {
    setTimeout(() => poll(statusUrl), 2000);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (let i = 0; i < 11; i++) addPlayer();
  $("add-player").addEventListener("click", () => addPlayer());
  $("registration").addEventListener("submit", submit);
});
