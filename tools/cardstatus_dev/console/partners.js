// cardstatus ops console: the Partners tab (partner feed health) and the partner dropdowns.
//
//   /console?view=partners   one row per known partner: state badge, last file, due by,
//                            7-day reject rate, stuck cards, files today, 14-day rows sparkline
//
// Every <select data-partners> on the page is filled with the known partners (GET /partners,
// once a view with such a select is shown): "any" first, then each partner by name. A partner
// named in the URL in another case (`partner=SPEEDY`) is shown as the known partner's view. A partner named in the URL that is not known (an old
// link, a typo) is kept as an option of its own, so the filter still says what is shown.
// console.js routes the view here (partnersView) and passes its API client and time element;
// nothing here imports console.js. API data only ever goes into text nodes and attributes.

const PAGE = "/console";
const SVG = "http://www.w3.org/2000/svg";
const STATE_LABELS = {
  on_time: "On time",
  late: "Late",
  missing: "Never sent",
  not_monitored: "Not monitored",
};

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.className = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  for (const child of children) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return el;
}

function link(params, text, attrs = {}) {
  const q = new URLSearchParams(params).toString();
  return h("a", { href: `${PAGE}?${q}`, ...attrs }, text);
}

const number = (n) => (typeof n === "number" ? n.toLocaleString("en-US") : "—");

function percent(rate) {
  if (rate === null || rate === undefined) return "—";
  const p = rate * 100;
  const text = p < 10 && p !== 0 ? p.toFixed(1).replace(/\.0$/, "") : String(Math.round(p));
  return `${text}%`;
}

function plainTime(iso) {
  if (!iso) return h("span", {}, "—");
  const d = new Date(iso);
  const text = Number.isNaN(d.getTime()) ? iso : d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  return h("time", { datetime: iso, title: text }, text);
}

// --- the sparkline -----------------------------------------------------------------------

/** Inline SVG of rows per day (oldest first): a line, today's point, a text alternative. */
export function sparkline(days, { width = 120, height = 28 } = {}) {
  const values = days.map((d) => d.rows);
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? (width - 4) / (values.length - 1) : 0;
  const y = (v) => (height - 3 - (v / max) * (height - 6)).toFixed(1);
  const points = values.map((v, i) => `${(2 + i * step).toFixed(1)},${y(v)}`).join(" ");
  const last = values.length - 1;
  const total = values.reduce((a, b) => a + b, 0);
  const label = `Rows per day, last ${values.length} days: ${number(total)} in all, ` +
    `${number(Math.max(0, ...values))} at most, ${number(values[last] ?? 0)} today`;
  const svg = s("svg", {
    class: "sparkline", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label,
  },
  s("title", {}, days.map((d) => `${d.date}: ${number(d.rows)} rows`).join("\n")),
  s("line", { x1: 2, x2: width - 2, y1: height - 3, y2: height - 3, stroke: "#c9ced6", "stroke-width": 1 }),
  s("polyline", {
    points, fill: "none", stroke: "#0b57d0", "stroke-width": 1.5, "stroke-linejoin": "round", "stroke-linecap": "round",
  }));
  if (last >= 0) {
    svg.append(s("circle", { cx: (2 + last * step).toFixed(1), cy: y(values[last]), r: 2.5, fill: "#0b57d0" }));
  }
  return svg;
}

// --- partner dropdowns -------------------------------------------------------------------

let known = null; // Promise of the GET /partners answer, once per page load

function fetchPartners(api, signal) {
  if (!known) {
    known = api("/partners", { signal }).catch((err) => {
      known = null;
      throw err;
    });
  }
  return known;
}

/** Fill every <select data-partners> with the known partners, keeping (or taking from the
 * URL) the selected one. Resolves to the partner names. */
export async function fillPartnerSelects(api = defaultApi, root = document) {
  let names = [];
  try {
    const body = await fetchPartners(api);
    names = (body.partners || []).map((p) => p.partner);
  } catch {
    names = []; // the filters still work without the list ("any" and the URL's partner)
  }
  const fromUrl = new URLSearchParams(location.search).get("partner") || "";
  let canonical = null;
  for (const select of root.querySelectorAll("select[data-partners]")) {
    const view = select.closest(".view");
    const wanted = select.value || (view && !view.hidden ? fromUrl : "");
    const match = names.find((n) => n.toLowerCase() === wanted.toLowerCase());
    const options = [h("option", { value: "" }, "any")];
    for (const name of names) options.push(h("option", { value: name }, name));
    if (wanted && !match) options.push(h("option", { value: wanted }, `${wanted} (unknown)`));
    select.replaceChildren(...options);
    select.value = match || wanted;
    if (match && view && !view.hidden && fromUrl && match !== fromUrl) canonical = match;
  }
  if (canonical) {
    // `?partner=SPEEDY` names speedy: show speedy's rows (the API matches names exactly),
    // by re-routing the same view with the partner's own spelling (console.js listens).
    const url = new URL(location.href);
    url.searchParams.set("partner", canonical);
    history.replaceState(null, "", url);
    window.dispatchEvent(new PopStateEvent("popstate"));
  }
  return names;
}

async function defaultApi(path, { signal } = {}) {
  const response = await fetch(path, { signal, headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

// --- the Partners view -------------------------------------------------------------------

function stateBadge(p) {
  const label = STATE_LABELS[p.state] || p.state;
  const title = p.state === "late" && p.minutes_late !== null
    ? `late by ${formatMinutes(p.minutes_late)}`
    : p.state === "missing" ? "monitored, but no file was ever received" : null;
  return h("span", { class: `badge badge-feed-${p.state}`, title }, label);
}

function formatMinutes(minutes) {
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

function feedNote(p) {
  if (!p.feed) return "no feed configured";
  const quiet = p.feed.quiet_days.length ? `, quiet ${p.feed.quiet_days.join(", ")}` : "";
  return `every ${p.feed.every_hours} h, grace ${p.feed.grace_hours} h${quiet}`;
}

function partnerRow(p, timeEl) {
  const week = p.last_7_days;
  const stuck = p.stuck_cards;
  const stuckStatus = stuck.DELIVERY_EXCEPTION >= stuck.PICKED_UP && stuck.DELIVERY_EXCEPTION
    ? "DELIVERY_EXCEPTION" : "PICKED_UP";
  const warning = p.volume_warning;
  return h(
    "tr",
    { "data-partner": p.partner, "data-state": p.state, class: p.alerting ? "alerting" : null },
    h("th", { scope: "row" },
      link({ view: "files", partner: p.partner }, p.partner, { class: "partner-name" }),
      h("small", { class: "note" }, feedNote(p)),
      warning ? h("small", { class: "volume-warning" },
        "Low volume: ", link({ file: warning.file_id }, `file #${warning.file_id}`),
        ` has ${number(warning.rows)} rows` +
        (warning.median_rows !== null ? ` (usually ~${number(Math.round(warning.median_rows))})` : "")) : null),
    h("td", {}, stateBadge(p),
      p.state === "late" ? h("small", { class: "note" }, `by ${formatMinutes(p.minutes_late)}`) : null),
    h("td", {},
      p.last_file ? link({ file: p.last_file.file_id }, timeEl(p.last_file_at, { age: true })) : "never",
      p.last_file ? h("small", { class: "note" }, `${number(p.last_file.rows)} rows`) : null),
    h("td", {}, p.due_by ? timeEl(p.due_by) : "—",
      p.due_by && p.late_after !== p.due_by
        ? h("small", { class: "note" }, "late after ", timeEl(p.late_after)) : null),
    h("td", { class: "num" },
      h("span", { class: p.reject_rate_exceeded ? "over" : null }, percent(week.reject_rate)),
      h("small", { class: "note" },
        `${number(week.rejected)} of ${number(week.rows)} rows` +
        (p.feed && p.feed.max_reject_rate !== null ? `; max ${percent(p.feed.max_reject_rate)}` : ""))),
    h("td", { class: "num" },
      stuck.total
        ? link({ view: "stuck", status: stuckStatus, older_than_hours: stuck.older_than_hours, partner: p.partner },
          number(stuck.total), { title: `${stuck.PICKED_UP} picked up, ${stuck.DELIVERY_EXCEPTION} in exception, over ${stuck.older_than_hours} h` })
        : "0"),
    h("td", { class: "num" }, number(p.today.files)),
    h("td", { class: "spark" }, sparkline(p.rows_per_day)),
  );
}

/** Render /console?view=partners into #partners-result. */
export async function partnersView(params, signal, { api, timeEl = (iso) => plainTime(iso) } = {}) {
  document.title = "Partners — cardstatus console";
  const result = document.querySelector("#partners-result");
  const loading = document.querySelector("#loading");
  loading.textContent = "Loading partners…";
  let body;
  try {
    known = null; // the tab always shows fresh numbers
    body = await fetchPartners(api, signal);
  } finally {
    loading.textContent = "";
  }
  const list = [...(body.partners || [])].sort(
    (a, b) => Number(b.alerting) - Number(a.alerting) || a.partner.localeCompare(b.partner),
  );
  if (!list.length) {
    result.replaceChildren(h("p", { class: "empty" }, "No partners yet: none is configured and no file has arrived."));
    return;
  }
  const alerting = body.alerting || [];
  const summary = alerting.length
    ? h("p", { class: "partners-summary alert-text", role: "status" },
      `${alerting.length} partner${alerting.length === 1 ? "" : "s"} need${alerting.length === 1 ? "s" : ""} attention: ${alerting.join(", ")}.`)
    : h("p", { class: "partners-summary", role: "status" }, "Every monitored feed is on time.");
  result.replaceChildren(
    summary,
    h("div", { class: "table-wrap" },
      h("table", { id: "partners-table" },
        h("caption", {}, "Feed health as of ", timeEl(body.as_of), "; reject rate over the last 7 days"),
        h("thead", {}, h("tr", {},
          ["Partner", "State", "Last file", "Due by", "Reject rate", "Stuck", "Files today", "Rows, 14 days"].map(
            (label, i) => h("th", { scope: "col", class: i >= 4 && i <= 6 ? "num" : null }, label)))),
        h("tbody", {}, list.map((p) => partnerRow(p, timeEl))))),
  );
  fillPartnerSelects(api).catch(() => {});
}

/** Fill the dropdowns when a view that has one is shown (not before: the card lookup page
 * calls nothing until asked). One GET /partners per page load. */
function watchViews() {
  const views = [...document.querySelectorAll(".view")].filter((v) => v.querySelector("select[data-partners]"));
  if (!views.length) return;
  const check = () => {
    if (views.some((v) => !v.hidden)) fillPartnerSelects().catch(() => {});
  };
  new MutationObserver(check).observe(document.querySelector("main") || document.body, {
    attributes: true, attributeFilter: ["hidden"], subtree: true,
  });
  check();
}

watchViews();
