// The sandbox's rate limits as the official SDK sees them: run by
// sandbox/ratelimit_sdk_test.go against a sandbox with Finch's numbers
// (the shared sandbox of sandbox-*.test.mjs has them off, since every file
// uses one client id). The 21st directory read in a minute, from two
// tokens of the client id, is the SDK's RateLimitError, with Finch's body
// and a Retry-After; the company product is unaffected.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Finch, base, connect, track } from "./lib.mjs";

test("the 21st directory read in a minute is the SDK's RateLimitError", async () => {
  const a = await connect({ products: ["company", "directory"], customer: "sdk-rl-a" });
  const b = await connect({ products: ["company", "directory"], customer: "sdk-rl-b" });
  // No retries: the SDK would wait out the Retry-After.
  const clients = [a, b].map(({ token }) => track(new Finch({ baseURL: base, accessToken: token.access_token, maxRetries: 0 })));
  for (let i = 0; i < 20; i++) {
    const page = await clients[i % 2].hris.directory.list({ limit: 1 });
    assert.equal(page.individuals.length, 1);
  }
  await assert.rejects(clients[1].hris.directory.list({ limit: 1 }), (err) => {
    assert.ok(err instanceof Finch.RateLimitError, `got ${err}`);
    assert.equal(err.status, 429);
    assert.equal(err.error.name, "rate_limit_exceeded_error");
    assert.equal(err.error.finch_code, "finch_application_rl");
    assert.equal(err.error.code, 429);
    assert.equal(err.headers.get("retry-after"), "60");
    return true;
  });
  const company = await clients[0].hris.company.retrieve();
  assert.ok(company.legal_name);
});
