// The same first code with @hey-api/openapi-ts's SDK (generated into ./heyapi by the test): it must
// compile under `strict` with no casts. tests/ecosystem/test_typescript.py drives it.
import { client } from "./heyapi/client.gen";
import { insightsCreate, insightsList, insightsPartialUpdate, queryCreate } from "./heyapi/sdk.gen";

client.setConfig({ baseUrl: process.env.BASE_URL, headers: { Authorization: `Bearer ${process.env.API_KEY}` } });
const project_id = Number(process.env.PROJECT_ID);

const created = await insightsCreate({ path: { project_id }, body: { name: "From hey-api", tags: ["ts"] } });
if (created.error) throw new Error(created.error.detail);
const patched = await insightsPartialUpdate({ path: { project_id, id: created.data.id }, body: { favorited: true } });
if (patched.error) throw new Error(`${patched.error.code}: ${patched.error.detail}`);
const listed = await insightsList({ path: { project_id }, query: { basic: true } });
if (listed.error) throw new Error(listed.error.detail);
const run = await queryCreate({
  path: { project_id },
  body: { query: { kind: "TrendsQuery", series: [{ kind: "EventsNode", event: "$pageview" }] } },
});
if (run.error) throw new Error(run.error.detail);
console.log(listed.data.results.map((row) => row.name), patched.data.favorited, run.data.results?.length);
