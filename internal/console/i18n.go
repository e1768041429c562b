package console

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/pipeline/council"
	"github.com/samhub/samhub/pipeline/journey"
	"github.com/samhub/samhub/pipeline/letter"
)

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
	"form.toolarge":             {"The form is too large: a reason takes at most 500 characters. Go back, shorten it and try again.", "Formularen er for stor: en begrundelse må højst være på 500 tegn. Gå tilbage, gør den kortere, og prøv igen."},
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
	"q.help":                    {"Letters here could not be delivered, also after several tries. Each row says what went wrong and what to do. Narrow the list with the filter; the count says how many match, and \"Replay all that match\" sends them all again after a preview. Replay sends a letter again to the same destination; discard removes it for good. Both need a reason and are recorded in the audit log.", "Brevene her kunne ikke leveres, heller ikke efter flere forsøg. Hver række fortæller, hvad der gik galt, og hvad du skal gøre. Indsnævr listen med filteret; tallet viser, hvor mange der passer, og \"Send alle, der passer, igen\" sender dem alle igen efter en forhåndsvisning. \"Send igen\" sender et brev igen til samme modtager; \"Kassér\" fjerner det for altid. Begge kræver en begrundelse og skrives i revisionsloggen."},
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
	"q.details":                 {"Technical detail for operations", "Teknisk detalje til drift"},
	"q.letter":                  {"Letter", "Brev"},
	"q.reason":                  {"Reason for your action (required, no personal data)", "Begrundelse for handlingen (skal udfyldes, ingen personoplysninger)"},
	"q.replay":                  {"Replay selected", "Send valgte igen"},
	"q.discard":                 {"Discard selected", "Kassér valgte"},
	"q.none.selected":           {"Select at least one letter.", "Vælg mindst ét brev."},
	"q.reason.required":         {"Write a reason.", "Skriv en begrundelse."},
	"q.replayed":                {"Replayed %d letter(s).", "%d brev(e) sendt igen."},
	"q.discarded":               {"Discarded %d letter(s).", "%d brev(e) kasseret."},
	"q.failed":                  {"No. %d: %s", "Nr. %d: %s"},
	"q.held":                    {"it waits for an earlier letter of its thread and stays parked; it follows once that letter is delivered or discarded, or the thread is released", "det venter på et tidligere brev i samme tråd og bliver i køen; det følger med, når det brev er leveret eller kasseret, eller tråden frigives"},
	"q.notparked":               {"it is no longer in the queue (someone else may have handled it)", "det er ikke længere i køen (en anden har måske håndteret det)"},
	"q.stilldenied":             {"No. %d was replayed, but %s It will be parked again until that is fixed.", "Nr. %d er sendt igen, men %s Det bliver parkeret igen, indtil det er rettet."},
	"nav.rejected":              {"Rejected files", "Afviste filer"},
	"r.title":                   {"Rejected files", "Afviste filer"},
	"r.help":                    {"Files the MedCom drop folder could not accept, newest first, with the reason. If a good letter was refused (for example taken before its writer had finished, or refused by a limit that has since been raised), put it back: the hub reads it again as if it had just arrived. A file whose sender already got an acknowledgement cannot be put back: ask the sender to send the letter again. Putting back needs a reason and is recorded in the audit log.", "Filer, som MedCom-mappen ikke kunne modtage, nyeste først, med årsagen. Er et godt brev blevet afvist (fx taget, før afsenderen var færdig med at skrive det, eller afvist af en grænse, der siden er hævet), så læg det tilbage: hubben læser det igen, som var det lige ankommet. En fil, hvis afsender allerede har fået en kvittering, kan ikke lægges tilbage: bed afsenderen sende brevet igen. At lægge tilbage kræver en begrundelse og skrives i revisionsloggen."},
	"r.readonly":                {"Only a coordinator can put a file back: tell the coordinator which file, and why.", "Kun en koordinator kan lægge en fil tilbage: fortæl koordinatoren, hvilken fil det drejer sig om, og hvorfor."},
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
	"c.date.future":             {"Date given: must not be in the future (today at the latest).", "Dato givet: må ikke ligge ude i fremtiden (senest i dag)."},
	"c.scope.bad":               {"May be shared with: unknown choice.", "Må deles med: ukendt valg."},
	"scope.municipality":        council.ScopeNames[letter.ScopeMunicipality], // one table with the agenda CSV's
	"scope.gp":                  council.ScopeNames[letter.ScopeGP],
	"scope.parents":             council.ScopeNames[letter.ScopeParents],
	"scope.region_psychiatry":   council.ScopeNames[letter.ScopeRegionPsychiatry],
	"scope.school_ppr":          council.ScopeNames[letter.ScopeSchoolPPR],
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
	"step.partly-delivered":     {"delivered to some addressees", "leveret til nogle af modtagerne"},
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

	// The retry queue at outage scale: filters, pages, held threads, replaying
	// all that match, and the time zone.
	"tz.note":              {"Times are shown in the time zone %s.", "Tidspunkter vises i tidszonen %s."},
	"q.older":              {"Parked more than … ago", "Parkeret for mere end … siden"},
	"q.older.hour":         {"1 hour", "1 time"},
	"q.older.hours":        {"%d hours", "%d timer"},
	"q.older.day":          {"1 day", "1 døgn"},
	"q.older.days":         {"%d days", "%d døgn"},
	"q.older.week":         {"1 week", "1 uge"},
	"q.older.weeks":        {"%d weeks", "%d uger"},
	"q.after":              {"Parked from", "Parkeret fra"},
	"q.before":             {"Parked before", "Parkeret før"},
	"q.time.bad":           {"%s: must be a date and a time, e.g. 2026-03-04 09:30.", "%s: skal være en dato og et klokkeslæt, fx 2026-03-04 09:30."},
	"q.thread":             {"Thread id", "Tråd-id"},
	"q.thread.hint":        {"as on the letter's page", "som på brevets side"},
	"q.threadtoken":        {"Only the letters of one thread (code %s).", "Kun brevene i én tråd (kode %s)."},
	"q.size":               {"Per page", "Pr. side"},
	"q.reset":              {"Clear the filter", "Nulstil filteret"},
	"q.count":              {"%s parked letters.", "%s parkerede breve."},
	"q.count.one":          {"%s parked letter.", "%s parkeret brev."},
	"q.count.filtered":     {"%s parked letters match the filter.", "%s parkerede breve passer på filteret."},
	"q.count.filtered.one": {"%s parked letter matches the filter.", "%s parkeret brev passer på filteret."},
	"q.showing":            {"Showing %s–%s.", "Viser %s–%s."},
	"q.replayall":          {"Replay all that match (%s) …", "Send alle, der passer, igen (%s) …"},
	"q.pastend":            {"This page is past the end of the list.", "Siden ligger efter listens slutning."},
	"q.pages":              {"Pages", "Sider"},
	"q.page.first":         {"First", "Første"},
	"q.page.prev":          {"Previous", "Forrige"},
	"q.page.next":          {"Next", "Næste"},
	"q.page.last":          {"Last", "Sidste"},
	"q.page.of":            {"Page %s of %s", "Side %s af %s"},
	"q.held.what":          {"Waits for an earlier letter of its thread.", "Venter på et tidligere brev i samme tråd."},
	"q.held.waitsfor":      {"It waits for letter", "Det venter på brev"},
	"q.held.since":         {"parked since %s", "parkeret siden %s"},
	"q.held.gone":          {"The thread is no longer held; the letter goes on shortly.", "Tråden holdes ikke længere tilbage; brevet sendes videre om lidt."},
	"q.held.do":            {"It goes on by itself once the earlier letter is delivered or discarded. If it need not wait:", "Det sendes videre af sig selv, når det tidligere brev er leveret eller kasseret. Skal det ikke vente:"},
	"q.held.release":       {"Release the thread …", "Frigiv tråden …"},
	"q.blocks":             {"Later letters of its thread wait for this one.", "Senere breve i tråden venter på dette."},
	"q.selected.help":      {"Replay or discard the letters you ticked on this page.", "Send de breve, du har markeret på denne side, igen, eller kassér dem."},
	"q.badid":              {"No. %s: not a number from this list.", "Nr. %s: er ikke et nummer fra listen."},
	"rp.title":             {"Replay all that match", "Send alle, der passer, igen"},
	"rp.nothing":           {"No parked letters match (any more).", "Ingen parkerede breve passer (længere)."},
	"rp.back":              {"Back to the retry queue", "Tilbage til fejlkøen"},
	"rp.lead":              {"%s parked letters will be sent again to the destination that failed.", "%s parkerede breve bliver sendt igen til den modtager, der fejlede."},
	"rp.lead.one":          {"%s parked letter will be sent again to the destination that failed.", "%s parkeret brev bliver sendt igen til den modtager, der fejlede."},
	"rp.filter":            {"Which letters:", "Hvilke breve:"},
	"rp.help":              {"The hub sends them one by one in the order they were parked, in the background, and you can follow how far it is. Letters parked after this count are not included. The replay is recorded in the audit log once, with the filter, the number and your reason.", "Hubben sender dem ét ad gangen i den rækkefølge, de blev parkeret, i baggrunden, og du kan følge, hvor langt den er. Breve, der parkeres efter denne optælling, kommer ikke med. Genafsendelsen skrives én gang i revisionsloggen med filteret, antallet og din begrundelse."},
	"rp.held":              {"%s of them wait for an earlier letter of their thread: they go on only after that letter is delivered.", "%s af dem venter på et tidligere brev i deres tråd: de sendes først videre, når det brev er leveret."},
	"rp.consent":           {"%s of them were parked for want of consent: they park again unless the consent is recorded first.", "%s af dem blev parkeret på grund af manglende samtykke: de parkeres igen, medmindre samtykket registreres først."},
	"rp.count":             {"Letters", "Breve"},
	"rp.first":             {"The first %d", "De første %d"},
	"rp.confirm.help":      {"Write why you send these %s letters again. Press the button once: pressing it again does not send them twice.", "Skriv, hvorfor du sender disse %s breve igen. Tryk én gang på knappen: trykker du igen, sendes de ikke to gange."},
	"rp.confirm":           {"Send %s letters again", "Send %s breve igen"},
	"rp.confirm.one":       {"Send %s letter again", "Send %s brev igen"},
	"rp.cancel":            {"Cancel", "Annullér"},
	"b.title":              {"Replay of all that match", "Genafsendelse af alle, der passer"},
	"b.recent":             {"Replays of all that match", "Genafsendelser af alle, der passer"},
	"b.short":              {"%s of %s sent again", "%s af %s sendt igen"},
	"b.state.running":      {"Running", "I gang"},
	"b.state.done":         {"Done", "Færdig"},
	"b.state.stopped":      {"Stopped", "Stoppet"},
	"b.state.interrupted":  {"Interrupted", "Afbrudt"},
	"b.refresh":            {"this page updates itself", "siden opdaterer sig selv"},
	"b.filter":             {"Which letters", "Hvilke breve"},
	"b.planned":            {"Letters to send again", "Breve, der skal sendes igen"},
	"b.replayed":           {"Sent again", "Sendt igen"},
	"b.stilldenied":        {"Sent again, but still without consent (they park again)", "Sendt igen, men stadig uden samtykke (de parkeres igen)"},
	"b.gone":               {"No longer in the queue when reached (someone else handled them)", "Ikke længere i køen, da de blev nået (en anden har håndteret dem)"},
	"b.stillheld":          {"Left parked behind an earlier letter of their thread (they follow it)", "Bliver i køen bag et tidligere brev i samme tråd (de følger efter det)"},
	"b.failed":             {"Could not be sent again", "Kunne ikke sendes igen"},
	"b.by":                 {"Started by", "Startet af"},
	"b.reason":             {"Reason", "Begrundelse"},
	"b.started":            {"Started", "Startet"},
	"b.finished":           {"Ended", "Afsluttet"},
	"b.interrupted.help":   {"The hub stopped while sending. What was sent stays sent; the rest is still parked. Send the rest to go on.", "Hubben stoppede undervejs. Det, der er sendt, forbliver sendt; resten ligger stadig i fejlkøen. Send resten igen for at fortsætte."},
	"b.stopped.help":       {"The hub could not store the letters several times in a row and stopped. Tell operations; when the hub works again, send the rest.", "Hubben kunne flere gange i træk ikke gemme brevene og stoppede. Kontakt drift; når hubben fungerer igen, så send resten."},
	"b.stilldenied.help":   {"Letters without consent were parked again. Record the consent, then send them again.", "Breve uden samtykke er parkeret igen. Registrér samtykket, og send dem så igen."},
	"b.failures":           {"Not sent again", "Ikke sendt igen"},
	"b.failures.help":      {"These letters are still parked. Operations can see why in the hub log.", "Disse breve ligger stadig i fejlkøen. Drift kan se årsagen i hubbens log."},
	"b.again":              {"Send the rest again …", "Send resten igen …"},
	"b.back":               {"Back to the retry queue", "Tilbage til fejlkøen"},
	"rel.title":            {"Release a held thread", "Frigiv en tilbageholdt tråd"},
	"rel.notheld":          {"This thread is not held back (any more).", "Tråden holdes ikke tilbage (længere)."},
	"rel.what":             {"%s later letter(s) of this thread wait at %s for letter", "%s senere brev(e) i tråden venter hos %s på brev"},
	"rel.help":             {"Releasing the thread sends the waiting letters on to the destination in their order, without the earlier letter, which stays in the retry queue. Do it only if they do not depend on it. The release is recorded in the audit log with your reason.", "Frigiver du tråden, sendes de ventende breve videre til modtageren i deres rækkefølge uden det tidligere brev, som bliver i fejlkøen. Gør det kun, hvis de ikke afhænger af det. Frigivelsen skrives i revisionsloggen med din begrundelse."},
	"rel.confirm":          {"Release the thread", "Frigiv tråden"},
	"rel.done":             {"The thread is released: its waiting letters go on to %s in their order.", "Tråden er frigivet: de ventende breve sendes videre til %s i deres rækkefølge."},
	"d.destination":        {"destination %s", "modtager %s"},
	"d.code":               {"reason %s", "årsag %s"},
	"d.thread":             {"thread %s", "tråd %s"},
	"d.after":              {"parked from %s", "parkeret fra %s"},
	"d.before":             {"parked before %s", "parkeret før %s"},
	"d.upto":               {"counted up to no. %d", "optalt til og med nr. %d"},
	"d.all":                {"all parked letters", "alle parkerede breve"},

	// The council's pages: meetings, a meeting's children, the agenda
	// (print, PDF, CSV), the referral watch and the figures.
	"nav.meetings":        {"Meetings", "Møder"},
	"nav.kpi":             {"Figures", "Nøgletal"},
	"m.off":               {"The council's register is switched off (council.enabled: false).", "Samrådets register er slået fra (council.enabled: false)."},
	"m.title":             {"Council meetings", "Samrådsmøder"},
	"m.help":              {"The council meets on %s. Each referral takes the next meeting with room (%s places a meeting). Move a meeting on its page, or add one below; both need a reason and are recorded in the audit log.", "Samrådet mødes den %s. Hver henvisning får plads på det næste møde med plads (%s pladser pr. møde). Flyt et møde på dets side, eller tilføj et nyt herunder; begge dele kræver en begrundelse og skrives i revisionsloggen."},
	"m.zone":              {"The council's meetings are planned in the time zone %s.", "Samrådets møder planlægges i tidszonen %s."},
	"m.waiting":           {"%s referrals found no meeting with room in the next two years and wait for one. Add a meeting, and they take it.", "%s henvisninger har ikke fundet et møde med plads inden for to år og venter. Tilføj et møde, så får de plads på det."},
	"m.upcoming":          {"Upcoming meetings", "Kommende møder"},
	"m.recent":            {"Recent meetings", "Seneste møder"},
	"m.none.upcoming":     {"No meetings in the next six months.", "Ingen møder de næste seks måneder."},
	"m.none.recent":       {"No meetings in the last three months.", "Ingen møder de sidste tre måneder."},
	"m.when":              {"When", "Tidspunkt"},
	"m.origin":            {"Planned", "Planlagt"},
	"m.places":            {"Places taken", "Pladser taget"},
	"m.places.n":          {"%s of %s", "%s af %s"},
	"m.answered":          {"Answered", "Besvarede"},
	"m.unanswered":        {"Unanswered after the watch period", "Ubesvarede efter fristen"},
	"m.moved":             {"moved from %s", "flyttet fra %s"},
	"m.dayoff":            {"falls on %s, a Danish public holiday or closing day: move or cancel it", "falder på %s, en helligdag eller lukkedag: flyt eller aflys mødet"},
	"origin.rule":         {"by the rule", "efter reglen"},
	"origin.added":        {"added by the coordinator", "tilføjet af koordinatoren"},
	"m.add":               {"Add a meeting", "Tilføj et møde"},
	"m.add.help":          {"An extra meeting, e.g. when the next meetings are full. Referrals waiting for room take it.", "Et ekstra møde, fx når de næste møder er fulde. Henvisninger, der venter på plads, får plads på det."},
	"m.at":                {"Date and time (%s)", "Dato og klokkeslæt (%s)"},
	"m.cap":               {"Places (empty: %d)", "Pladser (tom: %d)"},
	"m.reason":            {"Reason (required, no personal data)", "Begrundelse (skal udfyldes, ingen personoplysninger)"},
	"m.add.submit":        {"Add the meeting", "Tilføj mødet"},
	"m.added":             {"The meeting %s was added.", "Mødet %s er tilføjet."},
	"m.at.bad":            {"Date and time: must be a date and a time, e.g. 2026-03-24 13:00.", "Dato og klokkeslæt: skal være en dato og et klokkeslæt, fx 2026-03-24 13:00."},
	"m.cap.bad":           {"Places: must be a number from 1 to 100, or empty.", "Pladser: skal være et tal fra 1 til 100 eller tom."},
	"m.clash":             {"There is a meeting that day already (%s). Move that one instead.", "Der er allerede et møde den dag (%s). Flyt det i stedet."},
	"mt.title":            {"Council meeting %s", "Samrådsmøde %s"},
	"mt.back":             {"All meetings", "Alle møder"},
	"mt.past":             {"This meeting has been held.", "Mødet er afholdt."},
	"mt.unanswered.help":  {"without a recommendation %s after the referral", "uden anbefaling %s efter henvisningen"},
	"mt.children":         {"The referred children", "De henviste børn"},
	"mt.nonames":          {"This page names no child. The agenda shows the children's names, read from the referrals as you ask for it; it needs a reason and is recorded in the audit log.", "Siden nævner ingen børn ved navn. Dagsordenen viser børnenes navne, læst fra henvisningerne i det øjeblik, du beder om den; den kræver en begrundelse og skrives i revisionsloggen."},
	"mt.child":            {"Child %d", "Barn %d"},
	"mt.empty":            {"No referrals take this meeting yet.", "Ingen henvisninger har plads på mødet endnu."},
	"wd.title":            {"Withdraw a referral", "Træk en henvisning tilbage"},
	"wd.help":             {"For a referral the council is not to take (sent by mistake, the parents withdrew their consent): it stays on this page as withdrawn, its place is free, and the watch leaves it. A later referral of the child takes a seat of its own. The GP is not told: write to them yourself.", "Til en henvisning, som samrådet ikke skal behandle (sendt ved en fejl, forældrene har trukket samtykket tilbage): den bliver stående på siden som trukket tilbage, dens plads bliver ledig, og overvågningen slipper den. En senere henvisning af barnet får sin egen plads. Lægen får ikke besked: skriv selv til lægen."},
	"wd.submit":           {"Withdraw the referral", "Træk henvisningen tilbage"},
	"wd.done":             {"Referral %s is withdrawn; its place is free.", "Henvisning %s er trukket tilbage; dens plads er ledig."},
	"ri.title":            {"Reinstate a withdrawn referral", "Genoptag en henvisning, der er trukket tilbage"},
	"ri.help":             {"Undoes a withdrawal made by mistake, or when the parents gave their consent again: the referral waits for the council again, with its clock and letters, in this meeting if a place is free, or in another meeting with room (its GP is then told the new date). Not while the child has a later referral waiting.", "Fortryder en tilbagetrækning, der skete ved en fejl, eller når forældrene har givet samtykke igen: henvisningen venter igen på samrådet, med sin frist og sine breve, på dette møde, hvis der er en ledig plads, eller på et andet møde med plads (lægen får så besked om det nye tidspunkt). Ikke mens barnet har en senere henvisning, der venter."},
	"ri.here":             {"This meeting (%s places free)", "Dette møde (%s ledige pladser)"},
	"ri.submit":           {"Reinstate the referral", "Genoptag henvisningen"},
	"ri.done":             {"Referral %s is reinstated in the meeting of %s.", "Henvisning %s er genoptaget på mødet %s."},
	"ri.none":             {"No meeting ahead has a free place: add a meeting on the meetings page.", "Intet kommende møde har en ledig plads: tilføj et møde på mødesiden."},
	"ri.childopen":        {"The child has a later referral waiting for the council: the council takes that one.", "Barnet har en senere henvisning, der venter på samrådet: samrådet behandler den."},
	"st.withdrawn":        {"Withdrawn by the coordinator %s", "Trukket tilbage af koordinatoren %s"},
	"st.badge.withdrawn":  council.StateNames["withdrawn"],
	"sm.title":            {"Move a child to another meeting", "Flyt et barn til et andet møde"},
	"sm.help":             {"For a child the council did not reach, or whose papers are not ready: the seat goes to a later meeting with room, with the child's later referrals. Due and the watch still run from the referral. With receipts on, the GP is told the new date.", "Til et barn, som samrådet ikke nåede, eller hvis sag ikke er klar: pladsen flyttes til et senere møde med plads, med barnets senere henvisninger. Fristen og overvågningen regnes stadig fra henvisningen. Er kvitteringer slået til, får lægen besked om det nye tidspunkt."},
	"sm.child":            {"Child", "Barn"},
	"sm.child.opt":        {"Referral %s from %s", "Henvisning %s fra %s"},
	"sm.to":               {"To the meeting", "Til mødet"},
	"sm.meeting.opt":      {"%s (%s places free)", "%s (%s ledige pladser)"},
	"sm.submit":           {"Move the child", "Flyt barnet"},
	"sm.none":             {"No child here waits for a recommendation, or no later meeting has room (add one on the meetings page).", "Intet barn her venter på en anbefaling, eller intet senere møde har plads (tilføj et møde på mødeoversigten)."},
	"sm.done":             {"Referral %s now sits in the meeting of %s.", "Henvisning %s er flyttet til mødet %s."},
	"sm.noroom":           {"That meeting has no room left: pick another, or add a meeting.", "Det møde har ikke flere pladser: vælg et andet, eller tilføj et møde."},
	"sm.answered":         {"The child has its recommendation and waits for no meeting.", "Barnet har fået sin anbefaling og venter ikke på et møde."},
	"sm.withdrawn":        {"The referral was withdrawn and waits for no meeting.", "Henvisningen er trukket tilbage og venter ikke på et møde."},
	"sm.noseat":           {"That referral is not a seat in the register (a later referral moves with its child's first).", "Den henvisning er ikke en plads i registret (en senere henvisning følger barnets første)."},
	"sm.past":             {"Pick a meeting that lies ahead.", "Vælg et møde, der ligger ude i fremtiden."},
	"st.moved":            {"moved here from the meeting of %s", "flyttet hertil fra mødet %s"},
	"mc.title":            {"Cancel the meeting", "Aflys mødet"},
	"mc.help":             {"For a meeting that will not be held (a summer break): it seats no one after, and new referrals take the next meeting with room. Move its children to other meetings first (above). Adding a meeting that day later takes its place.", "Til et møde, der ikke bliver holdt (sommerferie): det tager ikke flere børn, og nye henvisninger får det næste møde med plads. Flyt først mødets børn til andre møder (ovenfor). Tilføjer du senere et møde den dag, træder det i stedet."},
	"mc.submit":           {"Cancel the meeting", "Aflys mødet"},
	"mc.done":             {"The meeting of %s is cancelled.", "Mødet %s er aflyst."},
	"mc.notempty":         {"The meeting still seats children: move each to another meeting first.", "Mødet har stadig børn: flyt først hvert barn til et andet møde."},
	"mc.past":             {"A meeting that has begun or been held cannot be cancelled.", "Et møde, der er begyndt eller holdt, kan ikke aflyses."},
	"mc.cancelled":        {"cancelled %s", "aflyst %s"},
	"mv.title":            {"Move the meeting", "Flyt mødet"},
	"mv.help":             {"Its referrals go with it. With receipts on, the GP of each child still waiting for a recommendation is told the new date.", "Mødets henvisninger følger med. Er kvitteringer slået til, får lægen til hvert barn, der stadig venter på en anbefaling, besked om det nye tidspunkt."},
	"mv.submit":           {"Move", "Flyt"},
	"mv.done":             {"The meeting was moved to %s; its %s referrals go with it.", "Mødet er flyttet til %s; dets %s henvisninger følger med."},
	"ch.letter":           {"Referral", "Henvisning"},
	"ch.received":         {"Referred", "Henvist"},
	"ch.gp":               {"Referring GP", "Henvisende læge"},
	"ch.again":            {"referred again: %s", "henvist igen: %s"},
	"ch.state":            {"Where it stands", "Status"},
	"ch.consent":          {"Consent", "Samtykke"},
	"ch.documents":        {"Documents gathered", "Indhentede dokumenter"},
	"ch.recommendation":   {"Recommendation", "Anbefaling"},
	"ch.receipt":          {"Receipt to the GP", "Kvittering til lægen"},
	"ch.rejections":       {"Turned down by child psychiatry", "Afvist af børne- og ungdomspsykiatrien"},
	"st.waiting":          {"Waits for the council's recommendation (due %s)", "Venter på samrådets anbefaling (senest %s)"},
	"st.answered":         {"The council's recommendation has come", "Samrådets anbefaling er kommet"},
	"st.unanswered":       {"No recommendation %s after the referral (due %s)", "Ingen anbefaling %s efter henvisningen (frist %s)"},
	"st.flagged":          {"Flagged by the referral watch: no recommendation after %s (%s)", "Markeret af henvisningsvagten: ingen anbefaling efter %s (%s)"},
	"st.badge.waiting":    council.StateNames["waiting"], // one table with the agenda CSV's
	"st.badge.answered":   council.StateNames["answered"],
	"st.badge.unanswered": council.StateNames["unanswered"],
	"cs.given":            {"given", "givet"},
	"cs.missing":          {"missing", "mangler"},
	"cs.withdrawn":        {"withdrawn", "trukket tilbage"},
	"cs.refused":          {"refused by the young person", "afvist af den unge"},
	"cs.src.recorded":     {"as the coordinator recorded it", "som koordinatoren har registreret det"},
	"cs.src.letter":       {"as the newest letter about the child stated it", "som det nyeste brev om barnet oplyste det"},
	"cs.src.none":         {"no consent is known", "intet samtykke kendt"},
	"cs.given.by":         {"given by the %s, %s, %s", "givet af %s, %s, %s"},
	"cs.withdrawn.at":     {"withdrawn %s", "trukket tilbage %s"},
	"doc.notfiled":        {"The referral is not filed in the case system yet.", "Henvisningen er endnu ikke journaliseret i sagssystemet."},
	"doc.filed":           {"The referral filed at %s %s", "Henvisningen journaliseret hos %s %s"},
	"doc.line":            {"%s from %s, received %s", "%s fra %s, modtaget %s"},
	"doc.none":            {"No further documents yet.", "Endnu ingen yderligere dokumenter."},
	"rec.none":            {"None yet.", "Ingen endnu."},
	"rec.line":            {"From %s, received %s", "Fra %s, modtaget %s"},
	"rec.copy":            {"A copy for %s, who referred the child too, made %s", "En kopi til %s, som også henviste barnet, lavet %s"},
	"dl.delivered":        {"delivered to %s %s", "leveret til %s %s"},
	"dl.waiting":          {"not delivered to %s: %s", "ikke leveret til %s: %s"},
	"dl.none":             {"not delivered anywhere yet", "endnu ikke leveret nogen steder"},
	"ack.positive":        {"positive acknowledgement %s", "positiv kvittering %s"},
	"ack.negative":        {"negative acknowledgement %s: the receiver refused it", "negativ kvittering %s: modtageren afviste den"},
	"to.parents":          {"the parents (%s)", "forældrene (%s)"},
	"receipt.none":        {"No receipt was sent (receipts are off, or the meeting had passed when the referral came).", "Der er ikke sendt en kvittering (kvitteringer er slået fra, eller mødet var overstået, da henvisningen kom)."},
	"receipt.made":        {"Made %s", "Lavet %s"},
	"receipt.newdate":     {"New meeting date told %s", "Nyt mødetidspunkt meddelt %s"},
	"src.casesys":         {"the case system", "sagssystemet"},
	"src.epj":             {"child psychiatry's EPJ", "børne- og ungdomspsykiatriens EPJ"},
	"src.samhub":          {"the hub", "hubben"},
	"ov.watch":            {"Referrals without a recommendation", "Henvisninger uden anbefaling"},
	"ov.watch.help":       {"These referrals have had no recommendation %s after they came. Ask the council's secretary; the meeting page shows where each child stands.", "Disse henvisninger har ikke fået en anbefaling %s efter, at de kom. Spørg samrådets sekretær; mødesiden viser, hvor hvert barn står."},
	"ov.watch.none":       {"Every referral older than %s has a recommendation.", "Alle henvisninger ældre end %s har fået en anbefaling."},
	"ov.watch.tile":       {"Referrals without a recommendation after %s", "Henvisninger uden anbefaling efter %s"},
	"ov.watch.see":        {"See the list below", "Se listen herunder"},
	"ov.next":             {"Places taken at the next council meeting", "Pladser taget på næste samrådsmøde"},
	"wt.due":              {"Due", "Frist"},
	"wt.meeting":          {"Meeting", "Møde"},
	"wt.nomeeting":        {"waits for a meeting with room", "venter på et møde med plads"},
	"ag.title":            {"Agenda for the council", "Dagsorden til samrådet"},
	"ag.help":             {"The agenda names each child, read from the referral now. Printing or downloading it takes personal data out of the hub: say why. It is recorded in the audit log.", "Dagsordenen nævner hvert barn ved navn, læst fra henvisningen nu. Når du udskriver eller henter den, tager du personoplysninger ud af hubben: skriv hvorfor. Det skrives i revisionsloggen."},
	"ag.reason":           {"Why do you need the agenda? (required, no personal data)", "Hvorfor skal du bruge dagsordenen? (skal udfyldes, ingen personoplysninger)"},
	"ag.print":            {"Show for printing", "Vis til udskrift"},
	"ag.pdf":              {"Download as PDF", "Hent som PDF"},
	"ag.csv":              {"Download as CSV (spreadsheet)", "Hent som CSV (regneark)"},
	"ag.reason.required":  {"Write why you need the agenda.", "Skriv, hvorfor du skal bruge dagsordenen."},
	"ag.format.bad":       {"Choose printing, PDF or CSV.", "Vælg udskrift, PDF eller CSV."},
	"ag.heading":          {"Agenda: council meeting %s", "Dagsorden: samrådsmøde %s"},
	"ag.confidential":     {"Confidential: contains personal data about children. Shred it after the meeting.", "Fortroligt: indeholder personoplysninger om børn. Makulér den efter mødet."},
	"ag.printed":          {"Taken out %s by %s; recorded in the audit log.", "Udtaget %s af %s; skrevet i revisionsloggen."},
	"ag.places":           {"%s of %s places taken", "%s af %s pladser taget"},
	"ag.footer":           {"Council meeting %s – confidential", "Samrådsmøde %s – fortroligt"},
	"ag.page":             {"Page %s of %s", "Side %s af %s"},
	"ag.name.gone":        {"(name no longer stored)", "(navnet er ikke længere gemt)"},
	"ag.print.help":       {"Print with the button or the browser's own print (Ctrl+P): the menu is left out, and each child starts on a new page.", "Udskriv med knappen eller med browserens egen udskrift (Ctrl+P): menuen udelades, og hvert barn begynder på en ny side."},
	"ag.printbtn":         {"Print", "Udskriv"},
	"ag.back":             {"Back to the meeting", "Tilbage til mødet"},
	"k.title":             {"The council's figures", "Samrådets nøgletal"},
	"k.months":            {"Period", "Periode"},
	"k.months.n":          {"the last %d months", "de sidste %d måneder"},
	"k.months.bad":        {"The period must be from 1 to 60 months.", "Perioden skal være fra 1 til 60 måneder."},
	"k.show":              {"Show", "Vis"},
	"k.help":              {"Whole months from %s to %s, counted from the council's register: the same on every hub and after a restart.", "Hele måneder fra %s til %s, talt fra samrådets register: de samme på alle hubbens instanser og efter en genstart."},
	"k.period":            {"%s to %s", "%s til %s"},
	"k.referrals":         {"Referrals", "Henvisninger"},
	"k.median":            {"Median (days)", "Median (dage)"},
	"k.p90":               {"90th percentile (days)", "90-percentil (dage)"},
	"k.median.long":       {"Median time from referral to recommendation", "Mediantid fra henvisning til anbefaling"},
	"k.p90.long":          {"90 per cent of recommendations came within", "90 procent af anbefalingerne kom inden for"},
	"k.lead.count":        {"%s recommendations in the period", "%s anbefalinger i perioden"},
	"k.lead.count.one":    {"%s recommendation in the period", "%s anbefaling i perioden"},
	"k.days":              {"%s days", "%s dage"},
	"k.days.unit":         {"days", "dage"},
	"u.day":               {"%s day", "%s dag"},
	"u.days":              {"%s days", "%s dage"},
	"u.hours":             {"%s hours", "%s timer"},
	"u.minutes":           {"%s minutes", "%s minutter"},
	"u.seconds":           {"%s seconds", "%s sekunder"},
	"k.rejections":        {"Turned down by child psychiatry", "Afvist af børne- og ungdomspsykiatrien"},
	"k.rej.off":           {"not counted: no rule configured", "tælles ikke: ingen regel sat op"},
	"k.rej.off.long":      {"Not counted: no council.rejections rule is configured, so the hub cannot tell which letters turn a referral down. Operations can add one (docs/council.md).", "Tælles ikke: der er ingen council.rejections-regel i konfigurationen, så hubben kan ikke se, hvilke breve der afviser en henvisning. Drift kan tilføje en (docs/council.md)."},
	"k.rej.help":          {"Letters matching the rules %s.", "Breve, der passer på reglerne %s."},
	"k.unanswered":        {"Unanswered now (after %s)", "Ubesvarede nu (efter %s)"},
	"k.unanswered.see":    {"See the referral watch", "Se henvisningsvagten"},
	"k.c.referrals":       {"Referrals per month", "Henvisninger pr. måned"},
	"k.c.referrals.desc":  {"Bar chart of the referrals that came each month, %s: %s in all. The table beside it has the numbers.", "Søjlediagram over de henvisninger, der kom hver måned, %s: %s i alt. Tabellen ved siden af har tallene."},
	"k.c.lead":            {"Time from referral to recommendation", "Tid fra henvisning til anbefaling"},
	"k.c.lead.desc":       {"Bar chart of the median and the 90th percentile in days per month, %s, counted in the month the recommendation came: over the period a median of %s and a 90th percentile of %s days. The table beside it has the numbers.", "Søjlediagram over median og 90-percentil i dage pr. måned, %s, talt i den måned, anbefalingen kom: for hele perioden en median på %s og en 90-percentil på %s dage. Tabellen ved siden af har tallene."},
	"k.lead.help":         {"Counted in the month the council's first recommendation came. Half the children got it within the median; nine in ten within the 90th percentile.", "Talt i den måned, samrådets første anbefaling kom. Halvdelen af børnene fik den inden for medianen; ni ud af ti inden for 90-percentilen."},
	"k.c.practices":       {"Referrals per GP practice", "Henvisninger pr. lægepraksis"},
	"k.c.practices.desc":  {"Bar chart of the referrals from each GP practice, %s, most first: %s practices. The table beside it has the numbers.", "Søjlediagram over henvisningerne fra hver lægepraksis, %s, flest først: %s praksisser. Tabellen ved siden af har tallene."},
	"k.practices.more":    {"The chart shows the practices that referred most; %s more are in the table.", "Diagrammet viser de praksisser, der henviste mest; %s flere står i tabellen."},
	"k.c.rejections":      {"Referrals turned down by child psychiatry", "Henvisninger afvist af børne- og ungdomspsykiatrien"},
	"k.c.rejections.desc": {"Bar chart of the letters from child psychiatry turning a referral down, per month, %s: %s in all. The table beside it has the numbers.", "Søjlediagram over brevene fra børne- og ungdomspsykiatrien, der afviser en henvisning, pr. måned, %s: %s i alt. Tabellen ved siden af har tallene."},
	"k.table":             {"The numbers", "Tallene"},
	"k.month":             {"Month", "Måned"},
	"k.total":             {"Period", "Perioden"},
	"k.recommended":       {"Recommendations", "Anbefalinger"},
	"k.practice":          {"Practice", "Praksis"},
	"k.ids":               {"GLN / SOR", "GLN / SOR"},
	"k.rejected":          {"Turned down", "Afvist"},
	"k.none":              {"No referrals in the period.", "Ingen henvisninger i perioden."},
	"k.notkept":           {"Months before %s are not kept: the register keeps a referral for %s days (council.retention_days). They show “not kept”, and the period's totals count from %s.", "Måneder før %s er ikke gemt: registeret gemmer en henvisning i %s dage (council.retention_days). De står som “ikke gemt”, og periodens tal tælles fra %s."},
	"k.notkept.cell":      {"not kept", "ikke gemt"},

	// Journey notes: the hub's own notes on a step, said in words.
	"n.delivered":     {"Delivered.", "Leveret."},
	"n.existing":      {"The destination had it already; no second copy was made.", "Modtageren havde det allerede; der blev ikke lavet en kopi mere."},
	"n.bulk":          {"Sent again with all that matched a filter (replay %s).", "Sendt igen sammen med alle, der passede på et filter (genafsendelse %s)."},
	"n.ack.positive":  {"Positive acknowledgement.", "Positiv kvittering."},
	"n.ack.negative":  {"Negative acknowledgement: the receiver refused the letter.", "Negativ kvittering: modtageren afviste brevet."},
	"n.ack.transient": {"The receiver has a passing problem; the letter is sent again by itself.", "Modtageren har et forbigående problem; brevet sendes igen af sig selv."},

	// Names the console showed untranslated before.
	"kind.acknowledgement":   {"acknowledgement", "kvittering"},
	"kind.notification":      {"notice", "meddelelse"},
	"step.held":              {"waits for an earlier letter of its thread", "venter på et tidligere brev i tråden"},
	"step.released":          {"released to go on", "frigivet til at blive sendt videre"},
	"givenby.custody-holder": {"custody holder", "forældremyndighedsindehaver"},
	"givenby.young-person":   {"young person (15–17)", "den unge (15–17 år)"},

	// The audit log's actions, results and the system's own reasons.
	"a.action.login":                               {"logged in", "loggede ind"},
	"a.action.login-failed":                        {"failed login", "mislykket login"},
	"a.action.logout":                              {"logged out", "loggede ud"},
	"a.action.replay":                              {"replayed a letter", "sendte et brev igen"},
	"a.action.replay-filter":                       {"replayed all that matched a filter", "sendte alle, der passede på et filter, igen"},
	"a.action.discard":                             {"discarded a letter", "kasserede et brev"},
	"a.action.release-thread":                      {"released a held thread", "frigav en tilbageholdt tråd"},
	"a.action.show-content":                        {"showed a letter's content", "viste et brevs indhold"},
	"a.action.search-cpr":                          {"searched by CPR number", "søgte på CPR-nummer"},
	"a.action.consent-record":                      {"recorded a consent", "registrerede et samtykke"},
	"a.action.consent-withdraw":                    {"recorded a withdrawal of consent", "registrerede en tilbagekaldelse af samtykke"},
	"a.action.consent-read":                        {"read a child's consents", "læste et barns samtykker"},
	"a.action.put-back":                            {"put a rejected file back", "lagde en afvist fil tilbage"},
	"a.action.login-throttled":                     {"logins held back after failed attempts", "login holdt tilbage efter mislykkede forsøg"},
	"a.action.api-token-throttled":                 {"API tokens held back after wrong tokens", "API-nøgler holdt tilbage efter forkerte nøgler"},
	"a.action.meeting-add":                         {"added a council meeting", "tilføjede et samrådsmøde"},
	"a.action.meeting-move":                        {"moved a council meeting", "flyttede et samrådsmøde"},
	"a.action.meeting-cancel":                      {"cancelled a council meeting", "aflyste et samrådsmøde"},
	"a.action.referral-withdraw":                   {"withdrew a referral to the council", "trak en henvisning til samrådet tilbage"},
	"a.action.referral-reinstate":                  {"reinstated a withdrawn referral to the council", "genoptog en henvisning til samrådet, der var trukket tilbage"},
	"a.action.referral-move":                       {"moved a child to another council meeting", "flyttede et barn til et andet samrådsmøde"},
	"a.action.agenda-read":                         {"read the agenda with the children's names", "læste dagsordenen med børnenes navne"},
	"a.action.agenda-export":                       {"took out the agenda with the children's names", "udtog dagsordenen med børnenes navne"},
	"a.result.refused":                             {"refused", "afvist"},
	"a.result.failed":                              {"failed", "fejlede"},
	"a.result.ok":                                  {"ok", "ok"},
	"a.result.denied":                              {"denied", "afvist"},
	"a.result.shown":                               {"shown", "vist"},
	"a.result.searched":                            {"searched", "søgt"},
	"a.result.recorded":                            {"recorded", "registreret"},
	"a.result.started":                             {"started", "startet"},
	"a.result.bulk":                                {"%s: %s sent again (%s still without consent), %s no longer parked, %s failed, of %s", "%s: %s sendt igen (%s stadig uden samtykke), %s ikke længere i køen, %s fejlede, af %s"},
	"a.result.retry queue":                         {"retry queue", "fejlkøen"},
	"a.reason.unknown user name":                   {"unknown user name", "ukendt brugernavn"},
	"a.reason.wrong password":                      {"wrong password", "forkert adgangskode"},
	"a.reason.console login":                       {"console login", "login i konsollen"},
	"a.reason." + adapters.ErrUnknownInput.Error(): {adapters.ErrUnknownInput.Error(), "ingen afvist fil med det id (en anden har måske håndteret den)"},
	"a.reason." + adapters.ErrAnswered.Error():     {adapters.ErrAnswered.Error(), "afsenderen har allerede fået svar for et brev i filen; MedCom gentager samme svar til en kopi, så det ændrer intet at læse den igen: bed afsenderen sende brevet igen med et nyt brev-id"},
	"a.throttled.logins":                           {"%s: %s failed logins; next attempt in %s", "%s: %s mislykkede login; næste forsøg om %s"},
	"a.throttled.global":                           {"%s: more than %s login attempts a second; next attempt in %s", "%s: mere end %s loginforsøg i sekundet; næste forsøg om %s"},
	"a.throttled.tokens":                           {"%s wrong API tokens from this address; next attempt in %s", "%s forkerte API-nøgler fra denne adresse; næste forsøg om %s"},
	"a.scope.this address":                         {"this address", "denne adresse"},
	"a.scope.this user name":                       {"this user name", "dette brugernavn"},
	"a.scope.this browser":                         {"this browser", "denne browser"},
	"a.scope.all addresses together":               {"all addresses together", "alle adresser tilsammen"},
	"u.seconds.one":                                {"%s second", "%s sekund"},
	"u.minutes.one":                                {"%s minute", "%s minut"},
	"u.and":                                        {"%s and %s", "%s og %s"},
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
	gatewayAnswer = explain{
		what: [2]string{"The receiving system answered with something the hub could not use.", "Det modtagende system svarede med noget, hubben ikke kunne bruge."},
		do:   [2]string{"Tell operations; replay when the system answers properly again.", "Kontakt drift; send igen, når systemet svarer korrekt igen."},
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
	"not_routed": {
		what: [2]string{"Replayed, but this destination no longer takes the letter: the routes, the letter's receivers or the receiver directory changed since it parked.", "Sendt igen, men denne modtager tager ikke længere brevet: reglerne, brevets modtagere eller modtagerkataloget er ændret, siden det blev parkeret."},
		do:   [2]string{"If it should not go there, discard it with a reason; otherwise ask operations to correct the routes, then replay.", "Skal det ikke derhen, så kassér det med en begrundelse; ellers bed drift rette reglerne, og send så igen."}},
	"http_409": {
		what: [2]string{"The receiving system answered that the letter conflicts with one it is storing at the same moment.", "Det modtagende system svarede, at brevet er i konflikt med et, det gemmer i samme øjeblik."},
		do:   [2]string{"It is tried again by itself; if it parks, replay it: the receiver then finds the copy it stored.", "Det prøves igen af sig selv; parkeres det, så send det igen: modtageren finder så den kopi, den har gemt."}},
	"thread_held": {
		what: [2]string{"Waits for an earlier letter of its thread, parked at the same destination.", "Venter på et tidligere brev i samme tråd, der er parkeret hos samme modtager."},
		do:   [2]string{"It goes on by itself once the earlier letter is delivered or discarded; if it need not wait, release the thread.", "Det sendes videre af sig selv, når det tidligere brev er leveret eller kasseret; skal det ikke vente, så frigiv tråden."}},
	"negative_ack": {
		what: [2]string{"The receiver refused the letter with a negative acknowledgement.", "Modtageren afviste brevet med en negativ kvittering."},
		do:   [2]string{"The technical detail has the receiver's error code. Fix the cause (receiver or content), then replay: it is sent under new MedCom ids. If it should not go there, discard it with a reason.", "Den tekniske detalje har modtagerens fejlkode. Ret årsagen (modtager eller indhold), og send så igen: brevet sendes med nye MedCom-id'er. Skal det ikke derhen, så kassér det med en begrundelse."}},
	"receiver_unresolved": {
		what: [2]string{"The hub cannot tell whom the letter is for at this destination.", "Hubben kan ikke afgøre, hvem brevet skal til hos denne modtager."},
		do:   [2]string{"Check the receiver (GLN or SOR) in the letter, and ask operations to check the hub's receiver directory; then replay.", "Tjek modtageren (GLN eller SOR) i brevet, og bed drift tjekke hubbens modtagerkatalog; send så igen."}},
	"receiver_format": {
		what: [2]string{"The receiver directory names no MedCom format the hub writes for this receiver.", "Modtagerkataloget angiver intet MedCom-format, hubben kan skrive til denne modtager."},
		do:   [2]string{"Ask operations to correct the receiver directory, then replay.", "Bed drift rette modtagerkataloget, og send så igen."}},
	"blob_missing": {
		what: [2]string{"A stored part of the letter (its original or an attachment) is missing from the hub's store.", "En gemt del af brevet (originalen eller et bilag) mangler i hubbens lager."},
		do:   [2]string{"Tell operations and give them the letter id. If it cannot be restored, ask the sender to send it again and discard this copy with a reason.", "Kontakt drift, og giv dem brevets id. Kan det ikke genskabes, så bed afsenderen sende det igen, og kassér denne kopi med en begrundelse."}},
	"unclassified": {
		what: [2]string{"An unexpected error happened.", "Der skete en uventet fejl."},
		do:   [2]string{"Tell operations and give them the letter id; replay when they have checked it.", "Kontakt drift, og giv dem brevets id; send igen, når de har tjekket det."}},
	"bad_bundle": gatewayAnswer, "bad_metadata": gatewayAnswer, "bad_patient": gatewayAnswer, "bad_resource": gatewayAnswer, "foreign_link": gatewayAnswer, "fhir_version": gatewayAnswer,
	"busy": unavailable, "blob_unavailable": hubStorage,
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
	// The adapter's own reason is English: the Danish console says in
	// Danish that the destination refused, and shows the reason as the
	// technical detail.
	what := detail
	if what == "" {
		what = code
	}
	if lang == "da" {
		what = "Modtageren kunne ikke tage imod brevet (se den tekniske detalje)."
	}
	do := [2]string{"Fix the cause at the destination, then replay. If the letter should not go there, discard it with a reason.", "Ret årsagen hos modtageren, og send så igen. Skal brevet ikke derhen, så kassér det med en begrundelse."}
	return Explanation{What: what, Do: do[i]}
}

// journeyNote says in words what a journey step's code or reason means:
// the hub's own notes are English, the Danish console says them in Danish.
func journeyNote(lang string, ev journey.Event) string {
	switch {
	case (ev.Step == journey.Delivered || ev.Step == journey.PartlyDelivered) && (ev.Code == "delivered" || ev.Code == "existing"):
		return tr(lang, "n."+ev.Code)
	case ev.Step == journey.Acknowledged:
		switch ev.Code {
		case "positive", "ok":
			return tr(lang, "n.ack.positive")
		case "transient-error":
			return tr(lang, "n.ack.transient")
		case "negative", "vans-negative", "fatal-error":
			return tr(lang, "n.ack.negative")
		}
	case ev.Code == "" && strings.HasPrefix(ev.Reason, "bulk replay "):
		return tr(lang, "n.bulk", strings.TrimPrefix(ev.Reason, "bulk replay "))
	}
	if ev.Code != "" {
		return explainCode(lang, ev.Code, ev.Reason).What
	}
	return ev.Reason
}

// bulkResult is how pipeline.runBulk words a bulk replay's outcome in the
// audit log.
var bulkResult = regexp.MustCompile(`^(done|stopped|interrupted|running): replayed (\d+) \(still denied (\d+)\), gone (\d+), failed (\d+) of (\d+)$`)

// The throttles' reasons as console.login and httpapi.bearer word them.
var (
	throttledLogins = regexp.MustCompile(`^(this address|this user name|this browser|all addresses together): (\d+) failed logins; next attempt in (\S+)$`)
	throttledGlobal = regexp.MustCompile(`^(all addresses together): more than (\S+) login attempts a second; next attempt in (\S+)$`)
	throttledTokens = regexp.MustCompile(`^(\d+) wrong API tokens from this address; next attempt in (\S+)$`)
)

// auditReason says an audit record's reason in the console's language: the
// hub's own reasons are translated, a person's are shown as written.
func auditReason(lang, s string) string {
	wait := func(v string) string {
		d, err := time.ParseDuration(v)
		if err != nil {
			return v
		}
		return waitWords(lang, d)
	}
	if m := throttledLogins.FindStringSubmatch(s); m != nil {
		return tr(lang, "a.throttled.logins", tr(lang, "a.scope."+m[1]), m[2], wait(m[3]))
	}
	if m := throttledGlobal.FindStringSubmatch(s); m != nil {
		return tr(lang, "a.throttled.global", tr(lang, "a.scope."+m[1]), m[2], wait(m[3]))
	}
	if m := throttledTokens.FindStringSubmatch(s); m != nil {
		return tr(lang, "a.throttled.tokens", m[1], wait(m[2]))
	}
	return trOr(lang, "a.reason."+s, s)
}

// waitWords says a wait of whole seconds in words: "1 minute and 4
// seconds", not Go's "1m4s".
func waitWords(lang string, d time.Duration) string {
	d = d.Round(time.Second)
	unit := func(n int, key string) string {
		if n == 1 {
			key += ".one"
		}
		return tr(lang, key, formatNum(lang, n))
	}
	mins, secs := int(d/time.Minute), int(d%time.Minute/time.Second)
	switch {
	case mins == 0:
		return unit(secs, "u.seconds")
	case secs == 0:
		return unit(mins, "u.minutes")
	}
	return tr(lang, "u.and", unit(mins, "u.minutes"), unit(secs, "u.seconds"))
}

// auditResult says an audit record's result in the console's language.
func auditResult(lang, s string) string {
	if m := bulkResult.FindStringSubmatch(s); m != nil {
		return tr(lang, "a.result.bulk", tr(lang, "b.state."+m[1]), m[2], m[3], m[4], m[5], m[6])
	}
	return trOr(lang, "a.result."+s, s)
}
