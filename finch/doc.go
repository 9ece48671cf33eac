// Package finch is a client for the Finch employment API
// (https://developer.tryfinch.com). It holds no state beyond its settings
// and stores nothing. It has typed methods for every route of the API:
//
//   - Connect and tokens: code exchange, Connect sessions (new and
//     re-authentication), introspection, disconnects.
//   - Organization: company, directory (with an iterator), individuals,
//     employments.
//   - Payroll: payments, pay statements, pay groups ([Client.PayGroups],
//     [Client.PayGroup]), pay statement items and their rules
//     ([Client.PayStatementItems], [Client.CreateRule], [Client.Rules],
//     [Client.UpdateRule], [Client.DeleteRule]).
//   - Deductions: [Client.Benefits], [Client.Benefit],
//     [Client.SupportedBenefits], [Client.CreateBenefit],
//     [Client.RegisterBenefit], [Client.UpdateBenefit],
//     [Client.EnrollIndividuals], [Client.UnenrollIndividuals],
//     [Client.EnrolledIndividuals], [Client.IndividualBenefits], and the
//     jobs they start ([Client.ManualJob]).
//   - Documents: [Client.DocumentsPage], [Client.Documents] (an iterator)
//     and [Client.Document], which decodes both W-4 shapes (2020 and 2005).
//   - Jobs: [Client.CreateAutomatedJob], [Client.AutomatedJobs],
//     [Client.AllAutomatedJobs] (an iterator), [Client.AutomatedJob].
//   - Request forwarding: [Client.Forward].
//   - Providers.
//   - Finch's sandbox API: [Client.SandboxCreateConnection],
//     [Client.SandboxCreateAccount], [Client.SandboxUpdateAccount],
//     [Client.SandboxUpdateCompany], [Client.SandboxAddDirectory],
//     [Client.SandboxUpdateIndividual], [Client.SandboxUpdateEmployment],
//     [Client.SandboxCreatePayment], [Client.SandboxCreateJob],
//     [Client.SandboxJobConfigurations], [Client.SandboxSetJobConfiguration].
//
// [Client.Do] passes any other call through raw, for a proxy. [Products]
// lists every product name Finch accepts, the deprecated "deduction"
// included.
//
// A [Client] is a plain struct whose zero-valued fields mean "default";
// set ClientID and ClientSecret, and BaseURL to talk to a sandbox.
//
// # Errors
//
// Any non-2xx answer from Finch is an *[APIError] carrying Finch's error
// name, finch_code, message and request id. It matches the root package's
// sentinels with [errors.Is]: finchconnect.ErrInvalidCode,
// ErrInvalidClient, ErrReauthRequired, ErrUnauthorized,
// ErrInsufficientScope and ErrRateLimited (see [APIError.Is]). A 202
// (Finch still fetching the data) is an *APIError too for the typed
// methods, so that an empty value is never mistaken for data.
//
// Errors never contain an access token, a code or the client secret: the
// client builds its own messages without them, and replaces any of them
// that a server echoes into an error body (and [Client.Do] any echo of the
// token in a response). Social security numbers are [finchconnect.Secret]s.
//
// # Timeouts
//
// Every attempt is bounded by [Client.Timeout] (default 60 s, as in Finch's
// SDKs) covering connect, send, wait and body; ctx bounds the whole call,
// retries included. Response bodies are capped by [Client.MaxBodyBytes]
// (default 32 MiB); a larger one fails with [ErrResponseTooLarge] rather
// than being cut.
//
// # Retries
//
// Reads (GET, and the batch POSTs that only read: /employer/individual,
// /employer/employment, /employer/pay-statement) are retried up to
// [Client.MaxRetries] times (default 2) on connection errors and
// timeouts, 408, 409, 429 and 5xx, as Finch's SDKs do. The wait is
// retry-after-ms or Retry-After (seconds or an HTTP-date) when Finch sends
// one, else 0.5 s doubling to 8 s with up to 25 % jitter; a Retry-After
// above 60 s is not waited out (the error is returned with
// APIError.RetryAfter set). A response header x-should-retry: true or false
// overrides the status rule. No wait runs past ctx's deadline: the last
// error is returned instead.
//
// Writes are not idempotent at Finch, so they are retried far less:
//
//   - POST /auth/token ([Client.ExchangeCode]) is never retried and never
//     sent twice. A code is single use; a second send after a lost answer
//     can only fail, or at a server that revokes on reuse destroy the
//     token the first send minted. A transport error after sending means
//     the code's fate is unknown, and the caller must start a new Connect.
//   - Every other write (Connect sessions, disconnects, deduction writes
//     and enrollments, pay statement item rules, automated jobs,
//     /forward, the sandbox API) is retried only when Finch certainly did
//     not act: the connection could not be established (dial error), or
//     Finch answered 429 (or x-should-retry: true). A timeout or 5xx is
//     returned as is, so a session, a deduction or a job is never
//     duplicated silently. Finch offers no idempotency key, and even an
//     idempotent PUT is treated so: it might overwrite a change made in
//     between.
package finch
