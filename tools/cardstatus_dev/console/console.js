// cardstatus ops console: plain ES module, no dependencies, same-origin API.
//
// Views (all reachable by URL, so a link can go into a ticket):
//   /console                        card lookup
//   /console?card_id=ZYW8890        one card
//   /console?view=files&partner=&outcome=&since=&has_rejects=true
//   /console?file=42                one file: report, cards it changed, rejected rows (CSV),
//                                   warnings grouped by kind, void with a preview
// Times show in the viewer's zone with UTC on hover (the header's toggle switches to UTC);
// statuses and outcomes get friendly labels (the API keeps its enums); counts get separators.
//   /console?view=stuck&status=&older_than_hours=&partner=
//   /console?view=partners          partner feed health (partners.js)
// A phone number never goes into a URL: phone lookups are POST /cards/search with a JSON body,
// and the page's own URL then names the card found, not the phone.

import { partnersView } from "./partners.js";

const PAGE = "/console";
const FILES_PAGE_SIZE = 25;
const STUCK_STATUSES = ["PICKED_UP", "DELIVERY_EXCEPTION"];
const FILE_CARDS_PAGE = 10; // a big file's cards never push its rejected rows far down
const OUTCOMES = ["applied", "duplicate_file", "rejected_file", "in_progress"];

// Friendly labels (the API and every URL keep the enums).
const LABELS = {
  PICKED_UP: "Picked up",
  DELIVERY_EXCEPTION: "Delivery exception",
  DELIVERED: "Delivered",
  RETURNED: "Returned",
  applied: "Applied",
  nothing_new: "Applied, nothing new",
  duplicate_file: "Duplicate file",
  rejected_file: "Rejected file",
  in_progress: "In progress",
  voided: "Voided",
  deleted: "Card removed",
  apply: "File applied",
  void: "Void",
};

/** "Delivery exception" for DELIVERY_EXCEPTION; unknown values readable as they are. */
export function label(value) {
  if (value === null || value === undefined || value === "") return "—";
  return LABELS[value] || String(value).replace(/_/g, " ");
}

/** 150000 -> "150,000" (always en-US grouping, whatever the browser's locale). */
export function formatNumber(value) {
  if (value === null || value === undefined || value === "") return "—";
  const n = Number(value);
  return Number.isFinite(n) ? n.toLocaleString("en-US") : String(value);
}

// Times: the viewer's zone by default (UTC on hover), or UTC (the header's toggle; remembered).
const TIME_KEY = "cardstatus.console.times";
let timeMode = "local";
try {
  timeMode = localStorage.getItem(TIME_KEY) === "utc" ? "utc" : "local";
} catch {
  timeMode = "local";
}

/** The viewer's zone as "UTC+04:00" (and its name where the browser knows one). */
export function zoneName(date = new Date()) {
  const minutes = -date.getTimezoneOffset();
  const sign = minutes < 0 ? "-" : "+";
  const abs = Math.abs(minutes);
  const offset = `UTC${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
  let name = "";
  try {
    name = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch {
    name = "";
  }
  return name && name !== "UTC" && name !== "Etc/UTC" ? `${offset}, ${name}` : offset;
}

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
export async function api(path, { method = "GET", body, signal, headers = {} } = {}) {
  const init = { method, signal, headers: { Accept: "application/json", ...headers }, credentials: "same-origin" };
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

function badge(value, text) {
  const known = [...STUCK_STATUSES, "DELIVERED", "RETURNED", ...OUTCOMES, "voided", "nothing_new", "deleted"];
  const cls = known.includes(value) ? value : "other";
  return h("span", { class: `badge badge-${cls}`, "data-value": value || "" }, text || label(value || "unknown"));
}

function pad(n) {
  return String(n).padStart(2, "0");
}

/** "2023-11-14 12:00 UTC" (seconds shown when not zero); mode "local": the viewer's zone,
 *  "2023-11-14 16:00" (the zone is named on hover and in the header). */
export function formatTime(iso, mode = "utc") {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  if (mode === "local") {
    const secs = d.getSeconds() ? ":" + pad(d.getSeconds()) : "";
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}${secs}`;
  }
  const secs = d.getUTCSeconds() ? ":" + pad(d.getUTCSeconds()) : "";
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}${secs} UTC`;
}

/** A time as the viewer chose to read times (their zone, or UTC). */
function shownTime(iso) {
  return formatTime(iso, timeMode);
}

/** The other reading of the same time, for the hover title. */
function otherTime(iso) {
  if (!iso) return "";
  return timeMode === "local" ? formatTime(iso, "utc") : `${formatTime(iso, "local")} (${zoneName(new Date(iso))})`;
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
  const text = !age ? shownTime(iso) : ageText === "just now" ? ageText : `${ageText} ago`;
  const title = age ? `${shownTime(iso)} · ${otherTime(iso)}` : otherTime(iso);
  return h("time", { datetime: iso, title }, text);
}

function renderTimeToggle() {
  const button = $("#time-toggle");
  if (!button) return;
  const zone = zoneName();
  button.textContent = timeMode === "local" ? `Times: your zone (${zone})` : "Times: UTC";
  button.title = timeMode === "local" ? "Show times in UTC" : `Show times in your zone (${zone})`;
  button.setAttribute("aria-pressed", timeMode === "utc" ? "true" : "false");
}

function toggleTimes() {
  timeMode = timeMode === "local" ? "utc" : "local";
  try {
    localStorage.setItem(TIME_KEY, timeMode);
  } catch {
    // private mode: the choice lasts for this page only
  }
  renderTimeToggle();
  route();
}

/** Download text as a file (the CSV exports). */
function download(name, text, type = "text/csv") {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = h("a", { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function csvLine(values) {
  return values.map((v) => {
    const text = v === null || v === undefined ? "" : String(v);
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  }).join(",") + "\r\n";
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
    h("div", {}, badge(event.status),
      h("time", { class: "when", datetime: event.at, title: otherTime(event.at) }, shownTime(event.at)),
      event.partner ? h("span", { class: "note" }, ` via ${event.partner}`) : null,
      event.file_id
        ? h("span", { class: "note source" }, " · from ",
          h("a", { href: PAGE + query({ file: event.file_id }), class: "file-link", "data-file-id": event.file_id },
            `file #${event.file_id}`), event.line ? `, line ${formatNumber(event.line)}` : "")
        : null),
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
      ["Delivery exceptions", formatNumber(card.exception_count ?? 0)],
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
                badge(other.status), " ", h("span", { class: "note" }, shownTime(other.status_at)))),
          )
        : null,
      card.truncated ? h("p", { class: "note", id: "truncated" }, "This phone has more cards than one answer lists (truncated).") : null,
    ].filter(Boolean));
  }
  return panel;
}

// --- recent files ------------------------------------------------------------------------

const SINCE_FORMAT = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2}))?$/;

/** The "Received since" field (ISO date, optional time, in the zone times are shown in) as
 *  the API's `since` (ISO 8601 UTC); null when it does not read as a date. */
export function sinceToApi(value, mode = timeMode) {
  const text = (value || "").trim();
  if (!text) return "";
  const m = SINCE_FORMAT.exec(text);
  if (!m) return null;
  const [y, mo, d, hh = "0", mm = "0"] = m.slice(1).map((v) => (v === undefined ? undefined : Number(v)));
  const date = mode === "utc" ? new Date(Date.UTC(y, mo - 1, d, hh, mm)) : new Date(y, mo - 1, d, hh, mm);
  if (Number.isNaN(date.getTime()) || date.getMonth() === undefined) return null;
  return date.toISOString().replace(".000Z", "Z");
}

/** The API's `since` back in the field: "2026-12-06" (midnight) or "2026-12-06 08:30". */
export function sinceToInput(value, mode = timeMode) {
  if (!value) return "";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return value;
  const local = mode === "local";
  const [y, mo, day, hh, mm] = local
    ? [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes()]
    : [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes()];
  const date = `${y}-${pad(mo)}-${pad(day)}`;
  return hh || mm ? `${date} ${pad(hh)}:${pad(mm)}` : date;
}

/** Midnight today in the zone times are shown in, as the API's `since`. */
function startOfToday() {
  const now = new Date();
  return timeMode === "utc"
    ? new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate())).toISOString().replace(".000Z", "Z")
    : new Date(now.getFullYear(), now.getMonth(), now.getDate()).toISOString().replace(".000Z", "Z");
}

async function filesView(params, signal) {
  document.title = "Recent files — cardstatus console";
  const filters = {
    partner: params.get("partner") || "",
    outcome: params.get("outcome") || "",
    since: params.get("since") || "",
    has_rejects: params.get("has_rejects") === "true" ? "true" : "",
  };
  $("#files-partner").value = filters.partner;
  $("#files-outcome").value = OUTCOMES.includes(filters.outcome) ? filters.outcome : "";
  $("#files-since").value = sinceToInput(filters.since);
  $("#files-has-rejects").checked = filters.has_rejects === "true";
  $("#files-since-zone").textContent = timeMode === "utc" ? "UTC" : `your zone, ${zoneName()}`;
  $("#files-rejected-today").href = PAGE + query({ view: "files", has_rejects: "true", since: startOfToday() });
  if (filters.has_rejects && filters.since && !filters.partner && !filters.outcome) {
    document.title = "Files with rejected rows — cardstatus console";
  }
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
              ["File", "Partner", "Outcome", "Rows", "Accepted", "Duplicate", "Rejected", "Warnings", "Cards changed", "Received"].map(
                (heading, i) => h("th", { scope: "col", class: i >= 3 && i <= 8 ? "num" : null }, heading)))),
            tbody)),
          more,
        );
      }
      tbody.append(...files.map(fileRow));
      shown += files.length;
      more.replaceChildren(h("span", { class: "note", role: "status" }, `${formatNumber(shown)} file${shown === 1 ? "" : "s"} shown`));
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

/** The outcome badge of a file: "Applied, nothing new" when it brought no new event, "In
 *  progress" with the rows read so far. */
function outcomeBadge(outcome, counts, cardsChanged) {
  if (outcome === "applied" && counts && counts.accepted === 0) {
    return badge("nothing_new", "Applied, nothing new");
  }
  if (outcome === "in_progress") {
    return badge("in_progress", `In progress · ${formatNumber(counts ? counts.rows : 0)} rows read`);
  }
  if (outcome === "applied" && cardsChanged === 0) return badge("applied", "Applied, no status changed");
  return badge(outcome);
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
    h("td", {}, outcomeBadge(file.outcome, c, file.cards_changed), file.voided ? [" ", badge("voided")] : null,
      file.reason ? h("div", { class: "note" }, file.reason) : null),
    ["rows", "accepted", "duplicate", "rejected", "warnings"].map((k) => h("td", { class: "num" }, formatNumber(c[k]))),
    h("td", { class: "num" }, formatNumber(file.cards_changed)),
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
  await Promise.all([
    loadFileCards(fileId, "apply", signal),
    report.voided_at ? loadFileCards(fileId, "void", signal) : null,
    loadRejects(fileId, signal),
  ]);
}

function fileNameOf(report, fileId) {
  const key = (report.file || {}).key || "";
  return key.slice(key.lastIndexOf("/") + 1) || `file ${fileId}`;
}

/** "RETURNED → DELIVERY_EXCEPTION" as badges; null before: new card; null after: removed. */
function change(before, after) {
  return h("span", { class: "change" },
    before ? badge(before) : h("span", { class: "note" }, "new card"),
    h("span", { "aria-label": "to", class: "arrow" }, " → "),
    after ? badge(after) : badge("deleted"));
}

function renderReport(fileId, report, voidResult) {
  const file = report.file || {};
  const c = report.counts || {};
  const voided = Boolean(report.voided_at);
  const inProgress = report.outcome === "in_progress";
  const canVoid = report.outcome === "applied" && !voided;
  const voidHint = voided
    ? "This file is already voided."
    : inProgress
      ? "The file is still being ingested."
      : report.outcome !== "applied"
        ? "Only an applied file can be voided."
        : "Withdraws this file's events from every card it touched; you see which cards change before confirming.";

  // h() drops null children; Element.append would write "null"
  const wrap = h(
    "div",
    { id: "file-report" },
    h(
      "article",
      { class: "panel", "aria-labelledby": "file-title" },
      h("div", { class: "panel-head" },
        h("h3", { id: "file-title", class: "mono" }, file.key || `file ${fileId}`),
        h("span", { id: "file-outcome" }, outcomeBadge(report.outcome, c, report.status_changes)),
        voided ? badge("voided") : null),
      inProgress
        ? h("p", { class: "note", id: "file-progress", role: "status" },
          `Being ingested: ${formatNumber(c.rows)} rows read so far. `,
          h("button", { type: "button", class: "secondary", onclick: () => route() }, "Refresh"))
        : null,
      report.reason ? h("p", { id: "file-reason" }, h("strong", {}, "Reason: "), report.reason) : null,
      facts([
        ["Partner", file.partner || "—"],
        ["Received", timeEl(report.received_at || report.started_at)],
        ["Finished", inProgress ? "—" : timeEl(report.finished_at)],
        ["Rows", formatNumber(c.rows)],
        ["Accepted", formatNumber(c.accepted)],
        ["Duplicate", formatNumber(c.duplicate)],
        ["Rejected", formatNumber(c.rejected)],
        ["Warnings", formatNumber(c.warnings)],
        ["Cards changed", formatNumber(report.status_changes ?? (report.outcome === "applied" ? 0 : null))],
        ...(voided
          ? [["Voided at", timeEl(report.voided_at)], ["Voided by", report.voided_by || "—"], ["Void reason", report.void_reason || "—"]]
          : []),
      ]),
      h("div", { class: "more" },
        h("button", {
          type: "button", class: "danger", id: "void-button", disabled: !canVoid,
          "aria-describedby": "void-hint", onclick: () => openVoidDialog(fileId, fileNameOf(report, fileId)),
        }, "Void file…"),
        h("span", { class: "note", id: "void-hint" }, voidHint)),
      voidResult ? renderVoidResult(voidResult) : null,
    ),
    voided ? h("h3", { id: "void-cards-heading" }, "What the void did") : null,
    voided ? h("div", { id: "void-cards" }) : null,
    h("h3", { id: "file-cards-heading" }, `Cards this file changed (${formatNumber(report.status_changes ?? 0)})`),
    h("div", { id: "file-cards" }),
    h("div", { class: "section-head" },
      h("h3", { id: "rejects-heading" }, `Rejected rows (${formatNumber(c.rejected ?? 0)})`),
      c.rejected
        ? h("a", {
          class: "button secondary", id: "rejects-download", href: `/files/${enc(fileId)}/rejects.csv`,
          download: `file-${fileId}-rejects.csv`,
        }, "Download rejected rows (CSV)")
        : null),
    h("div", { id: "rejects" }),
    renderWarnings(report),
    h("details", {}, h("summary", {}, "Full report (JSON)"), h("pre", { class: "json" }, JSON.stringify(report, null, 2))),
  );
  return wrap;
}

/** Warnings grouped by kind (count, an example, the first lines): a file with 44,992 phone
 *  warnings is one row, and the rejected rows above stay in view. */
function renderWarnings(report) {
  const c = report.counts || {};
  const listed = report.warnings || [];
  let groups = report.warning_groups;
  if (!groups) { // reports stored before grouping: group the listed ones by their text
    const byText = new Map();
    for (const w of listed) {
      const key = String(w.warning || "").replace(/'[^']*'/g, "…").replace(/\d[\d,.:*+-]*/g, "N");
      const g = byText.get(key) || { kind: key, count: 0, example: w.warning, lines: [] };
      g.count += 1;
      if (g.lines.length < 10) g.lines.push(w.line);
      byText.set(key, g);
    }
    groups = [...byText.values()].sort((a, b) => b.count - a.count);
  }
  const section = h("section", { id: "warnings", "aria-labelledby": "warnings-heading" },
    h("h3", { id: "warnings-heading" }, `Warnings (${formatNumber(c.warnings ?? listed.length)})`));
  if (!groups.length) {
    section.append(empty("No warnings."));
    return section;
  }
  section.append(
    table(`${formatNumber(groups.length)} kind${groups.length === 1 ? "" : "s"} of warning, the most frequent first`,
      [["Count", "num"], ["Warning (an example)"], ["First lines"]],
      groups.map((g) => h("tr", { class: "warning-group" },
        h("td", { class: "num" }, formatNumber(g.count)),
        h("td", {}, g.example || g.kind),
        h("td", { class: "mono" }, (g.lines || []).map(formatNumber).join(", ") + (g.count > (g.lines || []).length ? ", …" : ""))))),
  );
  if (listed.length) {
    section.append(h("details", { id: "warnings-all" },
      h("summary", {}, listed.length < (c.warnings ?? 0)
        ? `One row per warning (first ${formatNumber(listed.length)} of ${formatNumber(c.warnings)})`
        : `One row per warning (${formatNumber(listed.length)})`),
      table(null, [["Line", "line"], ["Warning"]],
        listed.map((w) => h("tr", {}, h("td", { class: "line" }, formatNumber(w.line)), h("td", {}, w.warning ?? ""))))));
  }
  return section;
}

function cardLink(cardId) {
  return h("a", { href: PAGE + query({ card_id: cardId }), class: "mono" }, cardId);
}

/** A paged list under `box`: `fetchPage(cursor)` -> {items, next_cursor}; rows by `row`. */
async function pagedTable(box, { id, caption, headers, fetchPage, row, emptyText, moreLabel, wrapClass = "" }) {
  const tbody = h("tbody", {});
  const more = h("div", { class: "more" });
  let shown = 0;
  const load = async (cursor) => {
    const page = await fetchPage(cursor);
    if (!cursor && !page.items.length) {
      box.replaceChildren(empty(emptyText));
      return;
    }
    if (!cursor) {
      box.replaceChildren(
        h("div", { class: `table-wrap ${wrapClass}`.trim() }, h("table", { id },
          caption ? h("caption", {}, caption) : null,
          h("thead", {}, h("tr", {}, headers.map(([text, cls]) => h("th", { scope: "col", class: cls }, text)))),
          tbody)),
        more,
      );
    }
    tbody.append(...page.items.map(row));
    shown += page.items.length;
    more.replaceChildren(h("span", { class: "note" }, `${formatNumber(shown)} shown`));
    if (page.next_cursor) {
      more.prepend(h("button", {
        type: "button", class: "secondary", id: `${id}-more`,
        onclick: (e) => { e.currentTarget.disabled = true; load(page.next_cursor).catch(showError); },
      }, moreLabel || "Load more"));
    }
  };
  await load("");
}

async function loadFileCards(fileId, action, signal) {
  const box = $(action === "void" ? "#void-cards" : "#file-cards");
  if (!box) return;
  const done = setLoading(action === "void" ? "Loading what the void did…" : "Loading the cards this file changed…");
  try {
    await pagedTable(box, {
      id: action === "void" ? "void-cards-table" : "file-cards-table",
      headers: [["Card"], [action === "void" ? "The void changed it" : "The file changed it"], ["Status now"], ["When"]],
      fetchPage: async (cursor) => {
        const page = await api(`/files/${enc(fileId)}/cards${query({ action, cursor, limit: FILE_CARDS_PAGE })}`, { signal });
        return { items: page.cards || [], next_cursor: page.next_cursor };
      },
      row: (card) => h("tr", { "data-card-id": card.card_id },
        h("td", {}, cardLink(card.card_id)),
        h("td", {}, change(card.status_before, card.status_after)),
        h("td", {}, card.status_now ? badge(card.status_now) : badge("deleted")),
        h("td", {}, timeEl(card.changed_at))),
      emptyText: action === "void"
        ? "The void changed no card's status."
        : "This file changed no card's status (nothing new, or applied before files listed their cards).",
      moreLabel: "Load more cards",
      wrapClass: "scroll-box",
    });
  } finally {
    done();
  }
}

async function loadRejects(fileId, signal) {
  const done = setLoading("Loading rejected rows…");
  try {
    await pagedTable($("#rejects"), {
      id: "rejects-table",
      headers: [["Line", "line"], ["Card"], ["Reason"], ["Row as sent (phones masked)"]],
      fetchPage: async (cursor) => {
        const page = await api(`/files/${enc(fileId)}/rejects${query({ cursor })}`, { signal });
        return { items: page.rejects || [], next_cursor: page.next_cursor };
      },
      row: (r) => h("tr", {},
        h("td", { class: "line" }, formatNumber(r.line)),
        h("td", {}, r.card_id ? cardLink(r.card_id) : "—"),
        h("td", {}, r.reason ?? ""),
        h("td", { class: "mono raw-row" }, r.raw_row ?? "—")),
      emptyText: "No rejected rows.",
      moreLabel: "Load more rejected rows",
    });
  } finally {
    done();
  }
}

// --- void: preview, confirm, result ---------------------------------------------------------

const OPERATOR_KEY = "cardstatus.console.operator";

function savedOperator() {
  try {
    return localStorage.getItem(OPERATOR_KEY) || "";
  } catch {
    return "";
  }
}

async function renderVoidPreview(fileId, box, confirm) {
  box.replaceChildren(h("p", { class: "note" }, "Working out which cards this void changes…"));
  confirm.disabled = true;
  const preview = await api(`/files/${enc(fileId)}/void_preview${query({ limit: 100 })}`);
  const count = preview.status_changes;
  const cards = preview.cards || [];
  const shownCount = count ?? cards.length;
  const summary = count === null || count === undefined
    ? `At least ${formatNumber(cards.length)} card${cards.length === 1 ? "" : "s"} change status (the file touched ${formatNumber(preview.cards_touched)}).`
    : `${formatNumber(count)} card${count === 1 ? "" : "s"} will change status` +
      (preview.cards_deleted ? `, ${formatNumber(preview.cards_deleted)} of them removed (no event left)` : "") +
      ` — of ${formatNumber(preview.cards_touched)} this file touched.`;
  box.replaceChildren(
    h("p", { id: "void-preview-summary" }, h("strong", {}, summary)),
    cards.length
      ? h("div", { class: "table-wrap preview-wrap" }, h("table", { id: "void-preview-table" },
        h("caption", {}, cards.length < shownCount ? `First ${formatNumber(cards.length)} of ${formatNumber(shownCount)}` : "Every card that changes"),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Card"), h("th", { scope: "col" }, "Now → after the void"))),
        h("tbody", {}, cards.map((c) => h("tr", { "data-card-id": c.card_id },
          h("td", { class: "mono" }, c.card_id), h("td", {}, change(c.status_now, c.status_after_void)))))))
      : h("p", { class: "note" }, "No card's status changes: the file's events are also carried by other files, or are older than what the cards show."),
  );
  confirm.textContent = shownCount ? `Void file and change ${formatNumber(shownCount)} card${shownCount === 1 ? "" : "s"}` : "Void file";
  confirm.disabled = false;
}

function openVoidDialog(fileId, name) {
  const dialog = $("#void-dialog");
  const form = $("#void-form");
  const reason = $("#void-reason");
  const operator = $("#void-operator");
  const confirm = $("#void-confirm");
  reason.value = "";
  operator.value = savedOperator();
  dialog.dataset.fileId = fileId;
  $("#void-title").textContent = `Void file #${fileId}: ${name}`;
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
      const who = operator.value.trim();
      try {
        localStorage.setItem(OPERATOR_KEY, who);
      } catch {
        // private mode: asked again next time
      }
      dialog.close("void");
      voidFile(dialog.dataset.fileId, text, who);
    });
    reason.addEventListener("input", () => reason.setCustomValidity(""));
  }
  dialog.showModal();
  reason.focus();
  renderVoidPreview(fileId, $("#void-preview"), confirm).catch((err) => {
    $("#void-preview").replaceChildren(h("p", { class: "alert" }, `The preview could not be loaded: ${err.message}`));
    confirm.textContent = "Void file";
    confirm.disabled = false;
  });
}

function renderVoidResult(result) {
  const parts = [
    `${formatNumber(result.status_changes)} card${result.status_changes === 1 ? "" : "s"} changed status`,
    result.cards_deleted ? `${formatNumber(result.cards_deleted)} removed (no event left)` : null,
    `${formatNumber(result.events_removed)} event${result.events_removed === 1 ? "" : "s"} removed`,
    result.events_remerged ? `${formatNumber(result.events_remerged)} still carried by other files (kept)` : null,
  ].filter(Boolean);
  return h("section", { class: "void-result", id: "void-result", tabindex: "-1", "aria-labelledby": "void-result-heading" },
    h("h3", { id: "void-result-heading" }, result.already_voided ? "Already voided" : "File voided"),
    h("p", {}, `${parts.join(", ")}. Voided by `, h("strong", {}, result.voided_by || "—"), " at ", timeEl(result.voided_at), "."),
    h("p", { class: "note" }, "The cards it changed are listed below under “What the void did”."),
    h("details", {}, h("summary", {}, "Void result (JSON)"), h("pre", { class: "json" }, JSON.stringify(result, null, 2))));
}

async function voidFile(fileId, reason, operator) {
  clearError();
  const done = setLoading(`Voiding file #${fileId}…`);
  let outcome;
  try {
    const headers = operator ? { "X-Cardstatus-Operator": operator } : {};
    outcome = await api(`/files/${enc(fileId)}/void`, { method: "POST", body: { reason }, headers });
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
  const box = $("#void-result");
  if (box) box.focus();
}

// --- stuck cards -------------------------------------------------------------------------

const STUCK_EXPORT_MAX = 10000;

async function exportStuck(filters) {
  const done = setLoading("Preparing the CSV…");
  try {
    let text = csvLine(["card_id", "status", "status_at", "age_hours", "partner", "reason", "comment", "exception_count", "file_id"]);
    let cursor = "";
    let rows = 0;
    do {
      const page = await api(`/stuck_cards${query({ ...filters, cursor, limit: 100 })}`);
      for (const c of page.cards || []) {
        text += csvLine([c.card_id, c.status, c.status_at, c.age_hours, c.partner, c.reason, c.comment, c.exception_count, c.file_id]);
        rows += 1;
      }
      cursor = page.next_cursor;
    } while (cursor && rows < STUCK_EXPORT_MAX);
    download(`stuck-${filters.status.toLowerCase()}-${filters.older_than_hours}h.csv`, text);
  } catch (err) {
    showError(err);
  } finally {
    done();
  }
}

async function stuckView(params, signal) {
  document.title = "Stuck cards — cardstatus console";
  const wanted = (params.get("status") || "").toUpperCase();
  const status = STUCK_STATUSES.includes(wanted) ? wanted : "PICKED_UP";
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
  let total = null;
  let capped = false;
  const load = async (cursor) => {
    const done = setLoading(cursor ? "Loading more cards…" : "Loading stuck cards…");
    try {
      const page = await api(`/stuck_cards${query({ ...filters, cursor })}`, { signal });
      const cards = page.cards || [];
      if (!cursor && !cards.length) {
        result.replaceChildren(empty(`No cards in ${label(filters.status)} for more than ${formatNumber(filters.older_than_hours)} h` +
          (filters.partner ? ` from ${filters.partner}.` : ".")));
        return;
      }
      if (!cursor) {
        total = page.total ?? null;
        capped = Boolean(page.total_capped);
        const totalText = total === null ? "" : `${formatNumber(total)}${capped ? "+" : ""} card${total === 1 ? "" : "s"} in `;
        result.replaceChildren(
          h("div", { class: "section-head" },
            h("p", { id: "stuck-total", class: "total" }, totalText ? h("strong", {}, totalText) : null,
              `${label(filters.status)} for more than ${formatNumber(filters.older_than_hours)} h`,
              filters.partner ? ` from ${filters.partner}` : "", ", oldest first"),
            h("button", { type: "button", class: "secondary", id: "stuck-export", onclick: () => exportStuck(filters) },
              "Export CSV")),
          h("div", { class: "table-wrap" }, h("table", { id: "stuck-table" },
            h("caption", { class: "visually-hidden" }, `Cards in ${label(filters.status)}, oldest first`),
            h("thead", {}, h("tr", {},
              h("th", { scope: "col" }, "Card"), h("th", { scope: "col" }, "Status"),
              h("th", { scope: "col" }, "Since"), h("th", { scope: "col", class: "num" }, "Age"),
              h("th", { scope: "col" }, "Partner"), h("th", { scope: "col" }, "Reason"),
              h("th", { scope: "col" }, "Comment"), h("th", { scope: "col", class: "num" }, "Exceptions"),
              h("th", { scope: "col" }, "File"))),
            tbody)),
          more,
        );
      }
      tbody.append(...cards.map((card) => h("tr", { "data-card-id": card.card_id },
        h("td", {}, cardLink(card.card_id)),
        h("td", {}, badge(card.status)),
        h("td", {}, timeEl(card.status_at)),
        h("td", { class: "num" }, formatAge(card.age_hours ?? card.status_at)),
        h("td", {}, card.partner || "—"),
        h("td", {}, card.reason ? label(card.reason) : "—"),
        h("td", { class: "comment" }, card.comment || "—"),
        h("td", { class: "num" }, formatNumber(card.exception_count)),
        h("td", {}, card.file_id ? h("a", { href: PAGE + query({ file: card.file_id }) }, `#${card.file_id}`) : "—"))));
      shown += cards.length;
      const of = total === null ? "" : ` of ${formatNumber(total)}${capped ? "+" : ""}`;
      more.replaceChildren(h("span", { class: "note", role: "status" }, `${formatNumber(shown)}${of} card${shown === 1 && !of ? "" : "s"} shown`));
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
    const sinceField = $("#files-since");
    const since = sinceToApi(sinceField.value);
    if (since === null) {
      sinceField.setCustomValidity("Use an ISO date: YYYY-MM-DD (optionally HH:MM).");
      sinceField.reportValidity();
      return;
    }
    sinceField.setCustomValidity("");
    navigate(PAGE + query({
      view: "files",
      partner: $("#files-partner").value.trim(),
      outcome: $("#files-outcome").value,
      since: since || "",
      has_rejects: $("#files-has-rejects").checked ? "true" : "",
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
  $("#files-since").addEventListener("input", (e) => e.target.setCustomValidity(""));
  $("#time-toggle").addEventListener("click", toggleTimes);
  renderTimeToggle();

  for (const heading of document.querySelectorAll(".view h2")) heading.tabIndex = -1;
}

wire();
route();
