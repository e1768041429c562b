// Package acceptance is the acceptance suite of the council's workflow
// (issue 17): each scenario is a step of the council's month, run against
// the real samhub binary with everyone around it.
//
// The council for children and young people in mental distress (Samråd for
// Børn og Unge) gets referrals from GPs as MedCom letters. Samhub files each
// in the municipal case system, on the child's case (made for a child the
// case system did not know), and acknowledges it to the GP's system. Once a
// month the council meets and writes a recommendation on the case; the case
// system's outbox hands it to Samhub, which sends it to the referring GP as
// a reply in the referral's thread and in the format that GP takes, to the
// region's child psychiatry (only with the parents' consent) and to the
// parents by Digital Post, each custody holder by CPR (in a world without
// Digital Post that copy must show as not sent; a custody holder exempt
// from Digital Post parks for the coordinator, who sends a paper letter).
// Child
// psychiatry sends discharge notes to the child's GP; GPs answer the
// council's recommendations. When a system is down, a consent is missing or
// a receiver cannot be found, the letter waits in the retry queue for the
// coordinator, who records the consent, replays or discards it with
// samhubctl.
//
// Every party is real or a faithful simulator: the case system, the EPJ
// gateway and Digital Post (internal/sim), the GP practices and the region's MedCom endpoint
// (internal/sim/medcompeer on the hub's drop folder), and the coordinator's
// mail server (adapters/email/mailtest). Scenarios assert what each party
// ends up with: cases and documents in the case system, Communications at
// the region, letters with their receivers and formats at the GPs,
// acknowledgements, the retry queue and letter journeys as samhubctl shows
// them; never log lines. Everywhere: no letter reaches a party other than
// the one its route resolved, and every letter passes MedCom's standard.
//
// The people are fictitious: MedCom's test CPR numbers (which fail
// modulus 11 on purpose) with made-up names carrying "Test".
package acceptance
