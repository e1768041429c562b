// Package digitalpost sends the council's letters to the parents by
// Digital Post (registered adapter type "digitalpost"): one MeMo message
// to each custody holder the pipeline addressed (l.To, role parents, by
// CPR), through KOMBIT's Serviceplatformen service SF1601
// "KombiPostAfsend" (shared/domain/interfaces.md §3.1a). Email carries
// letters to professionals only (internal/config refuses an smtp
// destination in the parents sector).
//
// Protocol: POST <url>/service/KombiPostAfsend_1/kombi, Content-Type
// application/xml, with X-TransaktionsId (a new UUID per call) and
// X-TransaktionsTid, and a token for the service entity id (scope). The
// body is a kombi_request: KombiValgKode ("Digital Post", or "Automatisk
// Valg" with choice: automatic) and a MeMo 1.1 Message, every element
// prefixed memo (Serviceplatformen does not read a default namespace):
// messageType DIGITALPOST, the messageUUID, the configured neutral label
// (never the letter's subject: no child's name, CPR or diagnosis reaches
// an inbox list or a notification), mandatory and legalNotification,
// Sender (CVR and name), Recipient (the custody holder's CPR) and the
// body: the first PDF the letter carries as the main document, else the
// letter's text as a UTF-8 text file; further files (PDF, text, JPEG, PNG)
// as additional documents. With choice automatic and a PDF, a fjernprint
// ForsendelseI with the same PDF and the recipient's CPR lets the service
// print the letter for a citizen exempt from Digital Post.
//
// What was simplified: KOMBIT's STS issues a SAML-based token for the
// service entity id against the municipality's function certificate
// (FOCES/OCES3); here the token is an OAuth2 client-credentials token
// whose scope is the entity id (adapters/httpclient), and the function
// certificate is the client certificate of mutual TLS (tls.cert_file,
// required for an https url). The refusal codes are the simulator's
// (internal/sim/digitalpost): confirm them in KOMBIT's test environment.
//
// Idempotency: the messageUUID is derived from the letter id and the
// recipient's CPR with an HMAC under a key kept in the state store (so
// replicas and restarts agree, and the UUID, which lands in the journey as
// the delivery's id, cannot be turned back into a CPR). A letter delivered
// again sends the same UUIDs; the service takes a UUID once, and its
// refusal of a repeat ("received already") counts as an earlier delivery.
//
// Errors (per custody holder; a letter that reached some and not others
// returns adapters.Partial, so the case system's outbox shows each):
//
//	200 Result true                         delivered
//	refusal "received already" (409)        delivered earlier (Existing)
//	refusal "recipient exempt"              permanent recipient_exempt: the coordinator sends a paper letter
//	refusal "UUID used for another message" permanent uuid_conflict
//	custody holder without a CPR number     permanent no_cpr
//	429, 503 (Retry-After), 408, 425, 5xx   retryable
//	200 that is no kombi_response           retryable bad_answer (a proxy's page, an answer cut off)
//	3xx (never followed)                    retryable redirected (check url)
//	token service refuses the hub           retryable auth_failed (configuration, not the letter)
//	401 after one new token                 retryable auth_rejected (registration, key rollover, clock skew)
//	400, 403, 404, 409, 413, 415, 422 …     permanent, with the service's code
//	network, timeout                        retryable (the UUID makes a resend safe)
//
// Reasons name counts and codes, never a CPR number, a name or the text.
package digitalpost
