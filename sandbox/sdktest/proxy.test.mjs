// The official Finch TypeScript SDK reads employer data through
// finchconnect's /v1 proxy, configured with a finchconnect API key as its
// access token and the proxy URL as its base URL: every SDK method whose
// route the proxy allows (the employer data, benefits, jobs, introspection
// and providers routes), reads with a read key and writes with a write
// key. Run by cmd/finchconnect/proxy_sdk_test.go, which sets
// FINCHCONNECT_PROXY_URL, FINCHCONNECT_API_KEY (read) and
// FINCHCONNECT_WRITE_KEY, for a connection with every product.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Finch, track, httpRoutes, calledMethods } from "./lib.mjs";

const baseURL = process.env.FINCHCONNECT_PROXY_URL;
const readKey = process.env.FINCHCONNECT_API_KEY;
const writeKey = process.env.FINCHCONNECT_WRITE_KEY;

// proxied reports whether the proxy allows a route (server/proxy.go).
const proxied = (route) => route.startsWith("/employer/") || route.startsWith("/jobs/") || route === "/introspect" || route === "/providers";

test("the Finch SDK reads company and directory through the proxy", { skip: !baseURL && "FINCHCONNECT_PROXY_URL is not set" }, async () => {
  const finch = track(new Finch({ baseURL, accessToken: readKey }));
  const company = await finch.hris.company.retrieve();
  assert.ok(company.legal_name, "company through the proxy");

  let pages = 0;
  const ids = new Set();
  for await (const page of (await finch.hris.directory.list({ limit: 10 })).iterPages()) {
    pages++;
    for (const p of page.individuals) ids.add(p.id);
  }
  assert.ok(pages >= 3, `walked ${pages} pages through the proxy, want at least 3`);
  assert.ok(ids.size >= 20);

  // A wrong key is refused by finchconnect, as the SDK's AuthenticationError.
  const wrong = new Finch({ baseURL, accessToken: "fck_000000000000_nope", maxRetries: 0 });
  await assert.rejects(wrong.hris.company.retrieve(), Finch.AuthenticationError);
});

test("every SDK method the proxy allows works through it", { skip: !writeKey && "FINCHCONNECT_WRITE_KEY is not set" }, async () => {
  const read = track(new Finch({ baseURL, accessToken: readKey, maxRetries: 0 }));
  const write = track(new Finch({ baseURL, accessToken: writeKey, maxRetries: 0 }));

  const intro = await read.account.introspect();
  assert.ok(intro.connection_id);
  assert.ok((await read.providers.list()).items.length > 0);

  const people = [];
  for await (const p of read.hris.directory.list()) people.push(p.id);
  const someone = people[0];
  const ind = (await read.hris.individuals.retrieveMany({ requests: [{ individual_id: someone }] })).getPaginatedItems();
  assert.equal(ind[0].code, 200);
  const emp = (await read.hris.employments.retrieveMany({ requests: [{ individual_id: someone }] })).getPaginatedItems();
  assert.equal(emp[0].code, 200);

  const year = new Date().getUTCFullYear();
  const payments = (await read.hris.payments.list({ start_date: `${year - 1}-01-01`, end_date: `${year}-12-31` })).getPaginatedItems();
  assert.ok(payments.length > 0, "payments through the proxy");
  const stmts = (await read.hris.payStatements.retrieveMany({ requests: [{ payment_id: payments[0].id }] })).getPaginatedItems();
  assert.equal(stmts[0].code, 200);
  const groups = (await read.payroll.payGroups.list()).getPaginatedItems();
  assert.ok(groups.length > 0);
  assert.equal((await read.payroll.payGroups.retrieve(groups[0].id)).id, groups[0].id);

  const docs = await read.hris.documents.list();
  assert.ok(docs.documents.length > 0);
  assert.equal((await read.hris.documents.retreive(docs.documents[0].id)).type, docs.documents[0].type);

  const items = (await read.hris.payStatementItem.list()).getPaginatedItems();
  assert.ok(items.length > 0);
  const rule = await write.hris.payStatementItem.rules.create({
    conditions: [{ field: "name", operator: "equals", value: "401(k)" }],
    attributes: { metadata: { plan: "retirement" } },
    effective_start_date: "2020-01-01",
    entity_type: "pay_statement_item",
  });
  assert.ok(rule.id);
  assert.ok((await read.hris.payStatementItem.rules.list()).getPaginatedItems().some((r) => r.id === rule.id));
  assert.equal((await write.hris.payStatementItem.rules.update(rule.id, { attributes: { metadata: { plan: "401k" } } })).id, rule.id);
  assert.ok((await write.hris.payStatementItem.rules.delete(rule.id)).deleted_at);

  const benefits = (await read.hris.benefits.list()).getPaginatedItems();
  const k401 = benefits.find((b) => b.type === "401k");
  assert.ok(k401, "the connection's 401(k) through the proxy");
  assert.equal((await read.hris.benefits.retrieve(k401.benefit_id)).benefit_id, k401.benefit_id);
  assert.ok((await read.hris.benefits.listSupportedBenefits()).getPaginatedItems().length > 0);
  const enrolled = await read.hris.benefits.individuals.enrolledIDs(k401.benefit_id);
  assert.ok(enrolled.individual_ids.length > 0);
  assert.ok((await read.hris.benefits.individuals.retrieveManyBenefits(k401.benefit_id)).getPaginatedItems().length > 0);

  const created = await write.hris.benefits.create({ type: "hsa_pre", description: "HSA", frequency: "every_paycheck" });
  assert.ok(created.job_id);
  assert.equal((await read.jobs.manual.retrieve(created.job_id)).job_id, created.job_id);
  assert.ok((await write.hris.benefits.update(k401.benefit_id, { description: "Retirement plan" })).job_id);
  assert.ok((await write.hris.benefits.individuals.enrollMany(k401.benefit_id, { individuals: [{ individual_id: someone }] })).job_id);
  assert.ok((await write.hris.benefits.individuals.unenrollMany(k401.benefit_id, { individual_ids: [someone] })).job_id);
  // register is for assisted connections: Finch's 501 comes through as it is.
  await assert.rejects(write.hris.benefits.register({ type: "401k", description: "Existing" }), (err) => err instanceof Finch.APIError && err.status === 501);

  const job = await write.jobs.automated.create({ type: "data_sync_all" });
  assert.ok(job.job_id);
  assert.equal((await read.jobs.automated.retrieve(job.job_id)).job_id, job.job_id);
  assert.ok((await read.jobs.automated.list()).data.length > 0);

  // A read key cannot write, and the SDK sees finchconnect's 403 as its
  // PermissionDeniedError.
  await assert.rejects(read.hris.benefits.create({ type: "hsa_pre", description: "HSA" }), Finch.PermissionDeniedError);

  const routes = httpRoutes();
  const called = calledMethods();
  const missing = Object.entries(routes).filter(([m, r]) => proxied(r) && !called.has(m)).map(([m]) => m);
  assert.deepEqual(missing, [], "every SDK method whose route the proxy allows was called through it");
  assert.ok(Object.values(routes).filter(proxied).length >= 30, "the proxy allows most of the SDK");
});
