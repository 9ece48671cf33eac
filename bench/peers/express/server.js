// The seed's Express example (shared/seed), made runnable the way a user
// following Finch's docs would fix it: a JSON body for /auth/token, a real
// Redis client, one plaintext key per connection, and the company route.
const express = require("express");
const { createClient } = require("redis");

const app = express();
const port = Number(process.env.PORT || 3000);
const finch = process.env.FINCH_BASE_URL || "https://api.tryfinch.com";
const redis = createClient({ url: process.env.REDIS_URL || "redis://127.0.0.1:6379/9" });

app.get("/callback", async (req, res) => {
  const code = req.query.code;
  const authRes = await fetch(`${finch}/auth/token`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ client_id: "id", client_secret: "secret", code }),
  });
  const data = await authRes.json();
  // Store the newly set up connection's access_token, one key per connection.
  await redis.set(`finch:connection:${data.connection_id}`, data.access_token);
  return res.redirect("/company?connection_id=" + encodeURIComponent(data.connection_id));
});

app.get("/company", async (req, res) => {
  const token = await redis.get(`finch:connection:${req.query.connection_id}`);
  const r = await fetch(`${finch}/employer/company`, { headers: { Authorization: `Bearer ${token}` } });
  res.json(await r.json());
});

redis.connect().then(() => {
  const server = app.listen(port, "127.0.0.1", () => console.log(`listening on http://127.0.0.1:${server.address().port}`));
});
