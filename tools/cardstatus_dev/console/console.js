// cardstatus ops console: plain ES module, no dependencies, same-origin API.
//
// Views (all reachable by URL, so a link can go into a ticket):
//   /console                        card lookup
//   /console?card_id=ZYW8890        one card
//   /console?view=files&partner=&outcome=&since=
//   /console?file=42                one file: report, warnings, rejected rows, void
//   /console?view=stuck&status=&older_than_hours=&partner=
//   /console?view=partners          partner feed health (partners.js)
// A phone number never goes into a URL: phone lookups are POST /cards/search with a JSON body,
// and the page's own URL then names the card found, not the phone.

import { partnersView } from "./partners.js";

const PAGE = "/console";
const FILES_PAGE_SIZE = 25;
const STUCK_STATUSES = ["PICKED_UP", "DELIVERY_EXCEPTION"];
const OUTCOMES = ["applied", "duplicate_file", "rejected_file"];

const $ = (sel) => document.querySelector(sel);

// --- API ---------------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Call the API (same origin). Resolves to the parsed JSON; rejects with ApiError. */
export async function api(path, { method = "GET", body, signal } = {}) {
  const init = { method, signal, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "network_error", "The API could not be reached. Is the server running?");
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = data && data.error;
    if (error && typeof error === "object") {
      throw new ApiError(response.status, error.code || "error", error.message || response.statusText);
    }
    const message = (data && data.message) || response.statusText || "Request failed";
    throw new ApiError(response.status, "http_" + response.status, message);
  }
  return data;
}

function query(params) {
  const q = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") q.set(name, String(value));
  }
  const s = q.toString();
  return s ? "?" + s : "";
}

const enc = encodeURIComponent;

// --- DOM helpers (text only: API data never goes through innerHTML) -----------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "text") el.textContent = value;
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function badge(value, label) {
  const known = [...STUCK_STATUSES, "DELIVERED", "RETURNED", ...OUTCOMES, "voided"];
  const cls = known.includes(value) ? value : "other";
  return h("span", { class: `badge badge-${cls}` }, label || value || "unknown");
}

function pad(n) {
  return String(n).padStart(2, "0");
}

/** "2023-11-14 12:00 UTC" (seconds shown when not zero). */
export function formatTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const secs = d.getUTCSeconds() ? ":" + pad(d.getUTCSeconds()) : "";
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}${secs} UTC`;
}

/** "5 min", "3 h", "2 d 4 h" — hours given, or since the ISO time. */
export function formatAge(hoursOrIso) {
  let hours = hoursOrIso;
  if (typeof hoursOrIso === "string") {
    const t = new Date(hoursOrIso).getTime();
    if (Number.isNaN(t)) return "";
    hours = (Date.now() - t) / 3_600_000;
  }
  if (typeof hours !== "number" || Number.isNaN(hours)) return "";
  if (hours < 0) hours = 0;
  const minutes = Math.floor(hours * 60);
  if (minutes < 1) return "just now";
  if (minutes < 60) return `${minutes} min`;
  if (hours < 48) return `${Math.floor(hours)} h`;
  const days = Math.floor(hours / 24);
  if (days < 60) return `${days} d ${Math.floor(hours - days * 24)} h`;
  if (days < 730) return `${days} d`;
  return `${Math.floor(days / 365.25)} years`;
}

function timeEl(iso, { age = false } = {}) {
  if (!iso) return h("span", {}, "—");
  const ageText = formatAge(iso);
  const text = !age ? formatTime(iso) : ageText === "just now" ? ageText : `${ageText} ago`;
  return h("time", { datetime: iso, title: formatTime(iso) }, text);
}

function facts(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs
      .filter(([, value]) => value !== undefined)
      .map(([term, value]) => h("div", {}, h("dt", {}, term), h("dd", {}, value ?? "—"))),
  );
}

function empty(text) {
  return h("p", { class: "empty" }, text);
}

function table(caption, headers, rows) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      caption ? h("caption", {}, caption) : null,
      h("thead", {}, h("tr", {}, headers.map(([label, cls]) => h("th", { scope: "col", class: cls }, label)))),
      h("tbody", {}, rows),
    ),
  );
}

// --- status line, alert ------------------------------------------------------------------

let busy = 0;

function setLoading(text) {
  busy += 1;
  $("#loading").textContent = text;
  $("#main").setAttribute("aria-busy", "true");
  return () => {
    busy -= 1;
    if (busy <= 0) {
      busy = 0;
      $("#loading").textContent = "";
      $("#main").removeAttribute("aria-busy");
    }
  };
}

const ERROR_TITLES = {
  0: "The API is unreachable",
  400: "Invalid request",
  403: "Not allowed",
  404: "Not found",
  409: "Conflict",
  503: "Service unavailable",
};

const ERROR_HINTS = {
  403: "Your credentials do not allow this call.",
  503: "The database cannot be reached right now; try again in a moment.",
};

export function showError(err, { retry = null } = {}) {
  if (err && err.name === "AbortError") return;
  const box = $("#alert");
  const status = err instanceof ApiError ? err.status : 0;
  const title = ERROR_TITLES[status] || (status >= 500 ? "Server error" : "Request failed");
  const hint = ERROR_HINTS[status] || (status >= 500 ? "Try again; if it persists, tell an engineer." : null);
  const transient = status === 0 || status >= 500;
  const parts = [
    h("strong", {}, status ? `${title} (${status})` : title),
    h("span", {}, err && err.message ? err.message : String(err)),
    err instanceof ApiError && err.code ? h("span", {}, " ", h("code", {}, err.code)) : null,
    hint ? h("span", { class: "hint" }, hint) : null,
    retry && transient ? h("button", { type: "button", class: "secondary", id: "retry", onclick: retry }, "Try again") : null,
  ];
  box.replaceChildren(...parts.filter(Boolean));
  box.hidden = false;
}

function clearError() {
  const box = $("#alert");
  box.hidden = true;
  box.replaceChildren();
}

// --- routing -----------------------------------------------------------------------------

const VIEWS = ["partners", "card", "files", "file", "stuck"];
let controller = null; // aborts the previous view's requests when the view changes

function currentParams() {
  return new URLSearchParams(location.search);
}

function viewOf(params) {
  if (params.has("file")) return "file";
  if (params.has("card_id")) return "card";
  const view = params.get("view");
  return VIEWS.includes(view) ? view : "card";
}

/** Go to a console URL (pushState, so Back works), then render it. */
export function navigate(url, { replace = false, focus = false } = {}) {
  const target = new URL(url, location.href);
  if (replace) history.replaceState(null, "", target);
  else history.pushState(null, "", target);
  return route({ focus });
}

function showView(view) {
  for (const name of VIEWS) $(`#view-${name}`).hidden = name !== view;
  const tab = view === "file" ? "files" : view;
  for (const name of ["partners", "card", "files", "stuck"]) {
    const link = $(`#nav-${name}`);
    if (name === tab) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

export async function route({ focus = false } = {}) {
  if (controller) controller.abort();
  controller = new AbortController();
  const signal = controller.signal;
  const params = currentParams();
  const view = viewOf(params);
  clearError();
  showView(view);
  if (focus) $(`#view-${view} h2`).focus({ preventScroll: false });
  try {
    if (view === "card") await cardView(params, signal);
    else if (view === "files") await filesView(params, signal);
    else if (view === "file") await fileView(params.get("file"), signal);
    else if (view === "stuck") await stuckView(params, signal);
    else if (view === "partners") await partnersView(params, signal, { api, timeEl });
  } catch (err) {
    showError(err, { retry: () => route() });
  }
}

// --- card lookup -------------------------------------------------------------------------

async function cardView(params, signal) {
  const cardId = params.get("card_id");
  const result = $("#card-result");
  if (!cardId) {
    document.title = "Card lookup — cardstatus console";
    result.replaceChildren();
    return;
  }
  $("#card-id").value = cardId;
  $("#card-phone").value = "";
  document.title = `${cardId} — cardstatus console`;
  result.replaceChildren();
  const done = setLoading(`Looking up card ${cardId}…`);
  try {
    const card = await api(`/cards/${enc(cardId)}`, { signal });
    result.replaceChildren(renderCard(card));
  } finally {
    done();
  }
}

async function lookupByPhone(phone, cardId) {
  if (controller) controller.abort();
  controller = new AbortController();
  const signal = controller.signal;
  clearError();
  const result = $("#card-result");
  result.replaceChildren();
  // The page's URL never carries the phone: it goes back to the plain lookup page, and once the
  // card is known, names the card (a link that can go into a ticket).
  history.pushState(null, "", PAGE);
  showView("card");
  const done = setLoading("Looking up by phone…");
  try {
    const body = { user_phone: phone };
    if (cardId) body.card_id = cardId;
    const card = await api("/cards/search", { method: "POST", body, signal });
    history.replaceState(null, "", PAGE + query({ card_id: card.card_id }));
    document.title = `${card.card_id} — cardstatus console`;
    result.replaceChildren(renderCard(card));
  } catch (err) {
    showError(err, { retry: () => lookupByPhone(phone, cardId) });
  } finally {
    done();
  }
}

function historyEntry(event) {
  const detail = [];
  if (event.reason) detail.push(h("span", {}, "Reason: ", h("strong", {}, event.reason)));
  if (event.comment) detail.push(h("span", {}, `${detail.length ? " · " : ""}Comment: “${event.comment}”`));
  return h(
    "li",
    {},
    h("div", {}, badge(event.status), h("time", { class: "when", datetime: event.at }, formatTime(event.at)),
      event.partner ? h("span", { class: "note" }, ` via ${event.partner}`) : null),
    detail.length ? h("div", { class: "detail" }, detail) : null,
  );
}

function renderCard(card) {
  const history = [...(card.history || [])].sort((a, b) => String(b.at).localeCompare(String(a.at)));
  const others = card.other_cards || [];
  const panel = h(
    "article",
    { class: "panel", "aria-labelledby": "card-title", "data-card-id": card.card_id },
    h(
      "div",
      { class: "panel-head" },
      h("h3", { id: "card-title", class: "mono" }, card.card_id),
      h("span", { id: "card-status" }, badge(card.status)),
      h("span", { class: "note" }, "since ", timeEl(card.status_at), " (", formatAge(card.status_at), " ago)"),
    ),
    facts([
      ["Status at", timeEl(card.status_at)],
      ["Phone", h("span", { class: "mono", id: "card-masked-phone" }, card.user_phone || "—")],
      ["Reason", card.reason || "—"],
      ["Comment", card.comment || "—"],
      ["Picked up", timeEl(card.picked_up_at)],
      ["Delivered", timeEl(card.delivered_at)],
      ["Returned", timeEl(card.returned_at)],
      ["Delivery exceptions", String(card.exception_count ?? 0)],
    ]),
    h("h3", { id: "timeline-heading" }, `Timeline (${history.length} event${history.length === 1 ? "" : "s"}, newest first)`),
    history.length
      ? h("ol", { class: "timeline", id: "timeline", "aria-labelledby": "timeline-heading" }, history.map(historyEntry))
      : empty("No events recorded for this card."),
  );
  if (others.length || card.truncated) {
    panel.append(...[
      h("h3", { id: "other-cards-heading" }, "Other cards of this phone"),
      others.length
        ? h(
            "ul",
            { id: "other-cards", "aria-labelledby": "other-cards-heading" },
            others.map((other) =>
              h("li", {}, h("a", { href: PAGE + query({ card_id: other.card_id }), class: "mono" }, other.card_id), " ",
                badge(other.status), " ", h("span", { class: "note" }, formatTime(other.status_at)))),
          )
        : null,
      card.truncated ? h("p", { class: "note", id: "truncated" }, "This phone has more cards than one answer lists (truncated).") : null,
    ].filter(Boolean));
  }
  return panel;
}

// --- recent files ------------------------------------------------------------------------

function sinceToApi(value) {
  // <input type=datetime-local> gives "2023-11-14T12:00[:SS]"; the console reads it as UTC.
  if (!value) return "";
  return /Z$|[+-]\d\d:\d\d$/.test(value) ? value : `${value.length === 16 ? value + ":00" : value}Z`;
}

function sinceToInput(value) {
  return value ? value.replace(/Z$/, "").replace(/[+-]\d\d:\d\d$/, "").slice(0, 19) : "";
}

async function filesView(params, signal) {
  document.title = "Recent files — cardstatus console";
  const filters = {
    partner: params.get("partner") || "",
    outcome: params.get("outcome") || "",
    since: params.get("since") || "",
  };
  $("#files-partner").value = filters.partner;
  $("#files-outcome").value = OUTCOMES.includes(filters.outcome) ? filters.outcome : "";
  $("#files-since").value = sinceToInput(filters.since);
  const result = $("#files-result");
  result.replaceChildren();
  const tbody = h("tbody", {});
  const more = h("div", { class: "more" });
  let shown = 0;

  const load = async (cursor) => {
    const done = setLoading(cursor ? "Loading more files…" : "Loading recent files…");
    try {
      const page = await api(`/files${query({ ...filters, limit: FILES_PAGE_SIZE, cursor })}`, { signal });
      const files = page.files || [];
      if (!cursor && !files.length) {
        result.replaceChildren(empty(Object.values(filters).some(Boolean)
          ? "No files match these filters." : "No files received yet."));
        return;
      }
      if (!cursor) {
        result.replaceChildren(
          h("div", { class: "table-wrap" }, h("table", { id: "files-table" },
            h("caption", { class: "visually-hidden" }, "Recent files, newest first"),
            h("thead", {}, h("tr", {},
              ["File", "Partner", "Outcome", "Rows", "Accepted", "Duplicate", "Rejected", "Warnings", "Received"].map(
                (label, i) => h("th", { scope: "col", class: i >= 3 && i <= 7 ? "num" : null }, label)))),
            tbody)),
          more,
        );
      }
      tbody.append(...files.map(fileRow));
      shown += files.length;
      more.replaceChildren(h("span", { class: "note", role: "status" }, `${shown} file${shown === 1 ? "" : "s"} shown`));
      if (page.next_cursor) {
        more.prepend(h("button", {
          type: "button", class: "secondary", id: "files-more",
          onclick: (e) => { e.currentTarget.disabled = true; load(page.next_cursor).catch(showError); },
        }, "Load more"));
      }
    } finally {
      done();
    }
  };
  await load("");
}

function fileName(file) {
  const key = file.key || "";
  return key.slice(key.lastIndexOf("/") + 1) || `file ${file.file_id}`;
}

function folderOf(key) {
  return key && key.includes("/") ? key.slice(0, key.lastIndexOf("/") + 1) : "";
}

function fileRow(file) {
  const c = file.counts || {};
  const href = PAGE + query({ file: file.file_id });
  const row = h(
    "tr",
    { class: file.voided ? "is-voided" : null, "data-file-id": file.file_id },
    h("td", { class: "file-name" }, h("a", { href, title: file.key }, fileName(file)),
      h("div", { class: "note" }, `#${file.file_id}`, folderOf(file.key) ? ` · ${folderOf(file.key)}` : "")),
    h("td", {}, file.partner || "—"),
    h("td", {}, badge(file.outcome), file.voided ? [" ", badge("voided")] : null,
      file.reason ? h("div", { class: "note" }, file.reason) : null),
    ["rows", "accepted", "duplicate", "rejected", "warnings"].map((k) => h("td", { class: "num" }, c[k] ?? "—")),
    h("td", {}, timeEl(file.received_at, { age: true })),
  );
  // The whole row opens the file for a mouse; the link is the keyboard (and middle-click) way.
  row.addEventListener("click", (event) => {
    if (event.target.closest("a, button") || getSelection().toString()) return;
    navigate(href, { focus: true });
  });
  row.style.cursor = "pointer";
  return row;
}

// --- one file ----------------------------------------------------------------------------

async function fileView(fileId, signal, voidResult = null) {
  const result = $("#file-result");
  $("#file-heading").textContent = `File #${fileId}`;
  document.title = `File #${fileId} — cardstatus console`;
  result.replaceChildren();
  const done = setLoading(`Loading file #${fileId}…`);
  let report;
  try {
    report = await api(`/files/${enc(fileId)}`, { signal });
  } finally {
    done();
  }
  result.replaceChildren(renderReport(fileId, report, voidResult));
  await loadRejects(fileId, signal);
}

function renderReport(fileId, report, voidResult) {
  const file = report.file || {};
  const c = report.counts || {};
  const voided = Boolean(report.voided_at);
  const canVoid = report.outcome === "applied" && !voided;
  const warnings = report.warnings || [];
  const voidHint = voided
    ? "This file is already voided."
    : report.outcome !== "applied"
      ? "Only an applied file can be voided."
      : "Withdraws this file's events from every card it touched.";

  const wrap = h("div", { id: "file-report" });
  wrap.append(
    h(
      "article",
      { class: "panel", "aria-labelledby": "file-title" },
      h("div", { class: "panel-head" },
        h("h3", { id: "file-title", class: "mono" }, file.key || `file ${fileId}`),
        h("span", { id: "file-outcome" }, badge(report.outcome)),
        voided ? badge("voided") : null),
      report.reason ? h("p", { id: "file-reason" }, h("strong", {}, "Reason: "), report.reason) : null,
      facts([
        ["Partner", file.partner || "—"],
        ["Received", timeEl(report.received_at || report.started_at)],
        ["Finished", timeEl(report.finished_at)],
        ["Rows", String(c.rows ?? "—")],
        ["Accepted", String(c.accepted ?? "—")],
        ["Duplicate", String(c.duplicate ?? "—")],
        ["Rejected", String(c.rejected ?? "—")],
        ["Warnings", String(c.warnings ?? "—")],
        ...(voided
          ? [["Voided at", timeEl(report.voided_at)], ["Voided by", report.voided_by || "—"], ["Void reason", report.void_reason || "—"]]
          : []),
      ]),
      h("div", { class: "more" },
        h("button", {
          type: "button", class: "danger", id: "void-button", disabled: !canVoid,
          "aria-describedby": "void-hint", onclick: () => openVoidDialog(fileId),
        }, "Void file…"),
        h("span", { class: "note", id: "void-hint" }, voidHint)),
      voidResult ? h("div", {}, h("h3", {}, "Void result"), h("pre", { class: "json", id: "void-result", tabindex: "-1" }, JSON.stringify(voidResult, null, 2))) : null,
    ),
    h("h3", { id: "warnings-heading" }, `Warnings (${c.warnings ?? warnings.length})`),
    warnings.length
      ? table(
          warnings.length < (c.warnings ?? 0) ? `First ${warnings.length} of ${c.warnings} listed` : null,
          [["Line", "line"], ["Warning"]],
          warnings.map((w) => h("tr", {}, h("td", { class: "line" }, w.line ?? "—"), h("td", {}, w.warning ?? ""))),
        )
      : empty("No warnings."),
    h("h3", { id: "rejects-heading" }, `Rejected rows (${c.rejected ?? 0})`),
    h("div", { id: "rejects" }),
    h("details", {}, h("summary", {}, "Full report (JSON)"), h("pre", { class: "json" }, JSON.stringify(report, null, 2))),
  );
  return wrap;
}

async function loadRejects(fileId, signal) {
  const box = $("#rejects");
  const tbody = h("tbody", {});
  const more = h("div", { class: "more" });
  let shown = 0;
  const load = async (cursor) => {
    const done = setLoading("Loading rejected rows…");
    try {
      const page = await api(`/files/${enc(fileId)}/rejects${query({ cursor })}`, { signal });
      const rejects = page.rejects || [];
      if (!cursor && !rejects.length) {
        box.replaceChildren(empty("No rejected rows."));
        return;
      }
      if (!cursor) {
        box.replaceChildren(
          h("div", { class: "table-wrap" }, h("table", { id: "rejects-table", "aria-labelledby": "rejects-heading" },
            h("thead", {}, h("tr", {}, h("th", { scope: "col", class: "line" }, "Line"), h("th", { scope: "col" }, "Reason"))),
            tbody)),
          more,
        );
      }
      tbody.append(...rejects.map((r) => h("tr", {}, h("td", { class: "line" }, r.line ?? "—"), h("td", {}, r.reason ?? ""))));
      shown += rejects.length;
      more.replaceChildren(h("span", { class: "note" }, `${shown} shown`));
      if (page.next_cursor) {
        more.prepend(h("button", {
          type: "button", class: "secondary", id: "rejects-more",
          onclick: (e) => { e.currentTarget.disabled = true; load(page.next_cursor).catch(showError); },
        }, "Load more rejected rows"));
      }
    } finally {
      done();
    }
  };
  await load("");
}

function openVoidDialog(fileId) {
  const dialog = $("#void-dialog");
  const form = $("#void-form");
  const reason = $("#void-reason");
  reason.value = "";
  dialog.dataset.fileId = fileId;
  if (!form.dataset.wired) {
    form.dataset.wired = "1";
    $("#void-cancel").addEventListener("click", () => dialog.close("cancel"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = reason.value.trim();
      if (!text) {
        reason.setCustomValidity("Give a reason: it is recorded with the void.");
        reason.reportValidity();
        return;
      }
      reason.setCustomValidity("");
      dialog.close("void");
      voidFile(dialog.dataset.fileId, text);
    });
    reason.addEventListener("input", () => reason.setCustomValidity(""));
  }
  dialog.showModal();
  reason.focus();
}

async function voidFile(fileId, reason) {
  clearError();
  const done = setLoading(`Voiding file #${fileId}…`);
  let outcome;
  try {
    outcome = await api(`/files/${enc(fileId)}/void`, { method: "POST", body: { reason } });
  } catch (err) {
    showError(err);
    return;
  } finally {
    done();
  }
  try {
    if (controller) controller.abort();
    controller = new AbortController();
    await fileView(fileId, controller.signal, outcome);
  } catch (err) {
    showError(err);
  }
  const pre = $("#void-result");
  if (pre) pre.focus();
}

// --- stuck cards -------------------------------------------------------------------------

async function stuckView(params, signal) {
  document.title = "Stuck cards — cardstatus console";
  const status = STUCK_STATUSES.includes(params.get("status")) ? params.get("status") : "PICKED_UP";
  const filters = {
    status,
    older_than_hours: params.get("older_than_hours") || "72",
    partner: params.get("partner") || "",
  };
  $("#stuck-status").value = filters.status;
  $("#stuck-hours").value = filters.older_than_hours;
  $("#stuck-partner").value = filters.partner;
  const result = $("#stuck-result");
  result.replaceChildren();
  const tbody = h("tbody", {});
  const more = h("div", { class: "more" });
  let shown = 0;
  const load = async (cursor) => {
    const done = setLoading(cursor ? "Loading more cards…" : "Loading stuck cards…");
    try {
      const page = await api(`/stuck_cards${query({ ...filters, cursor })}`, { signal });
      const cards = page.cards || [];
      if (!cursor && !cards.length) {
        result.replaceChildren(empty(`No cards in ${filters.status} for more than ${filters.older_than_hours} h` +
          (filters.partner ? ` from ${filters.partner}.` : ".")));
        return;
      }
      if (!cursor) {
        result.replaceChildren(
          h("div", { class: "table-wrap" }, h("table", { id: "stuck-table" },
            h("caption", {}, `Cards in ${filters.status} for more than ${filters.older_than_hours} h, oldest first`),
            h("thead", {}, h("tr", {},
              h("th", { scope: "col" }, "Card"), h("th", { scope: "col" }, "Status"),
              h("th", { scope: "col" }, "Since"), h("th", { scope: "col", class: "num" }, "Age"),
              h("th", { scope: "col" }, "Partner"))),
            tbody)),
          more,
        );
      }
      tbody.append(...cards.map((card) => h("tr", { "data-card-id": card.card_id },
        h("td", {}, h("a", { href: PAGE + query({ card_id: card.card_id }), class: "mono" }, card.card_id)),
        h("td", {}, badge(card.status)),
        h("td", {}, timeEl(card.status_at)),
        h("td", { class: "num" }, formatAge(card.age_hours ?? card.status_at)),
        h("td", {}, card.partner || "—"))));
      shown += cards.length;
      more.replaceChildren(h("span", { class: "note", role: "status" }, `${shown} card${shown === 1 ? "" : "s"} shown`));
      if (page.next_cursor) {
        more.prepend(h("button", {
          type: "button", class: "secondary", id: "stuck-more",
          onclick: (e) => { e.currentTarget.disabled = true; load(page.next_cursor).catch(showError); },
        }, "Load more"));
      }
    } finally {
      done();
    }
  };
  await load("");
}

// --- wiring ------------------------------------------------------------------------------

function wire() {
  $("#card-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const cardInput = $("#card-id");
    const cardId = cardInput.value.trim();
    const phone = $("#card-phone").value.trim();
    if (!cardId && !phone) {
      showError(new ApiError(400, "missing_parameter", "Enter a card ID or a phone number."));
      cardInput.focus();
      return;
    }
    if (phone) {
      lookupByPhone(phone, cardId);
    } else {
      navigate(PAGE + query({ card_id: cardId }));
    }
  });

  $("#files-form").addEventListener("submit", (event) => {
    event.preventDefault();
    navigate(PAGE + query({
      view: "files",
      partner: $("#files-partner").value.trim(),
      outcome: $("#files-outcome").value,
      since: sinceToApi($("#files-since").value),
    }));
  });

  $("#stuck-form").addEventListener("submit", (event) => {
    event.preventDefault();
    navigate(PAGE + query({
      view: "stuck",
      status: $("#stuck-status").value,
      older_than_hours: $("#stuck-hours").value,
      partner: $("#stuck-partner").value.trim(),
    }));
  });

  // Links inside the console change the view without a reload; Back/Forward re-render.
  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[href]");
    if (!link || event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey || link.target) return;
    const url = new URL(link.href, location.href);
    if (url.origin !== location.origin || url.pathname !== PAGE) return;
    event.preventDefault();
    navigate(url, { focus: true });
  });
  window.addEventListener("popstate", () => route());

  for (const heading of document.querySelectorAll(".view h2")) heading.tabIndex = -1;
}

wire();
route();
