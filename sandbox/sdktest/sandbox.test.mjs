// Conformance of finchconnect's sandbox with the official Finch TypeScript
// SDK: the SDK, pointed at the sandbox with FINCH_BASE_URL, runs the whole
// flow. Run by sandbox/sdk_test.go, which starts the sandbox and sets
// FINCH_BASE_URL, FINCH_CLIENT_ID and FINCH_CLIENT_SECRET.
import { test } from "node:test";
import assert from "node:assert/strict";
import Finch from "@tryfinch/finch-api";

const base = process.env.FINCH_BASE_URL;
const redirectURI = "http://localhost:3000/callback";

// hidden returns the action and hidden fields of the page's form.
function hidden(page) {
  const form = page.match(/<form[^>]*action="([^"]*)"[^>]*>([\s\S]*?)<\/form>/i);
  assert.ok(form, "the Connect page has a form");
  const fields = new URLSearchParams();
  for (const input of form[2].matchAll(/<input[^>]*type="hidden"[^>]*>/gi)) {
    const name = input[0].match(/name="([^"]*)"/)[1];
    const value = (input[0].match(/value="([^"]*)"/) || [, ""])[1].replaceAll("&amp;", "&").replaceAll("&#34;", '"').replaceAll("&#39;", "'");
    fields.append(name, value);
  }
  return { action: form[1].replaceAll("&amp;", "&"), fields };
}

// connect goes through the sandbox's Connect page over plain HTTP, as a
// browser without JavaScript would, and returns the code.
async function connect(connectURL, username) {
  const picker = await (await fetch(connectURL + "&state=sdk-state")).text();
  let { action, fields } = hidden(picker);
  fields.set("provider", "gusto");
  const signin = await (await fetch(action, { method: "POST", body: fields })).text();
  ({ action, fields } = hidden(signin));
  fields.set("username", username);
  fields.set("password", "letmein");
  const done = await fetch(action, { method: "POST", body: fields, redirect: "manual" });
  assert.equal(done.status, 302, "sign-in redirects back to the app");
  const location = new URL(done.headers.get("location"));
  assert.equal(location.searchParams.get("state"), "sdk-state");
  return location.searchParams.get("code");
}

test("the Finch SDK runs the whole flow against the sandbox", async () => {
  assert.ok(base, "FINCH_BASE_URL is set");
  const app = new Finch({ baseURL: base });

  const session = await app.connect.sessions.new({
    customer_id: "sdk-customer",
    customer_name: "SDK Customer",
    products: ["company", "directory", "individual", "employment"],
    redirect_uri: redirectURI,
  });
  assert.ok(session.session_id);
  assert.ok(session.connect_url.startsWith(base + "/authorize?session="));

  const code = await connect(session.connect_url, "authorized_complex");
  const token = await app.accessTokens.create({ code, redirect_uri: redirectURI });
  assert.ok(token.access_token.length >= 64);
  assert.equal(token.token_type, "bearer");
  assert.ok(token.connection_id);

  const finch = new Finch({ baseURL: base, accessToken: token.access_token });
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
