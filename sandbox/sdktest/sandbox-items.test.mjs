// Conformance of pay statement items and their rules, documents, request
// forwarding and sandbox accounts with the official SDK: status and shape
// of every method of that area.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Finch, base, connect, track } from "./lib.mjs";

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const categories = ["earnings", "taxes", "employee_deductions", "employer_contributions"];

test("payStatementItem.list and its rules", async () => {
  const { finch } = await connect({ products: ["company", "directory", "individual", "employment", "payment", "pay_statement"] });
  const items = [];
  for await (const it of finch.hris.payStatementItem.list()) items.push(it);
  assert.ok(items.length >= 5, `${items.length} items`);
  for (const it of items) {
    assert.ok(categories.includes(it.category), it.category);
    assert.equal(typeof it.name, "string");
    assert.equal(it.attributes.metadata, null, "no rule yet");
    if (it.category === "taxes") assert.equal(typeof it.attributes.employer, "boolean");
    else assert.ok(!("employer" in it.attributes));
    if (it.category === "employee_deductions") assert.equal(typeof it.attributes.pre_tax, "boolean");
  }
  const taxes = (await finch.hris.payStatementItem.list({ categories: ["taxes"] })).getPaginatedItems();
  assert.ok(taxes.length > 0 && taxes.every((it) => it.category === "taxes"));
  const medicare = (await finch.hris.payStatementItem.list({ name: "medicare" })).getPaginatedItems();
  assert.ok(medicare.length > 0 && medicare.every((it) => /medicare/i.test(it.name)));

  const rule = await finch.hris.payStatementItem.rules.create({
    conditions: [{ field: "name", operator: "equals", value: "401(k)" }],
    attributes: { metadata: { plan: "retirement", employer_match: true } },
    effective_start_date: "2020-01-01",
    entity_type: "pay_statement_item",
  });
  assert.match(rule.id, uuid);
  assert.equal(rule.priority, 1);
  assert.deepEqual(rule.conditions, [{ field: "name", operator: "equals", value: "401(k)" }]);
  assert.deepEqual(rule.attributes.metadata, { plan: "retirement", employer_match: true });
  assert.equal(rule.effective_start_date, "2020-01-01");
  assert.equal(rule.effective_end_date, null);
  assert.ok(!Number.isNaN(Date.parse(rule.created_at)) && !Number.isNaN(Date.parse(rule.updated_at)));

  const labelled = (await finch.hris.payStatementItem.list({ name: "401(k)" })).getPaginatedItems();
  assert.ok(labelled.length >= 1);
  for (const it of labelled) {
    assert.deepEqual(it.attributes.metadata, it.name === "401(k)" ? { plan: "retirement", employer_match: true } : null, it.name);
  }

  // The metadata shows on the pay statements' matching lines too.
  // The earliest payment can be a pay group's whose few people (interns,
  // paid weekly) save nothing: look at the first ten.
  const payments = (await finch.hris.payments.list({ start_date: "2000-01-01", end_date: new Date().toISOString().slice(0, 10) })).getPaginatedItems();
  const batch = (await finch.hris.payStatements.retrieveMany({ requests: payments.slice(0, 10).map((p) => ({ payment_id: p.id })) })).getPaginatedItems();
  const k401 = batch.flatMap((stmts) => stmts.body.pay_statements.flatMap((s) => s.employee_deductions)).filter((d) => d.name === "401(k)");
  assert.ok(k401.length > 0, "someone saves in the 401(k)");
  for (const d of k401) assert.deepEqual(d.attributes, { metadata: { plan: "retirement", employer_match: true } });

  const rules = [];
  for await (const r of finch.hris.payStatementItem.rules.list()) rules.push(r);
  assert.deepEqual(rules.map((r) => r.id), [rule.id]);

  const updated = await finch.hris.payStatementItem.rules.update(rule.id, { attributes: { metadata: { plan: "401k" } } });
  assert.equal(updated.id, rule.id);
  assert.deepEqual(updated.attributes.metadata, { plan: "401k" });
  assert.deepEqual(updated.conditions, rule.conditions, "an update keeps what it does not name");

  const deleted = await finch.hris.payStatementItem.rules.delete(rule.id);
  assert.equal(deleted.id, rule.id);
  assert.ok(!Number.isNaN(Date.parse(deleted.deleted_at)));
  assert.equal((await finch.hris.payStatementItem.rules.list()).getPaginatedItems().length, 0);
  assert.ok((await finch.hris.payStatementItem.list({ name: "401(k)" })).getPaginatedItems().every((it) => it.attributes.metadata === null));

  await assert.rejects(finch.hris.payStatementItem.rules.delete(rule.id), Finch.NotFoundError);
  await assert.rejects(finch.hris.payStatementItem.rules.update("not-a-uuid", { priority: 2 }), Finch.BadRequestError);
  await assert.rejects(finch.hris.payStatementItem.rules.create({ conditions: [{ field: "colour", operator: "equals", value: "x" }], attributes: { metadata: { a: 1 } } }), Finch.BadRequestError);
  await assert.rejects(finch.hris.payStatementItem.list({ categories: ["bonuses"] }), Finch.BadRequestError);

  // pay_statement is the product these routes need.
  const { finch: orgOnly } = await connect();
  await assert.rejects(orgOnly.hris.payStatementItem.list(), Finch.PermissionDeniedError);
});

test("documents.list and documents.retreive", async () => {
  const { finch } = await connect({ products: ["company", "directory", "documents"] });
  const directory = new Set();
  for await (const p of finch.hris.directory.list()) directory.add(p.id);
  const all = await finch.hris.documents.list();
  assert.ok(all.documents.length > 0);
  assert.equal(all.paging.count, all.documents.length);
  assert.equal(all.paging.offset, 0);
  for (const d of all.documents) {
    assert.match(d.id, uuid);
    assert.ok(directory.has(d.individual_id), "documents belong to people of the directory");
    assert.ok(["w4_2020", "w4_2005"].includes(d.type));
    assert.equal(typeof d.year, "number");
    assert.equal(d.url, `${base}/employer/documents/${d.id}`);
  }
  const page = await finch.hris.documents.list({ limit: 2, offset: 1 });
  assert.deepEqual(page.documents.map((d) => d.id), all.documents.slice(1, 3).map((d) => d.id));
  assert.equal(page.paging.count, all.documents.length);

  const someone = all.documents[0].individual_id;
  const theirs = await finch.hris.documents.list({ individual_ids: [someone] });
  assert.ok(theirs.documents.length >= 1 && theirs.documents.every((d) => d.individual_id === someone));

  for (const type of ["w4_2020", "w4_2005"]) {
    const docs = (await finch.hris.documents.list({ types: [type] })).documents;
    assert.ok(docs.length > 0, `some ${type}`);
    assert.ok(docs.every((d) => d.type === type));
    const w4 = await finch.hris.documents.retreive(docs[0].id);
    assert.equal(w4.type, type);
    assert.equal(w4.year, docs[0].year);
    assert.equal(w4.data.individual_id, docs[0].individual_id);
    if (type === "w4_2020") {
      assert.ok([null, "head_of_household", "married_filing_jointly_or_qualifying_surviving_spouse", "single_or_married_filing_separately"].includes(w4.data.filing_status));
      for (const k of ["amount_for_other_dependents", "amount_for_qualifying_children_under_17", "deductions", "extra_withholding", "other_income", "total_claim_dependent_and_other_credits"]) {
        assert.ok(Number.isInteger(w4.data[k]), k);
      }
    } else {
      assert.ok([null, "married", "married_but_withhold_at_higher_single_rate", "single"].includes(w4.data.filing_status));
      assert.ok([null, "exempt", "non_exempt"].includes(w4.data.exemption));
      assert.ok(Number.isInteger(w4.data.additional_withholding) && Number.isInteger(w4.data.total_number_of_allowances));
    }
  }
  await assert.rejects(finch.hris.documents.retreive("00000000-0000-4000-8000-000000000000"), Finch.NotFoundError);
  await assert.rejects(finch.hris.documents.list({ types: ["w2"] }), Finch.BadRequestError);

  const { finch: noDocs } = await connect();
  await assert.rejects(noDocs.hris.documents.list(), Finch.PermissionDeniedError);
});

test("requestForwarding.forward emulates the provider's API", async () => {
  const { finch, token } = await connect({ provider: "gusto" });
  const company = await finch.requestForwarding.forward({ method: "GET", route: "/v1/companies", params: { include: "locations" }, request_headers: { "X-Gusto-API-Version": "2024-04-01" } });
  assert.equal(company.statusCode, 200);
  assert.equal(typeof company.data, "string", "data is the upstream body as a string");
  assert.equal(JSON.parse(company.data).id, token.company_id);
  assert.deepEqual(company.request, { method: "GET", route: "/v1/companies", params: { include: "locations" }, headers: { "X-Gusto-API-Version": "2024-04-01" }, data: null });
  assert.equal(typeof company.headers, "object");

  const people = await finch.requestForwarding.forward({ method: "GET", route: "/v1/employees" });
  assert.equal(people.statusCode, 200);
  assert.ok(Array.isArray(JSON.parse(people.data)));

  const missing = await finch.requestForwarding.forward({ method: "POST", route: "/v1/payrolls", data: '{"a":1}' });
  assert.equal(missing.statusCode, 404, "an upstream error is a 200 of /forward with the provider's status");
  assert.equal(missing.request.data, '{"a":1}');

  await assert.rejects(finch.requestForwarding.forward({ method: "GET", route: "v1/companies?x=1" }), Finch.BadRequestError);
  await assert.rejects(finch.requestForwarding.forward({ method: "TRACE", route: "/v1/companies" }), Finch.BadRequestError);

  // A Finch Sandbox connection has no provider to forward to.
  const app = track(new Finch({ baseURL: base }));
  const conn = await app.sandbox.connections.create({ provider_id: "gusto" });
  const finchMode = track(new Finch({ baseURL: base, accessToken: conn.access_token, maxRetries: 0 }));
  await assert.rejects(finchMode.requestForwarding.forward({ method: "GET", route: "/v1/companies" }), (err) => {
    assert.equal(err.status, 501);
    assert.equal(err.error.name, "not_implemented");
    return true;
  });
});

test("sandbox.connections.accounts.create adds an account to a connection", async () => {
  const app = track(new Finch({ baseURL: base }));
  const conn = await app.sandbox.connections.create({ provider_id: "rippling", employee_size: 3 });
  const acct = await app.sandbox.connections.accounts.create({ company_id: conn.company_id, provider_id: "rippling", products: ["payment", "pay_statement"], authentication_type: "api_token" });
  for (const k of ["access_token", "account_id", "company_id", "connection_id", "entity_id", "provider_id"]) assert.equal(typeof acct[k], "string", k);
  assert.equal(acct.connection_id, conn.connection_id);
  assert.equal(acct.company_id, conn.company_id);
  assert.notEqual(acct.account_id, conn.account_id);
  assert.notEqual(acct.access_token, conn.access_token);
  assert.equal(acct.authentication_type, "api_token");
  assert.deepEqual(acct.products, ["payment", "pay_statement"]);

  const finch = track(new Finch({ baseURL: base, accessToken: acct.access_token }));
  const today = new Date().toISOString().slice(0, 10);
  assert.ok((await finch.hris.payments.list({ start_date: "2000-01-01", end_date: today })).getPaginatedItems().length > 0, "the new account's products are granted");
  const intro = await finch.account.introspect();
  assert.equal(intro.connection_id, conn.connection_id);
  assert.ok(intro.authentication_methods.some((m) => m.type === "api_token" && m.products.includes("pay_statement")), "introspection lists the new account");

  await assert.rejects(app.sandbox.connections.accounts.create({ company_id: conn.company_id, provider_id: "gusto" }), Finch.NotFoundError);
  await assert.rejects(app.sandbox.connections.accounts.create({ company_id: conn.company_id, provider_id: "rippling", products: ["everything"] }), Finch.BadRequestError);
  await app.sandbox.connections.accounts.create({ company_id: conn.company_id, provider_id: "rippling" });
  await assert.rejects(app.sandbox.connections.accounts.create({ company_id: conn.company_id, provider_id: "rippling" }), Finch.BadRequestError, "three accounts at most");
});
