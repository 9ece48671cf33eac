// The seed's Express example (shared/seed), made runnable the way a user
// following Finch's docs would fix it: a JSON body for /auth/token, a real
// Redis client, one plaintext key per connection (finch:connection:<id>),
// res.redirect("/company") as in the seed, and the company route that the
// redirect leads to. Like the seed, it checks no state and does nothing about
// duplicate callbacks. FINCH_BASE_URL and REDIS_URL come from the
// environment; PORT=0 picks a free port, printed as "listening on URL".
const express = require("express");
const { createClient } = require("redis");

const port = Number(process.env.PORT || 3000);
const finch = process.env.FINCH_BASE_URL || "https://api.tryfinch.com";
const clientId = process.env.FINCH_CLIENT_ID || "<your-client-id>";
const clientSecret = process.env.FINCH_CLIENT_SECRET || "<your-client-secret>";
const redis = createClient({ url: process.env.REDIS_URL || "redis://127.0.0.1:6379" });
const app = express();

app.get("/callback", async (req, res) => {
  try {
    const code = req.query.code;
    const authRes = await fetch(`${finch}/auth/token`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ client_id: clientId, client_secret: clientSecret, code }),
    });
    if (!authRes.ok) return res.status(502).send("token exchange failed");
    const data = await authRes.json();
    // Store the newly set up connection's access_token, one key per connection.
    await redis.set(`finch:connection:${data.connection_id}`, data.access_token);
    return res.redirect("/company");
  } catch (err) {
    return res.status(500).send("callback failed");
  }
});

// The seed redirects to /company without saying which connection; with one
// key per connection the route needs its id.
app.get("/company", async (req, res) => {
  try {
    const token = await redis.get(`finch:connection:${req.query.connection_id}`);
    if (!token) return res.status(404).send("unknown connection");
    const r = await fetch(`${finch}/employer/company`, { headers: { Authorization: `Bearer ${token}` } });
    if (!r.ok) return res.status(502).send("company request failed");
    return res.json(await r.json());
  } catch (err) {
    return res.status(500).send("company failed");
  }
});

redis.connect().then(() => {
  const server = app.listen(port, "127.0.0.1", () => console.log(`listening on http://127.0.0.1:${server.address().port}`));
});
