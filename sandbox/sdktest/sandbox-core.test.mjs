// Conformance of the sandbox's long-standing routes with the official SDK:
// each of these methods is called through a tracked client, and its status
// and the shape of its answer checked against the SDK's types.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Finch, base, connect, redirectURI, signIn, track } from "./lib.mjs";

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const payrollProducts = ["company", "directory", "individual", "employment", "payment", "pay_statement"];

test("providers.list is a bare array of providers", async () => {
  // The SDK sends /providers with the access token (bearerAuth).
  const { finch: app } = await connect();
  const page = await app.providers.list();
  assert.ok(page.items.length >= 6);
  for (const p of page.items) {
    assert.equal(typeof p.id, "string");
    assert.equal(typeof p.display_name, "string");
    assert.ok(Array.isArray(p.products) && p.products.length > 0);
    // Optional fields are absent or of the SDK's type, never null.
    for (const k of ["icon", "logo", "primary_color"]) if (k in p) assert.equal(typeof p[k], "string", `${p.id}.${k}`);
    for (const k of ["beta", "manual", "mfa_required"]) if (k in p) assert.equal(typeof p[k], "boolean", `${p.id}.${k}`);
    for (const m of p.authentication_methods ?? []) {
      assert.ok(["assisted", "credential", "api_token", "api_credential", "oauth", "api"].includes(m.type), m.type);
    }
  }
  const ids = [];
  for await (const p of app.providers.list()) ids.push(p.id);
  assert.ok(ids.includes("gusto"));
});

test("employments.retrieveMany answers each individual, 404 for an unknown one", async () => {
  const { finch } = await connect();
  const dir = await finch.hris.directory.list({ limit: 3 });
  const ids = dir.individuals.map((p) => p.id);
  const out = [];
  const requests = [...ids, "00000000-0000-4000-8000-000000000000"].map((individual_id) => ({ individual_id }));
  for await (const r of finch.hris.employments.retrieveMany({ requests })) out.push(r);
  assert.equal(out.length, 4);
  for (const r of out.slice(0, 3)) {
    assert.equal(r.code, 200);
    assert.ok(ids.includes(r.individual_id));
    assert.equal(r.body.id, r.individual_id);
    assert.equal(typeof r.body.is_active, "boolean");
    assert.ok(["employee", "contractor"].includes(r.body.employment.type));
    assert.ok(Array.isArray(r.body.income_history));
  }
  assert.equal(out[3].code, 404);
  assert.equal(out[3].body.finch_code, "individual_not_found");
});

test("payments.list and payStatements.retrieveMany reconcile", async () => {
  const { finch } = await connect({ products: payrollProducts });
  const today = new Date().toISOString().slice(0, 10);
  const payments = [];
  for await (const p of finch.hris.payments.list({ start_date: "2000-01-01", end_date: today })) payments.push(p);
  assert.ok(payments.length >= 1, "at least one payment");
  const pay = payments[0];
  assert.match(pay.id, uuid);
  assert.match(pay.pay_date, /^\d{4}-\d{2}-\d{2}$/);
  assert.equal(typeof pay.gross_pay.amount, "number");
  assert.ok(Array.isArray(pay.individual_ids) && Array.isArray(pay.pay_group_ids));

  const responses = [];
  for await (const r of finch.hris.payStatements.retrieveMany({
    requests: [{ payment_id: pay.id, limit: 500 }, { payment_id: "00000000-0000-4000-8000-000000000000" }],
  })) responses.push(r);
  assert.equal(responses.length, 2);
  assert.equal(responses[0].code, 200);
  assert.equal(responses[0].payment_id, pay.id);
  const stmts = responses[0].body.pay_statements;
  assert.equal(responses[0].body.paging.count, stmts.length);
  let gross = 0;
  for (const s of stmts) {
    assert.ok(pay.individual_ids.includes(s.individual_id));
    assert.ok(Array.isArray(s.earnings) && Array.isArray(s.taxes) && Array.isArray(s.employee_deductions) && Array.isArray(s.employer_contributions));
    gross += s.gross_pay.amount;
  }
  assert.equal(gross, pay.gross_pay.amount, "the statements' gross pay sums to the payment's");
  assert.equal(responses[1].code, 404);

  // A product the connection was not granted is the SDK's PermissionDeniedError.
  const { finch: orgOnly } = await connect();
  await assert.rejects(orgOnly.hris.payments.list({ start_date: "2000-01-01", end_date: today }), Finch.PermissionDeniedError);
});

test("account.disconnectEntity takes one entity out", async () => {
  const { finch, token } = await connect({ username: "authorized_complex" });
  assert.equal(token.entity_ids.length, 3);
  const [gone, kept] = token.entity_ids;
  const r = await finch.account.disconnectEntity({ entity_ids: [gone] });
  assert.equal(r.status, "success");
  const intro = await finch.account.introspect();
  assert.equal(intro.entities.find((e) => e.id === gone).status, "disconnected");
  assert.equal(intro.entities.find((e) => e.id === kept).status, "connected");
  await assert.rejects(finch.hris.company.retrieve({ entity_ids: [gone] }), Finch.BadRequestError);
  const company = await finch.hris.company.retrieve({ entity_ids: [kept] });
  assert.ok(company.legal_name);
  await assert.rejects(finch.account.disconnectEntity({ entity_ids: ["not-an-entity"] }), Finch.NotFoundError);
});

test("connect.sessions.reauthenticate gives a new token on the same connection", async () => {
  const { app, token } = await connect();
  const session = await app.connect.sessions.reauthenticate({ connection_id: token.connection_id, products: payrollProducts, redirect_uri: redirectURI });
  assert.ok(session.session_id);
  assert.ok(session.connect_url.startsWith(base + "/authorize?session="));
  const code = await signIn(session.connect_url);
  const again = await app.accessTokens.create({ code, redirect_uri: redirectURI });
  assert.equal(again.connection_id, token.connection_id);
  assert.deepEqual([...again.products].sort(), [...payrollProducts].sort());
  await assert.rejects(app.connect.sessions.reauthenticate({ connection_id: "no-such-connection" }), Finch.NotFoundError);
  await assert.rejects(app.connect.sessions.reauthenticate({ connection_id: token.connection_id, minutes_to_expire: 0 }), Finch.BadRequestError);
});

test("the sandbox API: connections.create, accounts.update, company.update, directory.create", async () => {
  const app = track(new Finch({ baseURL: base }));
  const conn = await app.sandbox.connections.create({ provider_id: "gusto", employee_size: 4, products: payrollProducts });
  for (const k of ["access_token", "account_id", "authentication_type", "connection_id", "entity_id", "provider_id", "token_type"]) {
    assert.equal(typeof conn[k], "string", k);
  }
  assert.equal(conn.provider_id, "gusto");
  assert.equal(conn.authentication_type, "credential");
  assert.deepEqual(conn.products, payrollProducts);
  await assert.rejects(app.sandbox.connections.create({ provider_id: "gusto", products: ["company", "payroll"] }), (err) => {
    assert.ok(err instanceof Finch.BadRequestError);
    assert.match(err.message, /payroll/);
    return true;
  });
  await assert.rejects(app.sandbox.connections.create({ provider_id: "no_such_provider" }), Finch.BadRequestError);

  const finch = track(new Finch({ baseURL: base, accessToken: conn.access_token }));
  const dir = await finch.hris.directory.list();
  assert.equal(dir.paging.count, 4);

  const company = {
    legal_name: "Renamed Holdings LLC", ein: "12-3456789", entity: { type: "llc", subtype: null },
    primary_email: "payroll@renamed.example", primary_phone_number: "+15555550100",
    departments: [{ name: "Engineering", parent: null }], accounts: [],
    locations: [{ line1: "1 Main St", line2: null, city: "Austin", state: "TX", postal_code: "78701", country: "US" }],
  };
  const updated = await finch.sandbox.company.update(company);
  for (const [k, v] of Object.entries(company)) assert.deepEqual(updated[k], v, k);
  assert.equal((await finch.hris.company.retrieve()).legal_name, company.legal_name);

  const created = await finch.sandbox.directory.create({ body: [{ first_name: "New", last_name: "Hire", title: "Analyst" }] });
  assert.ok(Array.isArray(created) && created.length === 1);
  assert.equal(created[0].first_name, "New");
  assert.equal((await finch.hris.directory.list()).paging.count, 5);

  const acct = await finch.sandbox.connections.accounts.update({ connection_status: "reauth" });
  for (const k of ["account_id", "authentication_type", "company_id", "connection_id", "entity_id", "provider_id"]) {
    assert.equal(typeof acct[k], "string", k);
  }
  assert.equal(acct.connection_id, conn.connection_id);
  assert.ok(Array.isArray(acct.products));
  const noRetry = track(new Finch({ baseURL: base, accessToken: conn.access_token, maxRetries: 0 }));
  await assert.rejects(noRetry.hris.company.retrieve(), Finch.AuthenticationError);
  await finch.sandbox.connections.accounts.update({ connection_status: "connected" });
  assert.ok((await finch.hris.company.retrieve()).legal_name);
  await assert.rejects(finch.sandbox.connections.accounts.update({ connection_status: "sleeping" }), Finch.BadRequestError);
});
