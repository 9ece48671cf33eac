// Conformance of finchconnect's sandbox with the official Finch TypeScript
// SDK: the SDK, pointed at the sandbox with FINCH_BASE_URL, runs the whole
// flow. Run, with every sandbox-*.test.mjs, by sandbox/sdk_test.go, which starts the sandbox and sets
// FINCH_BASE_URL, FINCH_CLIENT_ID and FINCH_CLIENT_SECRET.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Finch, base, redirectURI, signIn, track } from "./lib.mjs";

test("the Finch SDK runs the whole flow against the sandbox", async () => {
  assert.ok(base, "FINCH_BASE_URL is set");
  const app = track(new Finch({ baseURL: base }));

  const session = await app.connect.sessions.new({
    customer_id: "sdk-customer",
    customer_name: "SDK Customer",
    products: ["company", "directory", "individual", "employment"],
    redirect_uri: redirectURI,
  });
  assert.ok(session.session_id);
  assert.ok(session.connect_url.startsWith(base + "/authorize?session="));

  const code = await signIn(session.connect_url, { username: "authorized_complex" });
  const token = await app.accessTokens.create({ code, redirect_uri: redirectURI });
  assert.ok(token.access_token.length >= 64);
  assert.equal(token.token_type, "bearer");
  assert.ok(token.connection_id);

  const finch = track(new Finch({ baseURL: base, accessToken: token.access_token }));
  const introspection = await finch.account.introspect();
  assert.equal(introspection.connection_id, token.connection_id);
  assert.equal(introspection.connection_status.status, "connected");

  const company = await finch.hris.company.retrieve();
  assert.ok(company.legal_name);

  // Auto-pagination over at least three pages.
  const ids = [];
  let pages = 0;
  for await (const page of (await finch.hris.directory.list({ limit: 100 })).iterPages()) {
    pages++;
    for (const person of page.individuals) ids.push(person.id);
  }
  assert.ok(pages >= 3, `walked ${pages} pages, want at least 3`);
  assert.equal(new Set(ids).size, ids.length, "no one appears twice");
  let walked = 0;
  for await (const person of finch.hris.directory.list({ limit: 100 })) {
    assert.ok(person.id);
    walked++;
  }
  assert.equal(walked, ids.length);

  const individuals = [];
  for await (const r of finch.hris.individuals.retrieveMany({ requests: ids.slice(0, 3).map((id) => ({ individual_id: id })) })) {
    individuals.push(r);
  }
  assert.equal(individuals.length, 3);
  assert.equal(individuals[0].code, 200);
  assert.ok(individuals[0].body.first_name);

  const disconnected = await finch.account.disconnect();
  assert.equal(disconnected.status, "success");
  await assert.rejects(finch.hris.company.retrieve(), Finch.AuthenticationError);
});
