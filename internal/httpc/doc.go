// Package httpc is the job's one HTTP client and its one redaction. It sits
// at the module root so that every package may use it: the ksqlDB
// (backfill/ksqldb) and Schema Registry (backfill/schemaregistry) adapters
// call their servers through Client.Do, and config and backfill/kafka
// redact with it too. Each rule is written once:
//
//   - One loop (Client.Do): attempts, each bounded by the client's timeout
//     with its answer read, the pauses between them, and the failure Do
//     gives up on (Error: the HTTP status, the attempts made, whether it
//     was retryable, its text without the secrets). The adapters turn that
//     into the job's error kinds, in words that name their own settings.
//     Do works for a client library that makes the requests itself
//     (srclient): the *http.Client each attempt gets ties them to the
//     attempt.
//   - TLS (Config, Transport): TLS 1.2 or later; a CA file adds its
//     certificates to the system's roots, so a private CA works beside
//     public ones.
//   - What is retried (RetryableStatus, RetryableError): an answer 429 or
//     5xx, except 501 and 505 which say the server cannot serve the request
//     at all, and a transport failure (no answer, or an answer cut short).
//     Never a TLS certificate failure (Untrusted): no retry makes a
//     certificate trusted. Never another 4xx: the request itself is wrong.
//   - When (Policy): Policy.Retries retries after the first attempt, 0
//     meaning none. The pause before retry n (n = 1, 2, …) is Base×2^(n-1),
//     at most Cap (defaults 200ms and 5s), drawn uniformly from its upper
//     half [d/2, d] so that clients failing together do not retry together,
//     and never shorter than the server's Retry-After (seconds or an HTTP
//     date), which is honoured up to MaxRetryAfter (1 minute).
//   - How a certificate failure is explained (ExplainUntrusted): which
//     setting to change, named with the client's settings prefix.
//   - Redaction (Redact, RedactURL): a password never appears in an error
//     or a log line, neither as given nor percent-encoded as in a URL nor
//     escaped as in a JSON body; a URL is shown without its userinfo's
//     password, also when it does not parse.
//
// A client may decide retrying for the error answers of its own protocol,
// by failing with an error that is a Retryer (ksqlDB reports its pull-query
// rate limit as 400 / 40000 before 0.28.2, and a missing ACL as 500), but
// decides nothing else about retrying or backing off.
package httpc
