// The Mentorbus console: a reference client of the public API. Views are plain functions
// that fetch through `api` (typed from /openapi.json) and build DOM with `el`.
import { api, ApiError, downloadCsv, ok, session, type Schemas } from "./client";
import { chartFigure } from "./charts";
import { breakdownBars, el } from "./dom";

const main = document.getElementById("main") as HTMLElement;
const status = document.getElementById("status") as HTMLElement;
const nav = document.getElementById("nav") as HTMLElement;

/** Errors go to one live region, as the API's problem title and detail. */
function showError(error: unknown): void {
  status.textContent = error instanceof Error ? error.message : String(error);
  status.hidden = false;
}

function clearError(): void {
  status.textContent = "";
  status.hidden = true;
}

function heading(text: string): HTMLHeadingElement {
  const h = el("h1", { tabindex: "-1" }, text);
  queueMicrotask(() => h.focus()); // keyboard and screen-reader users land on the new view
  return h;
}

// ---------------------------------------------------------------- sign in
function signInView(): void {
  const input = el("input", { id: "token", name: "token", type: "password", autocomplete: "off", required: "" });
  const form = el("form", { class: "card", "aria-labelledby": "signin-title" },
    el("h1", { id: "signin-title" }, "Sign in"),
    el("p", {}, "An organization API key (mbk_…) or an end-user token (JWT). It is kept in this tab's session storage only."),
    el("label", { for: "token" }, "API key or token"), input,
    el("button", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    session.signIn(input.value);
    location.hash = "#/programs";
    void route();
  });
  main.replaceChildren(form);
  input.focus();
}

// ---------------------------------------------------------------- programs
async function programsView(): Promise<void> {
  const page = ok(await api.GET("/v1/programs", { params: { query: { limit: 100 } } }));
  const rows = page.items.map((p) => el("tr", {},
    el("td", {}, el("a", { href: `#/programs/${p.id}` }, p.name)),
    el("td", {}, p.format ?? ""), el("td", {}, p.status), el("td", {}, p.starts_on ?? "")));
  main.replaceChildren(heading("Programs"), rows.length
    ? el("table", {}, el("thead", {}, el("tr", {}, ...["Name", "Format", "Status", "Starts"].map((h) => el("th", { scope: "col" }, h)))), el("tbody", {}, ...rows))
    : el("p", {}, "No programs yet."));
}

async function programView(programId: string): Promise<void> {
  const program = ok(await api.GET("/v1/programs/{program_id}", { params: { path: { program_id: programId } } }));
  const tabs = el("nav", { class: "tabs", "aria-label": "Program sections" },
    ...[["enrollments", "Enrollments"], ["matching", "Matching"], ["evidence", "Evidence"]].map(([id, label]) =>
      el("a", { href: `#/programs/${programId}/${id}` }, label)));
  const section = el("section", { id: "section" });
  main.replaceChildren(heading(program.name), el("p", {}, `${program.format ?? ""} · ${program.status}`), tabs, section);
  const part = location.hash.split("/")[3] ?? "enrollments";
  for (const link of tabs.querySelectorAll("a")) if (link.getAttribute("href")?.endsWith(`/${part}`)) link.setAttribute("aria-current", "page");
  if (part === "matching") await matchingSection(section, programId);
  else if (part === "evidence") await evidenceSection(section, programId);
  else await enrollmentsSection(section, programId);
}

// ---------------------------------------------------------------- enrollments
async function enrollmentsSection(section: HTMLElement, programId: string): Promise<void> {
  const role = el("select", { id: "role" }, ...["", "mentor", "mentee", "both"].map((r) => el("option", { value: r }, r || "any")));
  const search = el("input", { id: "search", type: "search", placeholder: "external id, skill, language" });
  const size = el("select", { id: "page-size" }, ...["20", "50", "5"].map((n) => el("option", { value: n }, n)));
  const body = el("tbody", {});
  const more = el("button", { type: "button" }, "Next page");
  const first = el("button", { type: "button" }, "First page");
  let cursor: string | null = null;
  let shown: Schemas["EnrollmentOut"][] = [];
  const render = () => {
    const q = search.value.trim().toLowerCase();
    const text = (e: Schemas["EnrollmentOut"]) =>
      [e.employee_external_id, ...e.languages, ...e.skills.map((s) => String(s.name ?? ""))].join(" ").toLowerCase();
    body.replaceChildren(...shown.filter((e) => !q || text(e).includes(q)).map((e) => el("tr", {},
      el("td", {}, e.employee_external_id), el("td", {}, e.role), el("td", {}, e.status),
      el("td", {}, e.skills.map((s) => String(s.name ?? "")).join(", ")), el("td", {}, e.languages.join(", ")))));
  };
  const load = async (from: string | null) => {
    const query = { limit: Number(size.value), ...(from ? { cursor: from } : {}), ...(role.value ? { role: role.value as "mentor" } : {}) };
    const page = ok(await api.GET("/v1/programs/{program_id}/enrollments", { params: { path: { program_id: programId }, query } }));
    shown = page.items;
    cursor = page.next_cursor ?? null;
    more.disabled = cursor === null;
    render();
  };
  role.addEventListener("change", () => void load(null).catch(showError));
  size.addEventListener("change", () => void load(null).catch(showError));
  search.addEventListener("input", render);
  more.addEventListener("click", () => void load(cursor).catch(showError));
  first.addEventListener("click", () => void load(null).catch(showError));
  section.replaceChildren(el("h2", {}, "Enrollments"),
    el("div", { class: "filters" }, el("label", { for: "role" }, "Role"), role,
      el("label", { for: "search" }, "Search this page"), search,
      el("label", { for: "page-size" }, "Per page"), size),
    el("table", { id: "enrollments" }, el("thead", {}, el("tr", {}, ...["Employee", "Role", "Status", "Skills", "Languages"].map((h) => el("th", { scope: "col" }, h)))), body),
    el("div", { class: "actions" }, first, more));
  await load(null);
}

async function allEnrollments(programId: string): Promise<Schemas["EnrollmentOut"][]> {
  const all: Schemas["EnrollmentOut"][] = [];
  let cursor: string | undefined;
  do {
    const page = ok(await api.GET("/v1/programs/{program_id}/enrollments", { params: { path: { program_id: programId }, query: { limit: 100, status: "active", ...(cursor ? { cursor } : {}) } } }));
    all.push(...page.items);
    cursor = page.next_cursor ?? undefined;
  } while (cursor && all.length < 1000);
  return all;
}

// ---------------------------------------------------------------- matching
async function matchingSection(section: HTMLElement, programId: string): Promise<void> {
  const people = await allEnrollments(programId);
  const option = (e: Schemas["EnrollmentOut"]) => el("option", { value: e.id }, e.employee_external_id);
  const mentees = people.filter((e) => e.role !== "mentor");
  const mentors = people.filter((e) => e.role !== "mentee");
  const name = new Map(people.map((e) => [e.id, e.employee_external_id]));

  const objective = el("select", { id: "objective" }, el("option", { value: "max_score" }, "Best total score"), el("option", { value: "max_participation" }, "Most mentees matched"));
  const floor = el("input", { id: "floor", type: "number", min: "0", max: "1", step: "0.05", placeholder: "none" });
  const pinMentee = el("select", { id: "pin-mentee" }, ...mentees.map(option));
  const pinMentor = el("select", { id: "pin-mentor" }, ...mentors.map(option));
  const pins: Schemas["PairIn"][] = [];
  const pinList = el("ul", { "aria-label": "Pinned pairs" });
  const addPin = el("button", { type: "button" }, "Pin this pair");
  addPin.addEventListener("click", () => {
    pins.push({ mentee_enrollment_id: pinMentee.value, mentor_enrollment_id: pinMentor.value });
    pinList.append(el("li", {}, `${name.get(pinMentee.value)} ↔ ${name.get(pinMentor.value)}`));
  });
  const progress = el("progress", { id: "run-progress", max: "1", value: "0", "aria-label": "Run progress" });
  const stage = el("p", { "aria-live": "polite" });
  const result = el("div", { id: "run-result" });
  const form = el("form", { class: "card", "aria-label": "Launch a cohort run" },
    el("h2", {}, "Cohort run"),
    el("label", { for: "objective" }, "Objective"), objective,
    el("label", { for: "floor" }, "Fairness floor (lowest score any mentee should get, 0–1)"), floor,
    el("fieldset", {}, el("legend", {}, "Pins (pairs the run must keep)"),
      el("label", { for: "pin-mentee" }, "Mentee"), pinMentee, el("label", { for: "pin-mentor" }, "Mentor"), pinMentor, addPin, pinList),
    el("button", { type: "submit" }, "Launch run"), progress, stage);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void launch().catch(showError);
  });
  const launch = async () => {
    clearError();
    const body: Schemas["RunIn"] = { objective: objective.value as Schemas["RunIn"]["objective"], pinned: pins };
    if (floor.value) body.min_score = Number(floor.value);
    const created = ok(await api.POST("/v1/programs/{program_id}/matching-runs", { params: { path: { program_id: programId } }, body }));
    let run = ok(await api.GET("/v1/matching-runs/{run_id}", { params: { path: { run_id: created.id } } }));
    const deadline = Date.now() + 120_000;
    while ((run.status === "pending" || run.status === "running") && Date.now() < deadline) {
      progress.value = run.progress;
      stage.textContent = `${run.status}${run.stage ? ` · ${run.stage}` : ""} · ${Math.round(run.progress * 100)}%`;
      await new Promise((done) => setTimeout(done, 500));
      run = ok(await api.GET("/v1/matching-runs/{run_id}", { params: { path: { run_id: created.id } } }));
    }
    progress.value = run.progress;
    stage.textContent = `${run.status}${run.error ? `: ${run.error}` : ""}`;
    result.replaceChildren(runResult(run));
  };

  const suggestFor = el("select", { id: "suggest-for" }, ...mentees.map(option));
  const suggestions = el("div", { id: "suggestions" });
  const suggest = el("button", { type: "button" }, "Explain suggestions");
  suggest.addEventListener("click", () => void (async () => {
    const answer = ok(await api.GET("/v1/programs/{program_id}/enrollments/{enrollment_id}/suggestions", { params: { path: { program_id: programId, enrollment_id: suggestFor.value }, query: { limit: 5 } } }));
    const items = answer.items as Schemas["SuggestionOut"][];
    suggestions.replaceChildren(items.length ? el("ol", {}, ...items.map((s) => el("li", {},
      el("h4", {}, `${s.mentor_external_id} · score ${s.score.toFixed(3)}`), breakdownBars(s.breakdown ?? []),
      el("ul", { class: "reasons" }, ...s.reasons.map((r) => el("li", {}, r)))))) : el("p", {}, "No suggestion."));
  })().catch(showError));

  section.replaceChildren(form, result,
    el("section", { class: "card", "aria-labelledby": "suggest-title" }, el("h2", { id: "suggest-title" }, "One mentee's suggestions"),
      el("label", { for: "suggest-for" }, "Mentee"), suggestFor, suggest, suggestions));
}

function runResult(run: Schemas["RunOut"]): HTMLElement {
  const proposals = run.proposals ?? [];
  const apply = el("button", { type: "button", id: "apply" }, `Apply ${proposals.length} proposals`);
  const applied = el("p", { id: "applied", "aria-live": "polite" });
  apply.disabled = run.status !== "succeeded" || run.applied_at !== null;
  apply.addEventListener("click", () => void (async () => {
    const answer = ok(await api.POST("/v1/matching-runs/{run_id}/apply", { params: { path: { run_id: run.id } } }));
    applied.textContent = `Applied: ${answer.created} matches proposed, ${answer.skipped.length} skipped.`;
    apply.disabled = true;
  })().catch(showError));
  return el("section", { class: "card", "aria-labelledby": "proposals-title" },
    el("h2", { id: "proposals-title" }, `Proposals (total score ${run.total_score?.toFixed(3) ?? "—"})`),
    el("ol", { class: "proposals" }, ...proposals.map((p) => el("li", {},
      el("h3", {}, `${p.mentee_external_id ?? p.mentee_enrollment_id} ↔ ${p.mentor_external_id ?? p.mentor_enrollment_id} · ${p.score.toFixed(3)}${p.pinned ? " · pinned" : ""}`),
      breakdownBars(p.breakdown ?? [])))),
    (run.unmatched ?? []).length ? el("p", {}, `Unmatched: ${(run.unmatched ?? []).map((u) => u.reason).join("; ")}`) : null,
    apply, applied);
}

// ---------------------------------------------------------------- evidence
const BLUE = "#1d4ed8";
const ORANGE = "#b45309";
const GREEN = "#047857";

function monthsBack(count: number): { month: string; from: string; to: string }[] {
  const now = new Date();
  return Array.from({ length: count }, (_, i) => {
    const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - (count - 1 - i), 1));
    const end = new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 0));
    const day = (d: Date) => d.toISOString().slice(0, 10);
    return { month: day(start).slice(0, 7), from: day(start), to: day(end) };
  });
}

async function evidenceSection(section: HTMLElement, programId: string): Promise<void> {
  const path = { program_id: programId };
  // Both answer JSON or CSV (content negotiation): without `Accept: text/csv` it is JSON.
  type Analytics = Schemas["AnalyticsOut"];
  const figures = ok(await api.GET("/v1/programs/{program_id}/analytics", { params: { path } })) as Analytics;
  // Sessions per month: the analytics of each calendar month (the API's from/to window).
  const months = monthsBack(6);
  const monthly = await Promise.all(months.map(async (m) =>
    ok(await api.GET("/v1/programs/{program_id}/analytics", { params: { path, query: { from: m.from, to: m.to } } })) as Analytics));
  const atRisk = ok(await api.GET("/v1/programs/{program_id}/at-risk", { params: { path, query: { limit: 100 } } }));
  // Outcomes need the program's `starts_on` (a 409 without it): the rest still shows.
  let outcomes: Schemas["Outcomes"] | ApiError;
  try {
    outcomes = ok(await api.GET("/v1/programs/{program_id}/outcomes", { params: { path } })) as Schemas["Outcomes"];
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    outcomes = error;
  }
  const analyticsCsv = () => downloadCsv("/v1/programs/{program_id}/analytics", programId, "analytics.csv").catch(showError);
  const outcomesCsv = () => downloadCsv("/v1/programs/{program_id}/outcomes", programId, "outcomes.csv").catch(showError);
  const p = figures.participation;
  const byMonth = figures.satisfaction.by_month;

  const definitions: Record<string, string> = { ...figures.definitions };
  let outcomesPart: HTMLElement;
  if (outcomes instanceof ApiError) {
    outcomesPart = el("figure", { class: "chart", id: "outcomes" }, el("figcaption", {}, "Outcomes: participants vs comparison group"),
      el("p", {}, outcomes.message));
  } else {
    Object.assign(definitions, outcomes.definitions);
    outcomesPart = outcomesChart(outcomes, outcomesCsv);
  }

  section.replaceChildren(
    el("h2", {}, "Evidence"),
    el("div", { class: "charts" },
      chartFigure({ id: "funnel", title: "Participation funnel", kind: "bar", horizontal: true, download: analyticsCsv,
        labels: ["Mentors enrolled", "Mentees enrolled", "Mentees matched", "Matches", "Sessions held"],
        series: [{ label: "People / matches / sessions", color: BLUE,
          values: [p.mentors.count, p.mentees.count, p.match_rate.count, figures.engagement.matches.count, figures.engagement.sessions_held.count] }] }),
      chartFigure({ id: "sessions", title: "Sessions held per month", kind: "bar", download: analyticsCsv,
        labels: months.map((m) => m.month), series: [{ label: "Sessions held", color: BLUE, values: monthly.map((f) => f.engagement.sessions_held.count) }] }),
      chartFigure({ id: "satisfaction", title: "Satisfaction and NPS by month", kind: "line", download: analyticsCsv,
        labels: byMonth.map((m) => m.month),
        series: [{ label: "Average rating (1–5)", color: BLUE, values: byMonth.map((m) => m.average_rating.value) },
          { label: "NPS (−100 to 100)", color: ORANGE, values: byMonth.map((m) => m.nps.score) }] }),
      chartFigure({ id: "goals", title: "Goals set vs completed", kind: "bar", download: analyticsCsv,
        labels: ["Goals"], series: [{ label: "Set", color: BLUE, values: [figures.goals.set.count] }, { label: "Completed", color: GREEN, values: [figures.goals.completed.count] }] }),
      outcomesPart),
    el("section", { class: "card", "aria-labelledby": "risk-title" }, el("h2", { id: "risk-title" }, "At risk"),
      atRisk.items.length ? el("ul", { id: "at-risk" }, ...atRisk.items.map((r) => el("li", {},
        el("a", { href: `#/matches/${r.match_id}` }, `${r.mentee_external_id ?? "?"} ↔ ${r.mentor_external_id ?? "?"}`),
        el("ul", {}, ...r.reasons.map((reason) => el("li", {}, `${reason.code}: ${reason.detail}`)))))) : el("p", {}, "No match at risk.")),
    el("section", { class: "card", "aria-labelledby": "defs-title" }, el("h2", { id: "defs-title" }, "Definitions"),
      el("dl", {}, ...Object.entries(definitions).flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]))));
}

function outcomesChart(outcomes: Schemas["Outcomes"], download: () => Promise<unknown>): HTMLElement {
  // `retention` and `promotions` are open objects in the schema: read them defensively.
  type Side = { rate?: number | null; per_100_person_years?: number | null };
  const retention = outcomes.retention as Record<string, { participants?: Side; comparison?: Side }>;
  const promotions = outcomes.promotions as { participants?: Side; comparison?: Side };
  const pct = (r: number | null | undefined) => (r === null || r === undefined ? null : Math.round(r * 1000) / 10);
  const side = (which: "participants" | "comparison") => [
    ...Object.values(retention).map((r) => pct(r[which]?.rate)), promotions[which]?.per_100_person_years ?? null];
  return chartFigure({ id: "outcomes", title: "Outcomes: participants vs comparison group", kind: "bar", download,
    labels: [...Object.keys(retention).map((k) => `Retention ${k.replace("months_", "")} months (%)`), "Promotions per 100 person-years"],
    series: [{ label: "Participants", color: BLUE, values: side("participants") },
      { label: "Comparison group", color: ORANGE, values: side("comparison") }] });
}

async function matchView(matchId: string): Promise<void> {
  const match = ok(await api.GET("/v1/matches/{match_id}", { params: { path: { match_id: matchId } } }));
  main.replaceChildren(heading(`Match ${match.mentee_external_id ?? ""} ↔ ${match.mentor_external_id ?? ""}`),
    el("p", {}, `Status ${match.status} · score ${match.score?.toFixed(3) ?? "—"}`),
    breakdownBars(match.breakdown ?? []),
    el("p", {}, el("a", { href: `#/programs/${match.program_id}/evidence` }, "Back to the program")));
}

// ---------------------------------------------------------------- routing
async function route(): Promise<void> {
  clearError();
  const signedIn = session.token() !== null;
  nav.hidden = !signedIn;
  if (!signedIn) return signInView();
  const [, kind, id] = location.hash.replace(/^#/, "").split("/");
  try {
    if (kind === "programs" && id) await programView(id);
    else if (kind === "matches" && id) await matchView(id);
    else await programsView();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      session.signOut(); // a wrong or revoked token: back to the sign-in form
      nav.hidden = true;
      signInView();
    }
    showError(error);
  }
}

document.getElementById("sign-out")?.addEventListener("click", () => {
  session.signOut();
  location.hash = "";
  void route();
});
// The skip link moves focus without touching the hash (the hash is the router's).
document.querySelector(".skip")?.addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});
window.addEventListener("hashchange", () => void route());
void route();
