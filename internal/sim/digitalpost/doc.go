// Package digitalpostsim stands in for KOMBIT's Serviceplatformen service
// SF1601 "KombiPostAfsend" (Digital Post from a municipality to citizens)
// for tests and `make run`. It serves what Samhub's digitalpost adapter
// uses, and checks what the real service checks on the way in:
//
//   - an OAuth2 client-credentials token endpoint standing in for KOMBIT's
//     STS: a token is issued for one service entity id (the scope), and the
//     service takes only tokens issued for
//     http://entityid.kombit.dk/service/kombipostafsend/1;
//   - with Config.TLS, HTTPS that requires a client certificate signed by
//     the configured CA, standing in for the municipality's function
//     certificate (FOCES/OCES3);
//   - POST /service/KombiPostAfsend_1/kombi with the transaction headers
//     X-TransaktionsId (a UUID) and X-TransaktionsTid (a date-time), an
//     XML kombi_request: KombiValgKode and a MeMo 1.1 Message whose
//     elements carry the prefix memo (Serviceplatformen does not read a
//     default namespace; itk-dev/serviceplatformen MemoDocumentNormalizer),
//     with the header, sender (CVR), recipient (CPR) and documents MeMo
//     requires, files of the types Digital Post allows;
//   - "Automatisk Valg" with a ForsendelseI (fjernprint: a PDF and the
//     recipient's CPR) prints the letter for a citizen exempt from Digital
//     Post.
//
// Each message is stored under its messageUUID, with its documents, in
// Config.DataDir (state.json rewritten atomically, documents content
// addressed under files/), so a new Server on the same directory goes on
// where the old one stopped. A message whose UUID is stored already is not
// a second letter: it is counted (Message.Repeats, Counts) and answered
// with the refusal DuplicateMessage (409), or, with Config.AcceptRepeats,
// as received again. The same UUID for another recipient, sender or
// document is refused as UUIDConflict (409) and listed in Counts.Conflicts.
//
// A citizen exempt from Digital Post (Config.Exempt, SetExempt) is refused
// with RecipientExempt (400) when Digital Post only was asked for. The
// codes are this simulator's: the public sources read for it (the
// service's clients, not its field list) do not show the codes the real
// service answers with, so the adapter's test against KOMBIT's test
// environment (exttest) must confirm them (docs/operations.md).
//
// Answers are a kombi_response: Result, TransmissionID and an Advis on
// success; on a refusal Result false and
// HovedoplysningerSvarREST/SvarReaktion/Fejl with FejlKode and FejlTekst,
// the fault shape of KOMBIT's services.
//
// # Simulator API under /_sim/ (no authentication)
//
//	GET  /_sim/messages            every stored message, without content {"results":[Message…]}
//	GET  /_sim/messages/{uuid}     one message with its documents' content (MessageView)
//	GET  /_sim/requests            requests answered (method, path, status, transaction id, message UUID)
//	GET  /_sim/counts              Counts: requests and stored messages per UUID, repeats, conflicts
//	POST /_sim/exempt              {"cpr":"…","exempt":true} → 204
//	POST /_sim/fail                {"count":2,"status":503,"retry_after":"2s"} → 204 (unavailable)
//	POST /_sim/refuse              {"count":1,"code":"…","status":400} → 204 (refusing)
//	POST /_sim/delay               {"delay":"2s"} → 204 (slow)
//	POST /_sim/drop                {"count":1} → 204 (store, then drop the connection)
//	POST /_sim/reject-tokens       {"on":true} → 204
//	POST /_sim/reset               every fault off → 204
//
// The same switches are Go methods (FailNext, RefuseNext, SetDelay,
// DropNext, SetExempt, RejectTokens, ResetFaults) beside the helpers
// Messages, Message, MessagesFor, Requests and Counts.
//
// Access tokens, the request log and the request counts live in memory:
// after a restart a client gets 401 and fetches a new token.
package digitalpostsim
