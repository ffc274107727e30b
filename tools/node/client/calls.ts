// One typed call per resource of the public API, against types that openapi-typescript
// generates from the live gateway's /openapi.json (client/api.d.ts, made by the test).
// It only has to compile: a renamed field, a missing status or an untyped error breaks it.
import createClient from "openapi-fetch";
import type { components, paths } from "./api";

type Problem = components["schemas"]["Problem"];
type ValidationProblem = components["schemas"]["ValidationProblem"];

const api = createClient<paths>({
  baseUrl: "http://127.0.0.1:8000",
  headers: { Authorization: "Bearer mbk_..." },
});

// Every error of our own operations is problem+json: its title is readable.
function explain(error: Problem | ValidationProblem): string {
  const fields = (error.errors ?? []).map((e) => `${e.field}: ${e.message}`);
  return [`${error.status} ${error.title}: ${error.detail}`, ...fields].join("\n");
}

export async function walkthrough(): Promise<string[]> {
  const seen: string[] = [];

  const org = await api.POST("/v1/organizations", { body: { name: "Acme" } });
  if (org.error) return [explain(org.error)];
  const orgId: string = org.data.id;

  const key = await api.POST("/v1/organizations/{org_id}/api-keys", {
    params: { path: { org_id: orgId } },
    body: { name: "workday", scopes: ["employees"] },
  });
  if (key.data) seen.push(key.data.key);
  const keys = await api.GET("/v1/api-keys", { params: { query: { limit: 10 } } });
  if (keys.data) seen.push(...keys.data.items.map((k) => k.name), keys.data.next_cursor ?? "");

  const employee = await api.PUT("/v1/employees/{external_id}", {
    params: { path: { external_id: "E-1" } },
    body: { email: "ada@acme.com", time_zone: "Europe/London", languages: ["en"] },
  });
  if (employee.error) seen.push(explain(employee.error));
  else seen.push(employee.data.external_id, employee.data.employment_status);
  const employees = await api.GET("/v1/employees", { params: { query: { limit: 50 } } });
  if (employees.data) seen.push(employees.data.next_cursor ?? "last page");

  const program = await api.POST("/v1/programs", {
    body: { name: "Mentoring 2026", format: "one_to_one" },
  });
  if (program.error) return [...seen, explain(program.error)];
  const programId = program.data.id;

  const enrollment = await api.POST("/v1/programs/{program_id}/enrollments", {
    params: { path: { program_id: programId } },
    body: { employee_external_id: "E-1", role: "mentee", skills: [{ name: "python", level: 3 }] },
  });
  if (enrollment.error) return [...seen, explain(enrollment.error)];

  const suggestions = await api.GET(
    "/v1/programs/{program_id}/enrollments/{enrollment_id}/suggestions",
    { params: { path: { program_id: programId, enrollment_id: enrollment.data.id } } },
  );
  if (suggestions.data) {
    // Mentors for a mentee, mentees for a mentor: the item shape says which.
    for (const s of suggestions.data.items) {
      const other = "mentor_enrollment_id" in s ? s.mentor_enrollment_id : s.mentee_enrollment_id;
      seen.push(`${other} ${s.score}`);
    }
  }

  const match = await api.POST("/v1/matches", {
    body: {
      program_id: programId,
      mentee_enrollment_id: enrollment.data.id,
      mentor_enrollment_id: enrollment.data.id,
    },
  });
  if (match.error) seen.push(explain(match.error));
  else seen.push(match.data.status);
  const matches = await api.GET("/v1/matches", { params: { query: { program_id: programId } } });
  if (matches.data) seen.push(String(matches.data.items.length));

  const run = await api.POST("/v1/programs/{program_id}/matching-runs", {
    params: { path: { program_id: programId } },
    body: { objective: "max_score" },
  });
  if (run.data) {
    const state = await api.GET("/v1/matching-runs/{run_id}", {
      params: { path: { run_id: run.data.id } },
    });
    if (state.data) seen.push(state.data.status);
  }

  const users = await api.GET("/scim/v2/Users", { params: { query: { count: 10 } } });
  if (users.data) seen.push(String(users.data.totalResults));
  else if (users.error) seen.push(users.error.detail ?? "SCIM error");
  return seen;
}
