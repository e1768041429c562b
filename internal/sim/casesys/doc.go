// Package casesyssim is an in-process municipal case system implementing
// Samhub's case-system contract (schemas/casesys/openapi.yaml) for tests
// and `make run` demos: OAuth2 client credentials with short-lived tokens,
// cases found by CPR, replacement id or referral thread in the request
// body, case updates by merge patch under If-Match, multipart documents,
// journal notes, the council's outbox with a status per recipient,
// Idempotency-Key replay, RFC 9457 problems, 413/415 limits and 409
// case-closed.
//
// Like the real case systems (interfaces.md §1.4) it stores a second object
// with an externalId already used, unless Config.UniqueExternalIDs turns
// the natural-key guard on; Config.IgnoreIdempotencyKeys also drops the
// Idempotency-Key layer, as SBSYS, WorkZone and Nexus have none. Every
// write is counted per Idempotency-Key and per externalId (Counts), so a
// test sees a letter delivered twice.
//
// State is kept in Config.DataDir (state.json, rewritten atomically on each
// commit, and content-addressed files/) so a new Server on the same
// directory continues where the old one stopped. Access tokens, the
// request log and the request counts are held in memory only: after a
// restart clients get 401 and must fetch a new token.
//
// # Admin API under /_sim/ (simulator only, no authentication)
//
//	GET    /_sim/cases                            all cases            {"results":[Case…]}
//	GET    /_sim/documents                        all documents        {"results":[Document…]}
//	GET    /_sim/journal-notes                    all journal notes    {"results":[JournalNote…]}
//	GET    /_sim/outbox                           every outbox document, any status, with
//	                                              recipientStatus      {"results":[OutboxItem…]}
//	GET    /_sim/outbox/{docId}                   one outbox document  OutboxItem
//	GET    /_sim/requests                         contract requests answered (method, uri, route,
//	                                              status, idempotencyKey, externalId)
//	GET    /_sim/counts                           Counts: write requests per idempotency key and
//	                                              per externalId, objects per externalId, duplicates
//	GET    /_sim/mode                             Mode {"ignoreIdempotencyKeys":…,"uniqueExternalIds":…}
//	PUT    /_sim/mode                             set Mode → 204
//	GET    /_sim/documents/{docId}/files/{index}  raw bytes of a stored file
//	POST   /_sim/cases                            seed a case: Case JSON (consent, contactPerson, referral, status…) → 201 Case
//	POST   /_sim/cases/{caseId}/outbox            seed a ready outbox document: SeedDocument JSON → 201 Document
//	POST   /_sim/cases/{caseId}/close             close a case → 204
//	POST   /_sim/faults                           {"fail":{"route":"POST /cases","count":2,"status":503,"retryAfterSeconds":3},
//	                                               "drop":{"route":"POST /cases/{caseId}/documents","count":1},
//	                                               "delayMs":500,"delayRoute":"GET /outbox","rejectTokens":true}
//	                                              (every member optional; no delayRoute: every route) → 204
//	DELETE /_sim/faults                           turn all faults off → 204
//
// Routes in faults are the mux patterns of the contract, as written in
// openapi.yaml ("" or absent: every contract route except the token
// endpoint and /healthz). The same switches exist as Go methods: FailNext,
// InjectFailure, DropResponses, SetDelay, SetRouteDelay, RejectTokens,
// ResetFaults, SetMode, BeforeNext; and the helpers SeedCase,
// SeedOutboxDocument, EditCase, CloseCase, Cases, Documents, JournalNotes, Outbox, OutboxItem, FileData,
// Requests, Counts, Duplicates.
package casesyssim
