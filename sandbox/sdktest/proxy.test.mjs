// The official Finch TypeScript SDK reads employer data through
// finchconnect's /v1 proxy, configured with a finchconnect API key as its
// access token and the proxy URL as its base URL. Run by
// cmd/finchconnect/proxy_sdk_test.go, which sets FINCHCONNECT_PROXY_URL and
// FINCHCONNECT_API_KEY.
import { test } from "node:test";
import assert from "node:assert/strict";
import Finch from "@tryfinch/finch-api";

const baseURL = process.env.FINCHCONNECT_PROXY_URL;
const apiKey = process.env.FINCHCONNECT_API_KEY;

test("the Finch SDK reads company and directory through the proxy", { skip: !baseURL && "FINCHCONNECT_PROXY_URL is not set" }, async () => {
  const finch = new Finch({ baseURL, accessToken: apiKey });
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
