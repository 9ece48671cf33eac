// Conformance of the sandbox's deductions, jobs and providers with the
// official Finch TypeScript SDK: every method of hris.benefits.*,
// hris.benefits.individuals.*, jobs.*, sandbox.jobs.* and providers.list,
// with its status and shape. Run by sandbox/sdk_test.go with the other
// sandbox-*.test.mjs files, in parallel against one sandbox: this file
// never moves the sandbox's clock (other files' codes and windows follow
// it), so jobs are seen as they start; their whole life on the clock is
// tested in Go (sandbox/benefits_test.go, jobs_test.go).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Finch, base, track } from "./lib.mjs";

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// sandboxConnection makes a connection with POST /sandbox/connections and
// returns a tracked client holding its token.
async function sandboxConnection(products, { provider = "gusto", authentication_type } = {}) {
  const app = track(new Finch({ baseURL: base }));
  const conn = await app.sandbox.connections.create({ provider_id: provider, products, employee_size: 5, ...(authentication_type ? { authentication_type } : {}) });
  return track(new Finch({ baseURL: base, accessToken: conn.access_token }));
}

// rejects runs call and returns the APIError it must fail with.
async function rejects(call, status) {
  try {
    await call();
  } catch (err) {
    assert.ok(err instanceof Finch.APIError, `want an APIError, got ${err}`);
    assert.equal(err.status, status, `status ${err.status}: ${JSON.stringify(err.error)}`);
    return err;
  }
  assert.fail(`the call succeeded; want ${status}`);
}

test("providers.list: benefits_support per provider, all 19 benefit types", async () => {
  const finch = await sandboxConnection(["company"]);
  const { data: page, response } = await finch.providers.list().withResponse();
  assert.equal(response.status, 200);
  const providers = page.items;
  assert.ok(providers.length >= 8);
  const supports = new Set();
  for (const p of providers) {
    assert.equal(typeof p.id, "string");
    assert.equal(typeof p.display_name, "string");
    assert.ok(p.products.includes("benefits"));
    const support = p.authentication_methods[0].benefits_support;
    assert.equal(Object.keys(support).length, 19, `${p.id}: ${Object.keys(support)}`);
    for (const [type, v] of Object.entries(support)) {
      if (v === null) continue;
      assert.ok(Array.isArray(v.supported_features.frequencies), `${p.id} ${type}`);
      assert.ok(["supported", "not_supported_by_finch", "not_supported_by_provider", "client_access_only"].includes(v.supported_operations.company_benefits.create));
    }
    supports.add(JSON.stringify(support));
  }
  assert.equal(supports.size, providers.length, "every provider's benefits_support differs");
});

test("hris.benefits: list, retrieve, create, update, listSupportedBenefits, register", async () => {
  const finch = await sandboxConnection(["benefits", "directory"]);

  const meta = await finch.hris.benefits.listSupportedBenefits().withResponse();
  assert.equal(meta.response.status, 200);
  assert.ok(meta.data.items.length > 0);
  for (const b of meta.data.items) {
    assert.ok(Array.isArray(b.frequencies));
    assert.ok(Array.isArray(b.employee_deduction));
    assert.equal(typeof b.annual_maximum, "boolean");
    assert.ok("company_contribution" in b && "description" in b);
  }
  // The same types as gusto's benefits_support.
  const gusto = (await finch.providers.list()).items.find((p) => p.id === "gusto");
  const supported = Object.entries(gusto.authentication_methods[0].benefits_support).filter(([, v]) => v !== null).map(([k]) => k).sort();
  assert.deepEqual(meta.data.items.map((b) => b.type).sort(), supported);

  const list = await finch.hris.benefits.list().withResponse();
  assert.equal(list.response.status, 200);
  const k401 = list.data.items.find((b) => b.type === "401k");
  assert.ok(k401, "a new connection has its 401(k)");
  assert.match(k401.benefit_id, uuid);
  assert.equal(k401.frequency, "every_paycheck");
  assert.ok("description" in k401 && "company_contribution" in k401);

  const got = await finch.hris.benefits.retrieve(k401.benefit_id).withResponse();
  assert.equal(got.response.status, 200);
  assert.deepEqual(got.data, k401);

  const created = await finch.hris.benefits.create({ type: "hsa_pre", description: "HSA", frequency: "every_paycheck" }).withResponse();
  assert.equal(created.response.status, 201);
  assert.match(created.data.benefit_id, uuid);
  assert.match(created.data.job_id, uuid);
  const job = await finch.jobs.manual.retrieve(created.data.job_id).withResponse();
  assert.equal(job.response.status, 200);
  assert.deepEqual(job.data, { job_id: created.data.job_id, status: "pending", body: null });
  // Not there until its job completes.
  const notYet = await rejects(() => finch.hris.benefits.retrieve(created.data.benefit_id), 404);
  assert.equal(notYet.error.finch_code, "benefit_not_found");
  // Idempotent on type, frequency and description.
  const again = await finch.hris.benefits.create({ type: "hsa_pre", description: "HSA", frequency: "every_paycheck" });
  assert.equal(again.benefit_id, created.data.benefit_id);
  assert.notEqual(again.job_id, created.data.job_id);
  // Refusals.
  const unsupported = await rejects(() => finch.hris.benefits.create({ type: "457_roth", description: "Roth 457" }), 422);
  assert.equal(unsupported.error.finch_code, "unsupported_parameters");
  await rejects(() => finch.hris.benefits.retrieve("not-a-uuid"), 400);

  const updated = await finch.hris.benefits.update(k401.benefit_id, { description: "Retirement plan" }).withResponse();
  assert.equal(updated.response.status, 200);
  assert.equal(updated.data.benefit_id, k401.benefit_id);
  assert.match(updated.data.job_id, uuid);
  assert.equal((await finch.jobs.manual.retrieve(updated.data.job_id)).status, "pending");

  // register is for assisted connections; on an automated one it is 501.
  const notHere = await rejects(() => finch.hris.benefits.register({ type: "401k", description: "Existing" }, { maxRetries: 0 }), 501);
  assert.equal(notHere.error.name, "not_implemented_error");
  const assisted = await sandboxConnection(["benefits"], { authentication_type: "assisted" });
  await assisted.sandbox.connections.accounts.update({ connection_status: "connected" });
  const registered = await assisted.hris.benefits.register({ type: "401k", description: "Existing 401(k)", frequency: "every_paycheck" }).withResponse();
  assert.equal(registered.response.status, 201);
  assert.match(registered.data.benefit_id, uuid);
  assert.equal((await assisted.jobs.manual.retrieve(registered.data.job_id)).status, "pending");
  // Assisted connections cannot read deductions.
  await rejects(() => assisted.hris.benefits.list({}, { maxRetries: 0 }), 501);

  // Without the benefits product: 403.
  const noScope = await sandboxConnection(["company"]);
  const denied = await rejects(() => noScope.hris.benefits.list(), 403);
  assert.equal(denied.error.name, "insufficient_scope_error");
});

test("hris.benefits.individuals: enrolledIDs, retrieveManyBenefits, enrollMany, unenrollMany", async () => {
  const finch = await sandboxConnection(["benefits", "directory"]);
  const k401 = (await finch.hris.benefits.list()).items.find((b) => b.type === "401k");

  const enrolled = await finch.hris.benefits.individuals.enrolledIDs(k401.benefit_id).withResponse();
  assert.equal(enrolled.response.status, 200);
  assert.equal(enrolled.data.benefit_id, k401.benefit_id);
  assert.ok(enrolled.data.individual_ids.length > 0);

  const ids = enrolled.data.individual_ids;
  const many = await finch.hris.benefits.individuals.retrieveManyBenefits(k401.benefit_id, { individual_ids: ids.join(",") }).withResponse();
  assert.equal(many.response.status, 200);
  assert.equal(many.data.items.length, ids.length);
  for (const it of many.data.items) {
    assert.equal(it.code, 200);
    assert.ok(ids.includes(it.individual_id));
    assert.deepEqual(Object.keys(it.body).sort(), ["annual_maximum", "catch_up", "company_contribution", "employee_deduction", "hsa_contribution_limit"]);
    assert.equal(it.body.employee_deduction.type, "percent");
  }
  const all = await finch.hris.benefits.individuals.retrieveManyBenefits(k401.benefit_id);
  assert.equal(all.items.length, ids.length, "no individual_ids: every enrolled individual");

  const everyone = [];
  for await (const p of finch.hris.directory.list()) everyone.push(p.id);
  const enroll = await finch.hris.benefits.individuals
    .enrollMany(k401.benefit_id, {
      individuals: [
        { individual_id: everyone[0], configuration: { employee_deduction: { type: "percent", amount: 600 }, catch_up: true } },
        { individual_id: "00000000-0000-4000-8000-000000000000" },
      ],
    })
    .withResponse();
  assert.equal(enroll.response.status, 200);
  assert.match(enroll.data.job_id, uuid);
  assert.deepEqual(Object.keys(enroll.data), ["job_id"]);
  assert.equal((await finch.jobs.manual.retrieve(enroll.data.job_id)).status, "pending");
  // An enrollMany with no individuals sends no body: an empty batch.
  const empty = await finch.hris.benefits.individuals.enrollMany(k401.benefit_id);
  assert.match(empty.job_id, uuid);

  const unenroll = await finch.hris.benefits.individuals.unenrollMany(k401.benefit_id, { individual_ids: [ids[0]] }).withResponse();
  assert.equal(unenroll.response.status, 200);
  assert.match(unenroll.data.job_id, uuid);
  await rejects(() => finch.hris.benefits.individuals.unenrollMany(k401.benefit_id, {}), 400);
  const missing = await rejects(() => finch.hris.benefits.individuals.enrolledIDs("11111111-1111-4111-8111-111111111111"), 404);
  assert.equal(missing.error.finch_code, "benefit_not_found");
});

test("jobs.automated, jobs.manual, sandbox.jobs", async () => {
  const finch = await sandboxConnection(["company", "directory", "documents"]);

  const created = await finch.jobs.automated.create({ type: "data_sync_all" }).withResponse();
  assert.equal(created.response.status, 201);
  assert.match(created.data.job_id, uuid);
  assert.equal(created.data.job_url, base + "/jobs/automated/" + created.data.job_id);
  assert.equal(created.data.allowed_refreshes, 1);
  assert.equal(created.data.remaining_refreshes, 0);
  // One data_sync_all at a time: the running one comes back, 202.
  const again = await finch.jobs.automated.create({ type: "data_sync_all" }).withResponse();
  assert.equal(again.response.status, 202);
  assert.equal(again.data.job_id, created.data.job_id);

  const job = await finch.jobs.automated.retrieve(created.data.job_id).withResponse();
  assert.equal(job.response.status, 200);
  assert.equal(job.data.type, "data_sync_all");
  assert.equal(job.data.status, "pending");
  assert.equal(job.data.params, null);
  assert.equal(job.data.scheduled_at, null);
  assert.equal(job.data.completed_at, null);
  assert.ok(!Number.isNaN(Date.parse(job.data.created_at)));

  let someone;
  for await (const p of finch.hris.directory.list()) {
    someone = p.id;
    break;
  }
  const w4 = await finch.jobs.automated.create({ type: "w4_form_employee_sync", params: { individual_id: someone } }).withResponse();
  assert.equal(w4.response.status, 201);
  assert.deepEqual((await finch.jobs.automated.retrieve(w4.data.job_id)).params, { individual_id: someone });

  const list = await finch.jobs.automated.list().withResponse();
  assert.equal(list.response.status, 200);
  assert.deepEqual(list.data.data.map((j) => j.job_id), [w4.data.job_id, created.data.job_id], "newest first");
  assert.deepEqual(list.data.meta.quotas.data_sync_all, { allowed_refreshes: 1, remaining_refreshes: 0 });
  const paged = await finch.jobs.automated.list({ limit: 1, offset: 1 });
  assert.deepEqual(paged.data.map((j) => j.job_id), [created.data.job_id]);

  await rejects(() => finch.jobs.automated.retrieve("11111111-1111-4111-8111-111111111111"), 404);
  await rejects(() => finch.jobs.manual.retrieve("11111111-1111-4111-8111-111111111111"), 403); // no benefits product

  const config = await finch.sandbox.jobs.configuration.retrieve().withResponse();
  assert.equal(config.response.status, 200);
  assert.deepEqual(config.data, [{ type: "data_sync_all", completion_status: "complete" }]);
  const put = await finch.sandbox.jobs.configuration.update({ type: "data_sync_all", completion_status: "error" }).withResponse();
  assert.equal(put.response.status, 200);
  assert.deepEqual(put.data, { type: "data_sync_all", completion_status: "error" });
  assert.deepEqual(await finch.sandbox.jobs.configuration.retrieve(), [{ type: "data_sync_all", completion_status: "error" }]);
  await rejects(() => finch.sandbox.jobs.configuration.update({ type: "data_sync_all", completion_status: "success" }), 400);

  // The sandbox's own sync: outside the quota, one at a time too.
  const sj = await finch.sandbox.jobs.create({ type: "data_sync_all" }).withResponse();
  assert.equal(sj.response.status, 200);
  assert.equal(sj.data.job_id, created.data.job_id, "the running sync");
  assert.equal(sj.data.job_url, created.data.job_url);
  assert.equal(sj.data.allowed_refreshes, 1);
  const fresh = await sandboxConnection(["company"]);
  const own = await fresh.sandbox.jobs.create({ type: "data_sync_all" });
  assert.match(own.job_id, uuid);
  assert.equal(own.remaining_refreshes, 1, "a sandbox job uses no quota");
  assert.equal((await fresh.jobs.automated.retrieve(own.job_id)).type, "data_sync_all");
});
