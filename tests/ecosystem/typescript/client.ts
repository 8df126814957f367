// The code a TypeScript team writes first against this API, with openapi-fetch over the types
// openapi-typescript generates from the live schema (`schema.d.ts`, made by the test): it must
// compile under `strict` with no casts, and run. tests/ecosystem/test_typescript.py drives it.
import createClient from "openapi-fetch";
import type { paths } from "./schema";

const client = createClient<paths>({
  baseUrl: process.env.BASE_URL,
  headers: { Authorization: `Bearer ${process.env.API_KEY}` },
});
const project_id = Number(process.env.PROJECT_ID);

async function main(): Promise<void> {
  const created = await client.POST("/api/projects/{project_id}/insights/", {
    params: { path: { project_id } },
    body: {
      name: "Pageviews from TypeScript",
      tags: ["ts"],
      query: { kind: "InsightVizNode", source: { kind: "TrendsQuery", series: [{ kind: "EventsNode", event: "$pageview" }] } },
    },
  });
  if (created.error) throw new Error(created.error.detail);

  // The id of one answer is the path of the next call.
  const patched = await client.PATCH("/api/projects/{project_id}/insights/{id}/", {
    params: { path: { project_id, id: created.data.id } },
    body: { favorited: true },
  });
  if (patched.error) throw new Error(`${patched.error.code}: ${patched.error.detail}`);

  const listed = await client.GET("/api/projects/{project_id}/insights/", {
    params: { path: { project_id }, query: { basic: true } },
  });
  if (listed.error) throw new Error(listed.error.detail);

  const run = await client.POST("/api/projects/{project_id}/query/", {
    params: { path: { project_id } },
    body: { query: { kind: "TrendsQuery", series: [{ kind: "EventsNode", event: "$pageview" }] } },
  });
  if (run.error) throw new Error(run.error.detail);

  const trending = await client.GET("/api/projects/{project_id}/insights/trending/", {
    params: { path: { project_id }, query: { days: 7 } },
  });
  if (trending.error) throw new Error(trending.error.detail);

  const views = await client.GET("/api/projects/{project_id}/insights/{id}/views/", {
    params: { path: { project_id, id: created.data.id }, query: { date_from: "-6d", interval: "week" } },
  });
  if (views.error) throw new Error(views.error.detail);

  const viewers = await client.GET("/api/projects/{project_id}/insights/{id}/viewers/", {
    params: { path: { project_id, id: created.data.id }, query: { days: 7 } },
  });
  if (viewers.error) throw new Error(viewers.error.detail);

  const usage = await client.GET("/api/projects/{project_id}/insights/usage/", {
    params: { path: { project_id }, query: { days: 7 } },
  });
  if (usage.error) throw new Error(usage.error.detail);
  // Hygiene: soft-delete and restore in bulk, then rename the insight's tag and read the project's tags.
  const ids = [created.data.id];
  const deleted = await client.POST("/api/projects/{project_id}/insights/bulk_delete/", {
    params: { path: { project_id } },
    body: { ids },
  });
  if (deleted.error) throw new Error(deleted.error.detail);
  const restored = await client.POST("/api/environments/{project_id}/insights/bulk_restore/", {
    params: { path: { project_id } },
    body: { ids },
  });
  if (restored.error) throw new Error(restored.error.detail);
  const renamed = await client.POST("/api/projects/{project_id}/tags/rename/", {
    params: { path: { project_id }, query: { dry_run: false } },
    body: { from: "ts", to: "TypeScript" },
  });
  if (renamed.error) throw new Error(renamed.error.detail);
  const tags = await client.GET("/api/projects/{project_id}/tags/", {
    params: { path: { project_id }, query: { usage: true } },
  });
  if (tags.error) throw new Error(tags.error.detail);
  const tagUsage: [string, number][] = [];
  for (const tag of tags.data) {
    if (typeof tag !== "string") tagUsage.push([tag.name, tag.insights]);
  }
  const untagged = await client.POST("/api/projects/{project_id}/tags/delete/", {
    params: { path: { project_id } },
    body: { name: "typescript" },
  });
  if (untagged.error) throw new Error(untagged.error.detail);


  const missing = await client.GET("/api/projects/{project_id}/insights/{id}/", {
    params: { path: { project_id, id: "nosuchid" } },
  });

  console.log(
    JSON.stringify({
      favorited: patched.data.favorited,
      listed: listed.data.results.map((row) => row.name),
      next: listed.data.next,
      counts: run.data.results?.map((series) => series.count) ?? null,
      trending: trending.data.results.map((row) => [row.name, row.view_count]),
      views: [views.data.total.view_count, views.data.total.unique_viewers],
      viewers: viewers.data.results.map((row) => [row.user.email, row.view_count]),
      usage: [usage.data.insights, usage.data.viewed, usage.data.views, usage.data.top_viewers.map((top) => top.user.email)],
      bulk: [...deleted.data.updated, ...restored.data.updated].map((row) => row.deleted),
      renamed: renamed.data.insights,
      tags: tagUsage,
      untagged: untagged.data.insights,
      missing: missing.error?.detail ?? null,
    }),
  );
}

await main();
