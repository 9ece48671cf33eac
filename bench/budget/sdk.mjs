// The official Finch SDK's side of the budget load run (bench/budget): the
// same offered load as finchconnect's replicas get, sent straight to a
// sandbox with the SDK's defaults (maxRetries 2, its own backoff and
// Retry-After handling), one client per connection, nothing shared. Reads
// SDK_DIR (sandbox/sdktest, where @tryfinch/finch-api is installed),
// FINCH_BASE_URL, TOKENS (comma-separated), RATE (company reads a second),
// DURATION_MS; prints one JSON line: ok, errors by status, the SDK's
// retries seen by the sandbox are counted there.
import { createRequire } from "node:module";
import { join } from "node:path";

const require = createRequire(join(process.env.SDK_DIR, "package.json"));
const Finch = require("@tryfinch/finch-api").default ?? require("@tryfinch/finch-api");
const base = process.env.FINCH_BASE_URL;
const tokens = process.env.TOKENS.split(",");
const rate = Number(process.env.RATE);
const duration = Number(process.env.DURATION_MS);
const clients = tokens.map((t) => new Finch({ baseURL: base, accessToken: t }));

const out = { ok: 0, errors: {}, latencies: [] };
const start = Date.now();
const pending = [];
let i = 0;
await new Promise((resolve) => {
  const tick = setInterval(() => {
    const due = Math.floor(((Date.now() - start) / 1000) * rate);
    while (i < due) {
      const c = clients[i % clients.length];
      const t0 = Date.now();
      i++;
      pending.push(
        c.hris.company.retrieve().then(
          () => { out.ok++; out.latencies.push(Date.now() - t0); },
          (err) => { const k = String(err?.status ?? err?.name ?? "error"); out.errors[k] = (out.errors[k] ?? 0) + 1; },
        ),
      );
    }
    if (Date.now() - start >= duration) { clearInterval(tick); resolve(); }
  }, 20);
});
await Promise.allSettled(pending);
out.latencies.sort((a, b) => a - b);
const p = (q) => (out.latencies.length ? out.latencies[Math.min(out.latencies.length - 1, Math.floor(q * out.latencies.length))] : 0);
console.log(JSON.stringify({ sent: i, ok: out.ok, errors: out.errors, p50_ms: p(0.5), p99_ms: p(0.99) }));
