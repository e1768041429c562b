package console

import "fmt"

// The console speaks English or Danish (config console.language). The
// catalogue is a plain map so a missing translation is visible in review:
// every entry has both languages side by side.
var messages = map[string][2]string{
	"app.title":                 {"Samhub console", "Samhub-konsol"},
	"nav.overview":              {"Overview", "Overblik"},
	"nav.queue":                 {"Retry queue", "Fejlkø"},
	"nav.search":                {"Search", "Søg"},
	"nav.consents":              {"Consents", "Samtykker"},
	"nav.audit":                 {"Audit log", "Revisionslog"},
	"nav.logout":                {"Log out", "Log ud"},
	"nav.signedin":              {"Signed in as %s (%s)", "Logget ind som %s (%s)"},
	"role.coordinator":          {"coordinator", "koordinator"},
	"role.operations":           {"operations", "drift"},
	"role.auditor":              {"auditor", "revisor"},
	"login.title":               {"Log in", "Log ind"},
	"login.user":                {"User name", "Brugernavn"},
	"login.password":            {"Password", "Adgangskode"},
	"login.submit":              {"Log in", "Log ind"},
	"login.failed":              {"Wrong user name or password.", "Forkert brugernavn eller adgangskode."},
	"login.throttled":           {"Too many failed attempts. Try again in %s.", "For mange mislykkede forsøg. Prøv igen om %s."},
	"login.expired":             {"The login form expired. Please try again.", "Login-formularen er udløbet. Prøv igen."},
	"form.expired":              {"The form expired or did not come from this console. Reload the page and try again.", "Formularen er udløbet eller kom ikke fra denne konsol. Genindlæs siden, og prøv igen."},
	"err.forbidden":             {"Your role may not see this page.", "Din rolle må ikke se denne side."},
	"err.forbidden.do":          {"If you need it, ask the hub's administrator for the right role.", "Hvis du har brug for den, så bed hubbens administrator om den rigtige rolle."},
	"err.notfound":              {"There is no such page or letter.", "Siden eller brevet findes ikke."},
	"err.internal":              {"The hub could not do this right now. Try again in a minute; if it keeps failing, tell operations (the hub log has the details).", "Hubben kunne ikke gøre det lige nu. Prøv igen om et minut; bliver det ved, så kontakt drift (hubbens log har detaljerne)."},
	"err.title":                 {"Something went wrong", "Noget gik galt"},
	"back.home":                 {"Back to the start page", "Tilbage til forsiden"},
	"ov.title":                  {"Overview", "Overblik"},
	"ov.destination":            {"Destination", "Modtager"},
	"ov.parked":                 {"Parked letters", "Parkerede breve"},
	"ov.oldest":                 {"Oldest parked", "Ældste parkerede"},
	"ov.held":                   {"Threads held back", "Tilbageholdte tråde"},
	"ov.today":                  {"Letters received today", "Breve modtaget i dag"},
	"ov.today.since":            {"counted since %s", "talt siden %s"},
	"ov.acks":                   {"MedCom acknowledgements missing", "Manglende MedCom-kvitteringer"},
	"ov.acks.none":              {"not measured (no MedCom adapter)", "måles ikke (ingen MedCom-adapter)"},
	"ov.acks.help":              {"Letters sent to MedCom without a receipt in time. The hub resends them; if the number stays up, tell operations.", "Breve sendt via MedCom uden kvittering i tide. Hubben sender dem igen; bliver tallet ved med at være højt, så kontakt drift."},
	"ov.health":                 {"Health", "Drift"},
	"ov.health.help":            {"Readiness and metrics for monitoring:", "Parathed og målinger til overvågning:"},
	"ov.none":                   {"Nothing is parked. All letters were delivered or are on their way.", "Intet er parkeret. Alle breve er leveret eller på vej."},
	"ov.toqueue":                {"Open the retry queue", "Åbn fejlkøen"},
	"q.title":                   {"Retry queue", "Fejlkø"},
	"q.help":                    {"Letters here could not be delivered, also after several tries. Each row says what went wrong and what to do. Replay sends the letter again to the same destination; discard removes it for good. Both need a reason and are recorded in the audit log.", "Brevene her kunne ikke leveres, heller ikke efter flere forsøg. Hver række fortæller, hvad der gik galt, og hvad du skal gøre. \"Send igen\" sender brevet igen til samme modtager; \"Kassér\" fjerner det for altid. Begge kræver en begrundelse og skrives i revisionsloggen."},
	"q.filter":                  {"Filter", "Filtrér"},
	"q.all":                     {"all", "alle"},
	"q.code":                    {"Reason", "Årsag"},
	"q.empty":                   {"No parked letters match.", "Ingen parkerede breve passer."},
	"q.select":                  {"Select", "Vælg"},
	"q.selectall":               {"Select all", "Vælg alle"},
	"q.id":                      {"No.", "Nr."},
	"q.parkedat":                {"Parked", "Parkeret"},
	"q.kind":                    {"Kind", "Type"},
	"q.attempts":                {"Attempts", "Forsøg"},
	"q.what":                    {"What went wrong", "Hvad gik galt"},
	"q.todo":                    {"What to do", "Hvad skal du gøre"},
	"q.details":                 {"Details", "Detaljer"},
	"q.letter":                  {"Letter", "Brev"},
	"q.reason":                  {"Reason for your action (required, no personal data)", "Begrundelse for handlingen (skal udfyldes, ingen personoplysninger)"},
	"q.replay":                  {"Replay selected", "Send valgte igen"},
	"q.discard":                 {"Discard selected", "Kassér valgte"},
	"q.none.selected":           {"Select at least one letter.", "Vælg mindst ét brev."},
	"q.reason.required":         {"Write a reason.", "Skriv en begrundelse."},
	"q.replayed":                {"Replayed %d letter(s).", "%d brev(e) sendt igen."},
	"q.discarded":               {"Discarded %d letter(s).", "%d brev(e) kasseret."},
	"q.failed":                  {"No. %d: %s", "Nr. %d: %s"},
	"q.notparked":               {"it is no longer in the queue (someone else may have handled it)", "det er ikke længere i køen (en anden har måske håndteret det)"},
	"q.stilldenied":             {"No. %d was replayed, but %s It will be parked again until that is fixed.", "Nr. %d er sendt igen, men %s Det bliver parkeret igen, indtil det er rettet."},
	"nav.rejected":              {"Rejected files", "Afviste filer"},
	"r.title":                   {"Rejected files", "Afviste filer"},
	"r.help":                    {"Files the MedCom drop folder could not accept, newest first, with the reason. If a good letter was refused (for example taken before its writer had finished, or refused by a limit that has since been raised), put it back: the hub reads it again as if it had just arrived. A file whose sender already got an acknowledgement cannot be put back: ask the sender to send the letter again. Putting back needs a reason and is recorded in the audit log.", "Filer, som MedCom-mappen ikke kunne modtage, nyeste først, med årsagen. Er et godt brev blevet afvist (fx taget, før afsenderen var færdig med at skrive det, eller afvist af en grænse, der siden er hævet), så læg det tilbage: hubben læser det igen, som var det lige ankommet. En fil, hvis afsender allerede har fået en kvittering, kan ikke lægges tilbage: bed afsenderen sende brevet igen. At lægge tilbage kræver en begrundelse og skrives i revisionsloggen."},
	"r.empty":                   {"No rejected files.", "Ingen afviste filer."},
	"r.file":                    {"File", "Fil"},
	"r.bytes":                   {"bytes", "byte"},
	"r.at":                      {"Rejected", "Afvist"},
	"r.why":                     {"Why", "Hvorfor"},
	"r.answered":                {"The sender got an acknowledgement for it; it cannot be put back.", "Afsenderen har fået en kvittering for den; den kan ikke lægges tilbage."},
	"r.putback":                 {"Put selected back into in/", "Læg valgte tilbage i in/"},
	"r.none.selected":           {"Select at least one file.", "Vælg mindst én fil."},
	"r.done":                    {"Put back %d file(s); the hub reads them again now.", "%d fil(er) lagt tilbage; hubben læser dem igen nu."},
	"r.failed":                  {"%s: %s", "%s: %s"},
	"r.gone":                    {"it is no longer among the rejected files (someone else may have handled it)", "den er ikke længere blandt de afviste filer (en anden har måske håndteret den)"},
	"r.isanswered":              {"the sender was already answered: ask the sender to send the letter again under a new letter id", "afsenderen har allerede fået svar: bed afsenderen sende brevet igen med et nyt brev-id"},
	"rcode.syntax":              {"Not well-formed XML or JSON: damaged, or taken before its writer had finished.", "Ikke gyldig XML eller JSON: beskadiget, eller taget før afsenderen var færdig med at skrive den."},
	"rcode.charset":             {"The characters do not match the declared character set.", "Tegnene passer ikke til det angivne tegnsæt."},
	"rcode.invalid":             {"The letter breaks the MedCom standard; the details name the element.", "Brevet overholder ikke MedCom-standarden; detaljerne nævner elementet."},
	"rcode.unsupported":         {"A message type or version the hub does not read.", "En meddelelsestype eller version, som hubben ikke læser."},
	"rcode.too_large":           {"Larger than the hub accepts (max_bytes).", "Større end hubben modtager (max_bytes)."},
	"rcode.letter_too_large":    {"The hub could not store the letter: too large even with its attachments stored apart.", "Hubben kunne ikke gemme brevet: for stort, også med bilagene gemt for sig."},
	"rcode.dtd":                 {"Contains a DOCTYPE/ENTITY declaration, which MedCom letters never do (a possible attack).", "Indeholder en DOCTYPE/ENTITY-erklæring, hvad MedCom-breve aldrig gør (muligvis et angreb)."},
	"rcode.too_deep":            {"Nested deeper than any MedCom letter (a possible attack).", "Dybere indlejret end noget MedCom-brev (muligvis et angreb)."},
	"rcode.too_many_tokens":     {"More markup than any MedCom letter has (a possible attack).", "Mere opmærkning end noget MedCom-brev har (muligvis et angreb)."},
	"rcode.too_long":            {"One value or text is longer than MedCom allows.", "En værdi eller tekst er længere, end MedCom tillader."},
	"j.title":                   {"Letter journey", "Brevets vej"},
	"j.letter":                  {"Letter", "Brev"},
	"j.kind":                    {"Kind", "Type"},
	"j.format":                  {"Format", "Format"},
	"j.source":                  {"Came from", "Kom fra"},
	"j.thread":                  {"Thread", "Tråd"},
	"j.received":                {"Received", "Modtaget"},
	"j.steps":                   {"Steps", "Trin"},
	"j.time":                    {"Time", "Tidspunkt"},
	"j.step":                    {"Step", "Trin"},
	"j.destination":             {"Destination", "Modtager"},
	"j.attempt":                 {"Attempt", "Forsøg"},
	"j.remote":                  {"Id at destination", "Id hos modtager"},
	"j.by":                      {"By", "Af"},
	"j.note":                    {"Note", "Bemærkning"},
	"j.pending":                 {"Still on its way to", "Stadig på vej til"},
	"j.parkednow":               {"Parked now", "Parkeret nu"},
	"j.show":                    {"Show content", "Vis indhold"},
	"j.show.help":               {"The letter's content (child, subject, text) is only shown when you need it. Say why; the view is recorded in the audit log.", "Brevets indhold (barn, emne, tekst) vises kun, når du har brug for det. Skriv hvorfor; visningen skrives i revisionsloggen."},
	"j.show.reason":             {"Why do you need to see it?", "Hvorfor skal du se det?"},
	"j.content":                 {"Content", "Indhold"},
	"j.content.audited":         {"This view was recorded in the audit log.", "Denne visning er skrevet i revisionsloggen."},
	"j.patient":                 {"Child", "Barn"},
	"j.patientid":               {"CPR / replacement id", "CPR / erstatnings-id"},
	"j.sender":                  {"Sender", "Afsender"},
	"j.subject":                 {"Subject", "Emne"},
	"j.text":                    {"Text", "Tekst"},
	"j.attachments":             {"Attachments", "Bilag"},
	"j.show.reason.req":         {"Write why you need to see the content.", "Skriv, hvorfor du skal se indholdet."},
	"s.title":                   {"Search", "Søg"},
	"s.byid":                    {"Letter id or thread id", "Brev-id eller tråd-id"},
	"s.letter":                  {"Find letter", "Find brev"},
	"s.thread":                  {"Find thread", "Find tråd"},
	"s.cpr":                     {"Search by CPR number", "Søg på CPR-nummer"},
	"s.cpr.help":                {"A CPR search is recorded in the audit log (with a one-way code of the number, not the number itself). It finds the child's letters of the last 90 days, parked letters and the recorded consent.", "En CPR-søgning skrives i revisionsloggen (med en envejskode af nummeret, ikke selve nummeret). Den finder barnets breve fra de sidste 90 dage, parkerede breve og det registrerede samtykke."},
	"s.letters":                 {"Letters (last 90 days)", "Breve (sidste 90 dage)"},
	"s.received":                {"Received", "Modtaget"},
	"s.cpr.field":               {"CPR number", "CPR-nummer"},
	"s.reason":                  {"Why are you searching? (required)", "Hvorfor søger du? (skal udfyldes)"},
	"s.go":                      {"Search", "Søg"},
	"s.none":                    {"Nothing found.", "Intet fundet."},
	"s.results":                 {"Results", "Resultater"},
	"s.consent":                 {"Recorded consent", "Registreret samtykke"},
	"s.consent.none":            {"No consent is recorded in the hub for this child.", "Der er ikke registreret samtykke i hubben for dette barn."},
	"s.cpr.bad":                 {"CPR number: must be 10 characters, six digits then four (a dash after the sixth is allowed), e.g. 2509479989.", "CPR-nummer: skal være 10 tegn, seks cifre og derefter fire (bindestreg efter det sjette er tilladt), fx 2509479989."},
	"s.reason.required":         {"Write why you are searching.", "Skriv, hvorfor du søger."},
	"s.id.required":             {"Write a letter id or thread id.", "Skriv et brev-id eller tråd-id."},
	"s.thread.parked":           {"Parked letters in this thread", "Parkerede breve i denne tråd"},
	"s.thread.first":            {"The thread's first letter", "Trådens første brev"},
	"c.title":                   {"Record consent", "Registrér samtykke"},
	"c.help":                    {"Record the consent the family gave (or a withdrawal). Letters parked because consent was missing can then be replayed from the retry queue.", "Registrér det samtykke, familien har givet (eller en tilbagekaldelse). Breve, der er parkeret på grund af manglende samtykke, kan derefter sendes igen fra fejlkøen."},
	"c.patient":                 {"Child's CPR number", "Barnets CPR-nummer"},
	"c.givenby":                 {"Given by", "Givet af"},
	"c.custody":                 {"custody holder", "forældremyndighedsindehaver"},
	"c.young":                   {"young person (15–17)", "den unge (15–17 år)"},
	"c.form":                    {"Form", "Form"},
	"c.written":                 {"written", "skriftligt"},
	"c.oral":                    {"oral", "mundtligt"},
	"c.givenat":                 {"Date given", "Dato givet"},
	"c.scopes":                  {"May be shared with", "Må deles med"},
	"c.withdraw":                {"This is a withdrawal of consent", "Dette er en tilbagekaldelse af samtykke"},
	"c.refused":                 {"The young person (15–17) refuses sharing of health information", "Den unge (15–17 år) afviser deling af helbredsoplysninger"},
	"c.reason":                  {"Reason (required)", "Begrundelse (skal udfyldes)"},
	"c.submit":                  {"Record", "Registrér"},
	"c.done":                    {"The consent was recorded.", "Samtykket er registreret."},
	"c.date.bad":                {"Date given: must be a date like 2026-03-04.", "Dato givet: skal være en dato som 2026-03-04."},
	"c.scope.bad":               {"May be shared with: unknown choice.", "Må deles med: ukendt valg."},
	"scope.municipality":        {"the municipality", "kommunen"},
	"scope.gp":                  {"the GP", "egen læge"},
	"scope.parents":             {"the parents", "forældrene"},
	"scope.region_psychiatry":   {"child and adolescent psychiatry", "børne- og ungdomspsykiatrien"},
	"scope.school_ppr":          {"school / PPR", "skole / PPR"},
	"a.title":                   {"Audit log", "Revisionslog"},
	"a.help":                    {"Every human action and every view of a letter's content, newest first.", "Alle menneskelige handlinger og alle visninger af et brevs indhold, nyeste først."},
	"a.at":                      {"Time", "Tidspunkt"},
	"a.actor":                   {"Who", "Hvem"},
	"a.role":                    {"Role", "Rolle"},
	"a.action":                  {"Action", "Handling"},
	"a.target":                  {"What", "Hvad"},
	"a.reason":                  {"Reason", "Begrundelse"},
	"a.result":                  {"Result", "Resultat"},
	"a.remote":                  {"From", "Fra"},
	"a.empty":                   {"The audit log is empty.", "Revisionsloggen er tom."},
	"step.received":             {"received", "modtaget"},
	"step.duplicate":            {"duplicate (already received)", "dublet (allerede modtaget)"},
	"step.delivered":            {"delivered", "leveret"},
	"step.retried":              {"failed, will retry", "fejlede, prøves igen"},
	"step.parked":               {"parked in the retry queue", "parkeret i fejlkøen"},
	"step.replayed":             {"replayed", "sendt igen"},
	"step.discarded":            {"discarded", "kasseret"},
	"step.consent-denied":       {"held back: no consent", "tilbageholdt: intet samtykke"},
	"step.acknowledged-by-peer": {"acknowledged by the receiver", "kvitteret af modtageren"},
	"kind.referral":             {"referral", "henvisning"},
	"kind.reply":                {"reply", "svar"},
	"kind.note":                 {"note", "notat"},
	"kind.recommendation":       {"recommendation", "anbefaling"},
	"kind.discharge-note":       {"discharge note", "epikrise"},
}

func tr(lang, key string, args ...any) string {
	m, ok := messages[key]
	if !ok {
		return key
	}
	s := m[0]
	if lang == "da" {
		s = m[1]
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

// trOr translates key, or returns fallback when the catalogue has no entry
// (a step or kind name added later still shows, untranslated).
func trOr(lang, key, fallback string) string {
	if _, ok := messages[key]; !ok {
		return fallback
	}
	return tr(lang, key)
}

// Explanation says in plain words what a parked reason code means and what
// the coordinator should do about it.
type Explanation struct {
	What, Do string
	// Consent marks reasons fixed on the consent page.
	Consent bool
}

type explain struct {
	what, do [2]string
	consent  bool
}

var (
	unavailable = explain{
		what: [2]string{"The receiving system did not answer or was unavailable, also after several tries.", "Det modtagende system svarede ikke eller var utilgængeligt, også efter flere forsøg."},
		do:   [2]string{"Check with operations that the system is running again, then replay.", "Tjek med drift, at systemet kører igen, og send så brevet igen."},
	}
	refusedAccess = explain{
		what: [2]string{"The receiving system refused the hub's access.", "Det modtagende system afviste hubbens adgang."},
		do:   [2]string{"Ask operations to check the hub's access to this system, then replay.", "Bed drift om at tjekke hubbens adgang til systemet, og send så brevet igen."},
	}
	invalid = explain{
		what: [2]string{"The receiving system rejected the letter as invalid.", "Det modtagende system afviste brevet som ugyldigt."},
		do:   [2]string{"Give operations the letter id so they can find the cause in the hub log. Replay when it is fixed, or discard with a reason.", "Giv drift brevets id, så de kan finde årsagen i hubbens log. Send igen, når det er rettet, eller kassér med en begrundelse."},
	}
	noRecipient = explain{
		what: [2]string{"The letter has no allowed recipient at this destination.", "Brevet har ingen tilladt modtager hos denne modtager."},
		do:   [2]string{"Check the recipient. Operations may need to add the address to the allow-list; then replay.", "Tjek modtageren. Drift skal måske tilføje adressen til listen over tilladte; send så igen."},
	}
	hubStorage = explain{
		what: [2]string{"The hub could not write to its own storage or folder.", "Hubben kunne ikke skrive til sit eget lager eller sin mappe."},
		do:   [2]string{"Tell operations. Replay when they say the hub is healthy again.", "Kontakt drift. Send igen, når de siger, at hubben fungerer igen."},
	}
	cannotConvert = explain{
		what: [2]string{"The hub could not convert the letter into the format the destination needs.", "Hubben kunne ikke omsætte brevet til det format, modtageren skal bruge."},
		do:   [2]string{"Tell operations and give them the letter id. If the letter can be sent another way, discard this copy with a reason.", "Kontakt drift, og giv dem brevets id. Kan brevet sendes på anden vis, så kassér denne kopi med en begrundelse."},
	}
	attachments = explain{
		what: [2]string{"The receiving system refused the attachments (too large, or a file type it does not accept).", "Det modtagende system afviste bilagene (for store eller en filtype, det ikke modtager)."},
		do:   [2]string{"Ask the sender for a smaller file or another format, then discard this copy with a reason.", "Bed afsenderen om en mindre fil eller et andet format, og kassér så denne kopi med en begrundelse."},
	}
)

// explanations maps the reason codes adapters and the router use (see
// adapters/*/ and pipeline/route) to advice; unknown codes fall back to the
// adapter's own plain-language reason.
var explanations = map[string]explain{
	"consent_missing": {consent: true,
		what: [2]string{"No recorded consent covers this destination.", "Der er ikke registreret et samtykke, som dækker denne modtager."},
		do:   [2]string{"Record the consent, then replay.", "Registrér samtykket, og send så brevet igen."}},
	"no_consent": {consent: true,
		what: [2]string{"The consent does not cover this destination.", "Samtykket dækker ikke denne modtager."},
		do:   [2]string{"If the family has agreed to share with this sector, record the consent, then replay. Otherwise discard with a reason.", "Har familien sagt ja til deling med denne sektor, så registrér samtykket og send igen. Ellers kassér med en begrundelse."}},
	"consent_scope": {consent: true,
		what: [2]string{"The consent does not cover this destination's sector.", "Samtykket dækker ikke denne modtagers sektor."},
		do:   [2]string{"If the family has agreed to share with this sector, record the wider consent, then replay. Otherwise discard with a reason.", "Har familien sagt ja til deling med denne sektor, så registrér det bredere samtykke og send igen. Ellers kassér med en begrundelse."}},
	"consent_withdrawn": {consent: true,
		what: [2]string{"The consent was withdrawn.", "Samtykket er trukket tilbage."},
		do:   [2]string{"Do not replay unless the family gives a new consent and you record it. Otherwise discard with a reason.", "Send ikke igen, medmindre familien giver et nyt samtykke, og du registrerer det. Ellers kassér med en begrundelse."}},
	"young_person_refused": {consent: true,
		what: [2]string{"The young person (15–17) has refused sharing of health information.", "Den unge (15–17 år) har afvist deling af helbredsoplysninger."},
		do:   [2]string{"Respect the refusal: discard with a reason. If the young person changes their mind, record the new statement, then replay.", "Respektér afvisningen: kassér med en begrundelse. Ændrer den unge mening, så registrér det nye samtykke og send igen."}},
	"case_closed": {
		what: [2]string{"The child's case is closed in the case system.", "Barnets sag er lukket i sagssystemet."},
		do:   [2]string{"Ask the case worker to reopen the case, then replay. If the letter belongs elsewhere, discard it with a reason.", "Bed sagsbehandleren genåbne sagen, og send så igen. Hører brevet til et andet sted, så kassér det med en begrundelse."}},
	"no_case": {
		what: [2]string{"The case system has no case for this child.", "Sagssystemet har ingen sag for dette barn."},
		do:   [2]string{"Create the case in the case system (or ask the case worker to), then replay.", "Opret sagen i sagssystemet (eller bed sagsbehandleren om det), og send så igen."}},
	"not_found": {
		what: [2]string{"The receiving system does not know the case or document.", "Det modtagende system kender ikke sagen eller dokumentet."},
		do:   [2]string{"Check the case in the receiving system, then replay.", "Tjek sagen i det modtagende system, og send så igen."}},
	"patient_unknown": {
		what: [2]string{"The region does not know the child.", "Regionen kender ikke barnet."},
		do:   [2]string{"Check the child's CPR number with the sender and ask the region to register the child, then replay.", "Tjek barnets CPR-nummer med afsenderen, og bed regionen oprette barnet; send så igen."}},
	"patient_ambiguous": {
		what: [2]string{"The region found more than one patient for the child.", "Regionen fandt mere end én patient for barnet."},
		do:   [2]string{"Ask the region to resolve the duplicate patient, then replay.", "Bed regionen rydde op i den dobbelte patient, og send så igen."}},
	"no_patient": {
		what: [2]string{"The letter does not say which child it is about.", "Brevet oplyser ikke, hvilket barn det handler om."},
		do:   [2]string{"Ask the sender to send it again with the child's CPR number, then discard this copy with a reason.", "Bed afsenderen sende det igen med barnets CPR-nummer, og kassér så denne kopi med en begrundelse."}},
	"idempotency_key_reused": {
		what: [2]string{"The case system has an earlier copy of this letter with different content.", "Sagssystemet har en tidligere kopi af brevet med et andet indhold."},
		do:   [2]string{"Compare with the document in the case system. Discard if it is already there; otherwise ask operations.", "Sammenlign med dokumentet i sagssystemet. Kassér, hvis det allerede er der; ellers kontakt drift."}},
	"ambiguous_duplicate": {
		what: [2]string{"The receiving system may already have this letter, but the hub cannot tell for sure.", "Det modtagende system har måske allerede brevet, men hubben kan ikke afgøre det sikkert."},
		do:   [2]string{"Check in the receiving system. Discard if the letter is there; otherwise replay.", "Tjek i det modtagende system. Kassér, hvis brevet er der; ellers send igen."}},
	"unreadable": {
		what: [2]string{"The stored letter could not be read.", "Det gemte brev kunne ikke læses."},
		do:   [2]string{"Tell operations and give them the letter id.", "Kontakt drift, og giv dem brevets id."}},
	"unclassified": {
		what: [2]string{"An unexpected error happened.", "Der skete en uventet fejl."},
		do:   [2]string{"Tell operations and give them the letter id; replay when they have checked it.", "Kontakt drift, og giv dem brevets id; send igen, når de har tjekket det."}},
	"unavailable": unavailable, "server_error": unavailable, "network": unavailable, "timeout": unavailable, "throttled": unavailable,
	"http_503": unavailable, "token_unreachable": unavailable, "token_unavailable": unavailable, "request_in_progress": unavailable, "cancelled": unavailable,
	"auth_rejected": refusedAccess, "auth_failed": refusedAccess, "forbidden": refusedAccess, "auth_unsupported": refusedAccess,
	"tls_failed": refusedAccess, "tls_untrusted": refusedAccess, "starttls_missing": refusedAccess, "requiretls_missing": refusedAccess,
	"bad_request": invalid, "validation_failed": invalid, "rejected": invalid, "conflict": invalid, "bad_answer": invalid,
	"too_large": attachments, "file_type_refused": attachments,
	"recipient_not_allowed": noRecipient, "no_email_recipient": noRecipient, "allow_list_empty": noRecipient,
	"medcom_write_failed": hubStorage, "state_unavailable": hubStorage, "publish_failed": hubStorage, "state": hubStorage,
	"medcom_cannot_build": cannotConvert, "encode": cannotConvert, "message_build_failed": cannotConvert, "medcom_unsupported_kind": cannotConvert,
}

// explainCode returns the advice for code; detail is the adapter's own reason,
// used for codes the catalogue does not know.
func explainCode(lang, code, detail string) Explanation {
	i := 0
	if lang == "da" {
		i = 1
	}
	if e, ok := explanations[code]; ok {
		return Explanation{What: e.what[i], Do: e.do[i], Consent: e.consent}
	}
	what := detail
	if what == "" {
		what = code
	}
	do := [2]string{"Fix the cause at the destination, then replay. If the letter should not go there, discard it with a reason.", "Ret årsagen hos modtageren, og send så igen. Skal brevet ikke derhen, så kassér det med en begrundelse."}
	return Explanation{What: what, Do: do[i]}
}
