// Shared helpers of the SDK conformance tests (sandbox-*.test.mjs): a
// connection made through the sandbox's Connect page as a browser without
// JavaScript would, and a record of which SDK methods the tests called, so
// that sandbox/sdk_test.go can check that every HTTP method of the SDK was
// exercised.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import Finch from "@tryfinch/finch-api";

export { Finch };
export const base = process.env.FINCH_BASE_URL;
export const redirectURI = "http://localhost:3000/callback";

// hidden returns the action and hidden fields of the page's form.
export function hidden(page) {
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

// signIn walks the Connect page from connectURL (picker, sign-in) and
// returns the authorization code.
export async function signIn(connectURL, { username = "authorized_simple", provider = "gusto", state = "sdk-state" } = {}) {
  const picker = await (await fetch(connectURL + "&state=" + encodeURIComponent(state))).text();
  let { action, fields } = hidden(picker);
  if (!fields.has("provider") || !fields.get("provider")) fields.set("provider", provider);
  const signin = await (await fetch(action, { method: "POST", body: fields })).text();
  ({ action, fields } = hidden(signin));
  fields.set("username", username);
  fields.set("password", "letmein");
  const done = await fetch(action, { method: "POST", body: fields, redirect: "manual" });
  assert.equal(done.status, 302, "sign-in redirects back to the app");
  const location = new URL(done.headers.get("location"));
  assert.equal(location.searchParams.get("state"), state);
  return location.searchParams.get("code");
}

// connect makes a connection with the SDK (a Connect session, the Connect
// page, the code exchange) and returns the exchange's answer and an SDK
// client holding its token. Both clients are tracked.
export async function connect({ products = ["company", "directory", "individual", "employment"], username = "authorized_simple", provider = "gusto", customer = "sdk-customer" } = {}) {
  const app = track(new Finch({ baseURL: base }));
  const session = await app.connect.sessions.new({ customer_id: customer, customer_name: "SDK Customer", products, redirect_uri: redirectURI });
  const code = await signIn(session.connect_url, { username, provider });
  const token = await app.accessTokens.create({ code, redirect_uri: redirectURI });
  const finch = track(new Finch({ baseURL: base, accessToken: token.access_token }));
  return { app, token, finch };
}

// called is every SDK method the tests called, as "hris.benefits.create".
const called = new Set();

// track returns client wrapped so that each call of one of its resources'
// methods is recorded in called.
export function track(client) {
  const wrap = (obj, path) =>
    new Proxy(obj, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver);
        if (typeof prop !== "string" || prop.startsWith("_")) return v;
        if (typeof v === "function" && path !== "") {
          return function (...args) {
            called.add(path + prop);
            return v.apply(target, args);
          };
        }
        if (v && typeof v === "object" && "_client" in v) return wrap(v, path + prop + ".");
        return v;
      },
    });
  return wrap(client, "");
}

// httpRoutes maps each SDK resource method that sends an HTTP request (48
// in @tryfinch/finch-api 10.7.0), as "hris.benefits.create", to the path it
// requests, as written in the SDK ("/employer/benefits/${benefitID}"),
// found by walking a client's resources and reading their methods' code.
export function httpRoutes() {
  return Object.fromEntries(Object.entries(httpRequests()).map(([m, r]) => [m, r.path]));
}

// httpRequests is httpRoutes with each method's HTTP verb, as
// { verb: "GET", path: "/employer/benefits/${benefitID}" } (getAPIList is
// a GET unless its options say method: 'post').
export function httpRequests() {
  const c = new Finch({ accessToken: "x", clientId: "a", clientSecret: "b" });
  const out = {};
  const walk = (obj, path, seen) => {
    if (seen.has(obj)) return;
    seen.add(obj);
    for (const k of Object.keys(obj)) {
      const v = obj[k];
      if (k.startsWith("_") || !v || typeof v !== "object" || !("_client" in v)) continue;
      const proto = Object.getPrototypeOf(v);
      for (const m of Object.getOwnPropertyNames(proto)) {
        const route = String(proto[m]).match(/this\._client\.(\w+)\(\s*(?:\(0, [\w.]+\)\s*)?(?:path\s*)?[`'"]([^`'"]+)/);
        if (m === "constructor" || !route) continue;
        // getAPIList is a GET unless its options name another method.
        const listVerb = (String(proto[m]).match(/\bmethod:\s*['"](\w+)['"]/) || [, "get"])[1];
        out[path + k + "." + m] = { verb: (route[1] === "getAPIList" ? listVerb : route[1]).toUpperCase(), path: route[2] };
      }
      walk(v, path + k + ".", seen);
    }
  };
  walk(c, "", new Set());
  return out;
}

// httpMethods lists the methods of httpRoutes, sorted.
export function httpMethods() {
  return Object.keys(httpRoutes()).sort();
}

// webhookEventTypes lists, sorted, every event_type of the SDK's webhook
// event types, read from its resources/webhooks.d.ts (the types are all
// the SDK has of them: nothing at run time lists them).
export function webhookEventTypes() {
  const main = createRequire(import.meta.url).resolve("@tryfinch/finch-api"); // …/finch-api/index.js
  const dts = join(dirname(main), "resources", "webhooks.d.ts");
  const types = new Set();
  for (const decl of readFileSync(dts, "utf8").matchAll(/event_type\??:([^;]+);/g)) {
    for (const lit of decl[1].matchAll(/'([^']+)'/g)) types.add(lit[1]);
  }
  return [...types].sort();
}

// calledMethods returns the SDK methods called so far in this process.
export function calledMethods() {
  return new Set(called);
}

// At exit, each test file's process writes the methods it called to
// SDK_COVERAGE_DIR, which sandbox/sdk_test.go reads.
process.on("exit", () => {
  const dir = process.env.SDK_COVERAGE_DIR;
  if (dir) writeFileSync(join(dir, `called-${process.pid}.json`), JSON.stringify([...called].sort()));
});
