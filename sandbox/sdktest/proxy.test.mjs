// The official Finch TypeScript SDK reads employer data through
// finchconnect's /v1 proxy, configured with a finchconnect API key as its
// access token and the proxy URL as its base URL: every SDK method whose
// route the proxy allows (the employer data, benefits, jobs, introspection
// and providers routes, and request forwarding), reads with a read key,
// writes with a write key and forwarding with a forward key; and
// finchconnect's own refusals reach the SDK as its typed errors, in Finch's
// error shape. Run by cmd/finchconnect/proxy_sdk_test.go, which sets
// FINCHCONNECT_PROXY_URL, FINCHCONNECT_API_KEY (read),
// FINCHCONNECT_WRITE_KEY and FINCHCONNECT_FORWARD_KEY, for a connection
// with every product, on a server run with -proxy-forward.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Finch, track, httpRoutes, calledMethods } from "./lib.mjs";

const baseURL = process.env.FINCHCONNECT_PROXY_URL;
const readKey = process.env.FINCHCONNECT_API_KEY;
const writeKey = process.env.FINCHCONNECT_WRITE_KEY;
const forwardKey = process.env.FINCHCONNECT_FORWARD_KEY;

// proxied reports whether the proxy allows a route (server/proxy.go).
const proxied = (route) => route.startsWith("/employer/") || route.startsWith("/jobs/") || route === "/introspect" || route === "/providers" || route === "/forward";

// refusedBy returns an assert.rejects validator for finchconnect's own
// refusal: the SDK's error class for the status, and Finch's error shape
// (name, finch_code, the HTTP status in code) with finchconnect's request
// id, the same as its X-Request-Id header.
const refusedBy = (cls, status, name, finchCode) => (err) => {
  assert.ok(err instanceof cls, `${err} is a ${cls.name}`);
  assert.equal(err.status, status);
  assert.equal(err.error?.name, name, `error.name of ${JSON.stringify(err.error)}`);
  assert.equal(err.error.finch_code, finchCode);
  assert.equal(err.error.code, status);
  assert.ok(err.error.request_id && err.error.request_id === err.headers?.get("x-request-id"), "request_id is X-Request-Id");
  assert.ok(err.message.startsWith(`${status} `) && err.message.includes(err.error.message), `message ${err.message}`);
  return true;
};

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
  await assert.rejects(wrong.hris.company.retrieve(), refusedBy(Finch.AuthenticationError, 401, "invalid_token_error", "unauthorized"));
});

test("every SDK method the proxy allows works through it", { skip: !writeKey && "FINCHCONNECT_WRITE_KEY is not set" }, async () => {
  const read = track(new Finch({ baseURL, accessToken: readKey, maxRetries: 0 }));
  const write = track(new Finch({ baseURL, accessToken: writeKey, maxRetries: 0 }));
  const forward = track(new Finch({ baseURL, accessToken: forwardKey, maxRetries: 0 }));

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

  // Request forwarding, with a forward key: the provider's answer comes
  // back inside Finch's 200.
  const fwd = await forward.requestForwarding.forward({ method: "GET", route: "/v1/companies" });
  assert.equal(fwd.statusCode, 200, `forward: ${JSON.stringify(fwd)}`);
  assert.equal(fwd.request.route, "/v1/companies");
  assert.ok(fwd.data, "the provider's body");

  // A read key cannot write, and the SDK sees finchconnect's 403 as its
  // PermissionDeniedError, named as Finch names a missing scope.
  await assert.rejects(read.hris.benefits.create({ type: "hsa_pre", description: "HSA" }), refusedBy(Finch.PermissionDeniedError, 403, "insufficient_scope_error", "forbidden"));
  await assert.rejects(read.jobs.automated.create({ type: "data_sync_all" }), refusedBy(Finch.PermissionDeniedError, 403, "insufficient_scope_error", "forbidden"));
  // Nor can a write key forward: that takes the forward scope.
  await assert.rejects(write.requestForwarding.forward({ method: "GET", route: "/v1/companies" }), refusedBy(Finch.PermissionDeniedError, 403, "insufficient_scope_error", "forbidden"));

  const routes = httpRoutes();
  const called = calledMethods();
  const missing = Object.entries(routes).filter(([m, r]) => proxied(r) && !called.has(m)).map(([m]) => m);
  assert.deepEqual(missing, [], "every SDK method whose route the proxy allows was called through it");
  assert.ok(Object.values(routes).filter(proxied).length >= 30, "the proxy allows most of the SDK");
});

test("finchconnect's refusals are the SDK's typed errors; Finch's headers reach it", { skip: !writeKey && "FINCHCONNECT_WRITE_KEY is not set" }, async () => {
  const write = new Finch({ baseURL, accessToken: writeKey, maxRetries: 0 });
  // A route the proxy never passes (the sandbox API, Connect, the token
  // exchange): PermissionDeniedError, permission_denied.
  await assert.rejects(write.post("/sandbox/directory", { body: [] }), refusedBy(Finch.PermissionDeniedError, 403, "permission_denied", "path_not_allowed"));
  await assert.rejects(write.post("/disconnect"), refusedBy(Finch.PermissionDeniedError, 403, "permission_denied", "path_not_allowed"));
  // No key at all: AuthenticationError, as Finch names a missing token.
  const anon = new Finch({ baseURL, accessToken: "", maxRetries: 0 });
  await assert.rejects(anon.get("/employer/company", { headers: { Authorization: null } }), refusedBy(Finch.AuthenticationError, 401, "unauthorized_request_error", "unauthorized"));
  // A connection finchconnect does not hold: NotFoundError.
  const elsewhere = new Finch({ baseURL: baseURL.replace(/\/connections\/[^/]+\//, "/connections/no-such-connection/"), accessToken: writeKey, maxRetries: 0 });
  await assert.rejects(elsewhere.hris.company.retrieve(), refusedBy(Finch.NotFoundError, 404, "not_found_error", "not_found"));
  // Finch's own error comes through as Finch sent it: a benefit it does
  // not know is its NotFoundError, with its name and no request_id of ours.
  await assert.rejects(write.hris.benefits.retrieve("00000000-0000-4000-8000-000000000000"), (err) => {
    assert.ok(err instanceof Finch.NotFoundError, `${err}`);
    assert.equal(err.error.name, "not_found_error");
    assert.equal(err.error.request_id, undefined);
    return true;
  });

  // The headers clients read come back from Finch.
  const { response } = await write.hris.company.retrieve().withResponse();
  assert.ok(response.headers.get("finch-api-version"), "Finch-API-Version");
  assert.ok(response.headers.get("finch-request-id"), "Finch-Request-Id");
});
