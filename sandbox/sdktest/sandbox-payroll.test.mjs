// SDK conformance of the sandbox's payroll area: pay groups, payments and
// pay statements consistent with them and with employments, and the
// sandbox data API (individual, employment, payment). Run by
// sandbox/sdk_test.go with every sandbox-*.test.mjs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Finch, connect } from "./lib.mjs";

const products = ["company", "directory", "individual", "employment", "payment", "pay_statement", "ssn"];
const frequencies = ["annually", "bi_weekly", "daily", "monthly", "other", "quarterly", "semi_annually", "semi_monthly", "weekly"];
const day = (d) => d.toISOString().slice(0, 10);

async function all(page) {
  const out = [];
  for await (const x of page) out.push(x);
  return out;
}

test("pay groups, payments, pay statements and employments agree", async () => {
  const { finch } = await connect({ products, username: "authorized_complex" });
  const groups = await all(finch.payroll.payGroups.list());
  assert.equal(groups.length, 12, "four pay groups for each of three entities");
  for (const g of groups) {
    assert.deepEqual(Object.keys(g).sort(), ["id", "name", "pay_frequencies"]);
    assert.match(g.id, /^[0-9a-f-]{36}$/);
    assert.equal(typeof g.name, "string");
    assert.ok(g.pay_frequencies.length === 1 && frequencies.includes(g.pay_frequencies[0]));
  }
  const weekly = await all(finch.payroll.payGroups.list({ pay_frequencies: ["weekly"] }));
  assert.equal(weekly.length, 3);
  assert.ok(weekly.every((g) => g.pay_frequencies[0] === "weekly"));

  const members = new Map(); // individual id → pay group
  for (const g of groups) {
    const one = await finch.payroll.payGroups.retrieve(g.id);
    assert.equal(one.id, g.id);
    assert.equal(one.name, g.name);
    assert.deepEqual(one.pay_frequencies, g.pay_frequencies);
    assert.ok(Array.isArray(one.individual_ids));
    for (const id of one.individual_ids) {
      assert.ok(!members.has(id), `${id} is in one pay group only`);
      members.set(id, one);
    }
  }
  await assert.rejects(finch.payroll.payGroups.retrieve("00000000-0000-4000-8000-000000000000"), Finch.NotFoundError);
  await assert.rejects(finch.payroll.payGroups.list({ pay_frequencies: ["fortnightly"] }), Finch.BadRequestError);
  const [someone] = members.keys();
  const own = await all(finch.payroll.payGroups.list({ individual_id: someone }));
  assert.deepEqual(own.map((g) => g.id), [members.get(someone).id]);

  // Employments of the members match their group (salaried full-timers
  // semi-monthly, and so on).
  const kind = { semi_monthly: "full_time", bi_weekly: "part_time", weekly: "intern", monthly: "individual_contractor" };
  const ids = [...members.keys()];
  const employments = await all(finch.hris.employments.retrieveMany({ requests: ids.map((individual_id) => ({ individual_id })) }));
  assert.equal(employments.length, ids.length);
  for (const r of employments) {
    assert.equal(r.code, 200);
    assert.equal(r.body.is_active, true);
    assert.equal(r.body.employment.subtype, kind[members.get(r.individual_id).pay_frequencies[0]]);
  }

  // Two full previous years of payroll plus this year's.
  const now = new Date();
  const start = `${now.getUTCFullYear() - 2}-01-01`;
  const payments = await all(finch.hris.payments.list({ start_date: `${now.getUTCFullYear() - 3}-01-01`, end_date: day(now) }));
  assert.ok(payments.length > 100, `${payments.length} payments over three years`);
  assert.ok(payments.every((p) => p.pay_date >= start && p.pay_date <= day(now)), "payments run from January 1 two years back to today");
  assert.ok(payments.some((p) => p.pay_date < `${now.getUTCFullYear() - 1}-01-01`), "payments two years back");
  const groupIDs = new Set(groups.map((g) => g.id));
  for (const p of payments) {
    assert.equal(p.pay_group_ids.length, 1);
    assert.ok(groupIDs.has(p.pay_group_ids[0]), "a payment's pay group is listed");
    assert.deepEqual(p.pay_frequencies, groups.find((g) => g.id === p.pay_group_ids[0]).pay_frequencies);
    assert.equal(p.gross_pay.currency, "usd");
    assert.ok(p.pay_period.start_date <= p.pay_period.end_date);
  }

  // The statements of the latest payments are those of their individual_ids.
  const latest = payments.slice(-3);
  const statements = await all(finch.hris.payStatements.retrieveMany({ requests: latest.map((p) => ({ payment_id: p.id, limit: 5000 })) }));
  assert.equal(statements.length, latest.length);
  for (const r of statements) {
    const p = latest.find((x) => x.id === r.payment_id);
    assert.equal(r.code, 200);
    assert.deepEqual(r.body.pay_statements.map((s) => s.individual_id), p.individual_ids);
    assert.equal(r.body.pay_statements.reduce((sum, s) => sum + s.gross_pay.amount, 0), p.gross_pay.amount);
  }
});

test("the sandbox API updates individuals and employments, and creates payments", async () => {
  const { finch } = await connect({ products });
  const people = await all(finch.hris.directory.list());
  const id = people.find((p) => p.is_active).id;

  const ind = await finch.sandbox.individual.update(id, { preferred_name: "Sandy", ssn: "123-45-6789", marital_status: "married" });
  assert.equal(ind.id, id);
  assert.equal(ind.preferred_name, "Sandy");
  assert.equal(ind.ssn, "123-45-6789");
  const [read] = await all(finch.hris.individuals.retrieveMany({ requests: [{ individual_id: id }], options: { include: ["ssn"] } }));
  assert.equal(read.body.preferred_name, "Sandy");
  assert.equal(read.body.marital_status, "married");
  assert.equal(read.body.ssn, "123-45-6789");
  await assert.rejects(finch.sandbox.individual.update(id, { ssn: "666-12-3456" }), Finch.BadRequestError);
  await assert.rejects(finch.sandbox.individual.update("no-such-individual", { first_name: "X" }), Finch.NotFoundError);

  const emp = await finch.sandbox.employment.update(id, {
    title: "Principal", income: { amount: 25000000, currency: "usd", unit: "yearly", effective_date: day(new Date()) },
  });
  assert.equal(emp.id, id);
  assert.equal(emp.title, "Principal");
  assert.equal(emp.income.amount, 25000000);
  assert.equal(emp.income_history[0].amount, 25000000);
  await assert.rejects(finch.sandbox.employment.update(id, { employment_status: "vanished" }), Finch.BadRequestError);
  const [employment] = await all(finch.hris.employments.retrieveMany({ requests: [{ individual_id: id }] }));
  assert.equal(employment.body.title, "Principal");
  assert.equal(employment.body.income.amount, 25000000);

  const created = await finch.sandbox.payment.create({
    start_date: day(new Date(Date.now() - 13 * 864e5)),
    end_date: day(new Date()),
    pay_statements: [{
      individual_id: id, type: "one_time_payment", payment_method: "direct_deposit",
      earnings: [{ amount: 100000, name: "Spot bonus", type: "bonus" }],
      taxes: [{ amount: 22000, employer: false, name: "Federal", type: "federal" }],
    }],
  });
  assert.deepEqual(Object.keys(created).sort(), ["pay_date", "payment_id"]);
  assert.equal(created.pay_date, day(new Date()));
  const payments = await all(finch.hris.payments.list({ start_date: created.pay_date, end_date: created.pay_date }));
  const p = payments.find((x) => x.id === created.payment_id);
  assert.ok(p, "the new payment is listed");
  assert.deepEqual(p.individual_ids, [id]);
  assert.equal(p.gross_pay.amount, 100000);
  assert.equal(p.net_pay.amount, 78000);
  assert.equal(p.employee_taxes.amount, 22000);
  assert.equal(p.pay_group_ids.length, 1);
  const group = await finch.payroll.payGroups.retrieve(p.pay_group_ids[0]);
  assert.ok(group.individual_ids.includes(id));
  const [stmts] = await all(finch.hris.payStatements.retrieveMany({ requests: [{ payment_id: created.payment_id }] }));
  assert.equal(stmts.code, 200);
  assert.equal(stmts.body.pay_statements[0].type, "one_time_payment");
  assert.equal(stmts.body.pay_statements[0].net_pay.amount, 78000);
  await assert.rejects(finch.sandbox.payment.create({ pay_statements: [{ individual_id: "nobody" }] }), Finch.BadRequestError);
});
