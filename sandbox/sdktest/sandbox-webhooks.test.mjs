// Webhooks of finchconnect's sandbox, checked with the official SDK: a
// small HTTP receiver takes the sandbox's deliveries, and the SDK's
// client.webhooks.unwrap (verifySignature) must accept every one of them,
// for each event type the SDK knows (resources/webhooks.ts) and "test".
// The receiver is set at run time with PUT /_sandbox/webhooks, and taken
// away at the end; deliveries for other test files' connections, which
// share the sandbox, are ignored. Run by sandbox/sdk_test.go.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { randomBytes } from "node:crypto";
import { Finch, base, connect, track, webhookEventTypes } from "./lib.mjs";

// Every event type the SDK knows, read from its typings: a type added by
// a new SDK version fails this test until the sandbox sends it.
const sdkEventTypes = webhookEventTypes();

async function admin(method, path, body) {
  const res = await fetch(base + path, { method, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

// receive starts a webhook receiver; deliveries are collected in got.
async function receive() {
  const got = [];
  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      got.push({ headers: req.headers, body });
      res.writeHead(200).end();
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { got, server, url: `http://127.0.0.1:${server.address().port}/webhooks/finch` };
}

async function waitFor(what, cond) {
  const deadline = Date.now() + 15000;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("every webhook event type arrives signed, and the SDK's unwrap verifies it", async () => {
  const secret = randomBytes(32).toString("base64");
  const { got, server, url } = await receive();
  try {
    const put = await admin("PUT", "/_sandbox/webhooks", { url, secret });
    assert.equal(put.status, 200);
    assert.equal(sdkEventTypes.length, 26, "the 26 event types of @tryfinch/finch-api 10.7.0");
    assert.deepEqual([...put.body.event_types].sort(), [...sdkEventTypes, "test"].sort());

    const { token, finch } = await connect({ customer: "sdk-webhooks" });
    const conn = token.connection_id;
    for (const event_type of [...sdkEventTypes, "test"]) {
      const r = await admin("POST", "/_sandbox/webhooks/test", { connection_id: conn, event_type });
      assert.equal(r.status, 202, `trigger ${event_type}`);
    }
    // And a real status change, made with the SDK's sandbox API.
    await finch.sandbox.connections.accounts.update({ connection_status: "reauth" });

    const mine = () => got.filter((h) => JSON.parse(h.body).connection_id === conn);
    // Each triggered type, the reauth, and the new connection's own
    // first-sync event (job.initial_data_sync_org.succeeded).
    const parsed = () => mine().map((h) => JSON.parse(h.body));
    await waitFor("every type and the reauth", () => {
      const evs = parsed();
      const types = new Set(evs.map((e) => e.event_type));
      return [...sdkEventTypes, "test"].every((t) => types.has(t)) && evs.some((e) => e.event_type === "account.updated" && e.data.status === "reauth");
    });
    const initial = parsed().filter((e) => e.event_type === "job.initial_data_sync_org.succeeded");
    assert.ok(initial.length >= 2, "the connection's own first sync, and the triggered one");

    const receiver = track(new Finch({ baseURL: base, accessToken: "unused", webhookSecret: secret }));
    const byType = new Map();
    for (const h of mine()) {
      const ev = receiver.webhooks.unwrap(h.body, h.headers); // throws unless the signature is right
      assert.match(h.headers["finch-event-id"], /^msg_/);
      assert.equal(ev.connection_id, conn);
      assert.equal(ev.company_id, token.company_id);
      assert.equal(ev.account_id, token.account_id);
      assert.ok("entity_id" in ev);
      byType.set(ev.event_type, [...(byType.get(ev.event_type) || []), ev]);
    }
    assert.deepEqual([...byType.keys()].sort(), [...sdkEventTypes, "test"].sort());

    for (const [type, events] of byType) {
      const d = events[0].data;
      const kind = type.split(".")[0];
      switch (kind) {
        case "account":
          assert.deepEqual(events.map((e) => e.data.status).sort(), ["connected", "reauth"]);
          for (const e of events) assert.equal(e.data.authentication_method.type, "credential");
          break;
        case "company":
          assert.equal(d, null);
          break;
        case "directory":
        case "employment":
        case "individual":
          assert.equal(typeof d.individual_id, "string");
          break;
        case "payment":
          assert.equal(typeof d.payment_id, "string");
          assert.match(d.pay_date, /^\d{4}-\d{2}-\d{2}$/);
          break;
        case "pay_statement":
          assert.equal(typeof d.payment_id, "string");
          assert.equal(typeof d.individual_id, "string");
          break;
        case "job":
          assert.equal(typeof d.job_id, "string");
          assert.ok(d.job_url.endsWith("/" + d.job_id), d.job_url);
          assert.ok(d.job_url.startsWith(base + (type.startsWith("job.benefit_") ? "/jobs/manual/" : "/jobs/automated/")), d.job_url);
          break;
        case "test":
          assert.equal(typeof d, "object");
          break;
        default:
          assert.fail(`unexpected event type ${type}`);
      }
    }

    // The SDK refuses what the sandbox did not sign.
    const h = mine()[0];
    assert.throws(() => receiver.webhooks.unwrap(h.body.replace('"data"', ' "data"'), h.headers), /signature/);
    const other = randomBytes(32).toString("base64");
    assert.throws(() => receiver.webhooks.unwrap(h.body, h.headers, other), /signature/);
  } finally {
    await admin("PUT", "/_sandbox/webhooks", { url: "" });
    server.close();
  }
});
