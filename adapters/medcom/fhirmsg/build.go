package fhirmsg

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"mime"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/samhub/samhub/adapters/body"
	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
	"github.com/samhub/samhub/pipeline/letter"
)

// fullUrl bases as in MedCom's published and certification examples, which
// all use RESTful fullUrls with relative references ("Organization/<id>").
const (
	ccBase  = "https://medcomfhir.dk/ig/carecommunication/"
	ackBase = "https://medcomfhir.dk/ig/acknowledgement/"
)

// medcomAckCodes are MedCom's own issue codes; other MSG_ codes are FHIR's.
var medcomAckCodes = map[string]bool{
	"MSG_Receiver_Identifier_UNKNOWN": true, "MSG_Receiver_Identifier_MISSING": true,
	"MSG_RECEIVER_UNABLE_TO_RECEIVE_MSG_TYPE": true, "MSG_VALUESET_VALUE_UNKNOWN": true,
	"MSG_CodeSystem_VALUE_UNKNOWN": true, "MSG_Element_To_Long": true, "MSG_Datatype_Wrong": true,
	"MSG_Mailbox_Out_Of_Operation": true, "MSG_Damaged_durin_transport": true,
}

// derivedID makes a UUID (version-4 layout) from seed parts, so that one
// message's resource ids follow from its MessageHeader.id: a resend or a
// rebuilt acknowledgement comes out byte for byte the same.
func derivedID(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	var u uuid.UUID
	copy(u[:], sum[:16])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u.String()
}

func fhirTime(t time.Time) string { return t.Format(time.RFC3339) }

func orgResource(id string, o Organization) *node {
	return resource("Organization", id, profOrg, "Organization "+o.Name,
		list(cplx("identifier", prim("system", sysSOR), prim("value", o.SOR))),
		list(cplx("identifier", prim("system", sysGLN), prim("value", o.GLN))),
		prim("name", o.Name))
}

func destination(receiverRef, receiverSOR string) *node {
	return list(cplx("destination",
		extension(extDestUse, coding("valueCoding", sysDestUse, "primary")),
		prim("endpoint", sorEndpoint+receiverSOR),
		ref("receiver", receiverRef)))
}

func checkParty(what string, o Organization) error {
	var errs []error
	if o.SOR == "" {
		errs = append(errs, fmt.Errorf("%s.SOR: must not be empty", what))
	}
	if o.GLN == "" {
		errs = append(errs, fmt.Errorf("%s.GLN: must not be empty", what))
	}
	return errors.Join(errs...)
}

// provenanceResource writes one Provenance. orgRef maps an agent to its
// Organization reference in the new Bundle.
func provenanceResource(id, profile string, p provenance, agentRef string) *node {
	kids := []*node{
		list(ref("target", p.target)),
		prim("occurredDateTime", p.occurred),
		prim("recorded", p.recorded),
		cplx("activity", list(coding("coding", sysAct, p.activity))),
	}
	if agentRef != "" {
		kids = append(kids, list(cplx("agent", ref("who", agentRef))))
	}
	for _, e := range p.entities {
		what := ref("what", e.ref)
		if e.ref == "" {
			what = cplx("what", cplx("identifier", prim("value", e.ident)))
		}
		kids = append(kids, list(cplx("entity", prim("role", e.role), what)))
	}
	return resource("Provenance", id, profile, "Provenance: "+p.activity, kids...)
}

// BuildAcknowledgement answers the message of with code ok, transient-error
// or fatal-error (issues required unless ok), from self to of's sender, in
// of's encoding. Ids derive from of.HeaderID, code and now: the same inputs
// give the same bytes, which is how a duplicate gets "the same
// acknowledgement" (keep now of the first answer, or its bytes).
func BuildAcknowledgement(of *Message, code string, issues []Issue, self Organization, now time.Time) ([]byte, error) {
	if of == nil {
		return nil, errors.New("acknowledged message: nil")
	}
	var errs []error
	if of.HeaderID == "" {
		errs = append(errs, errors.New("acknowledged message: MessageHeader.id is missing; it cannot be acknowledged"))
	}
	if of.Event == EventAcknowledgement {
		errs = append(errs, errors.New("acknowledged message: is an acknowledgement; acknowledgements are never acknowledged"))
	}
	switch code {
	case AckOK, AckTransientError, AckFatalError:
	default:
		errs = append(errs, fmt.Errorf("code: must be %s, %s or %s", AckOK, AckTransientError, AckFatalError))
	}
	if code != AckOK && len(issues) == 0 {
		errs = append(errs, errors.New("issues: at least one is required when the code is not ok"))
	}
	errs = append(errs, checkParty("self", self), checkParty("acknowledged message sender", of.Sender))
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("build acknowledgement: %w", err)
	}
	if now.IsZero() {
		now = time.Now()
	}
	seed := []string{"ack", of.HeaderID, code, now.UTC().Format(time.RFC3339Nano)}
	id := func(name string) string { return derivedID(append(seed, name)...) }
	hid, bid := id("header"), id("bundle")
	selfID, destID, ooID := id("org-self"), id("org-dest"), id("outcome")
	selfRef, destRef := "Organization/"+selfID, "Organization/"+destID

	var response []*node
	response = append(response, prim("identifier", of.HeaderID), prim("code", code))
	if len(issues) > 0 {
		response = append(response, ref("details", "OperationOutcome/"+ooID))
	}
	header := resource("MessageHeader", hid, profAckHeader, "Acknowledgement "+code+" of MessageHeader "+of.HeaderID,
		coding("eventCoding", sysEvent, EventAcknowledgement),
		destination(destRef, of.Sender.SOR),
		ref("sender", selfRef),
		cplx("source", prim("endpoint", sorEndpoint+self.SOR)),
		cplx("response", response...))

	entries := []*node{bundleEntry(ackBase+"MessageHeader/"+hid, header)}
	// The acknowledged message's latest Provenance, then ours (governance rule 22).
	if of.own != nil {
		agent := ""
		if a := of.own.agent; a != nil {
			switch a.SOR {
			case of.Sender.SOR:
				agent = destRef
			case self.SOR:
				agent = selfRef
			}
		}
		if agent == "" {
			agent = destRef
		}
		pid := id("prov-original")
		entries = append(entries, bundleEntry(ackBase+"Provenance/"+pid, provenanceResource(pid, profMsgProv, *of.own, agent)))
	}
	pid := id("prov-ack")
	ackProv := provenance{
		target: "MessageHeader/" + hid, occurred: fhirTime(now), recorded: fhirTime(now), activity: actAck,
		entities: []provEntity{{role: "revision", ref: "MessageHeader/" + of.HeaderID}},
	}
	entries = append(entries,
		bundleEntry(ackBase+"Provenance/"+pid, provenanceResource(pid, profMsgProv, ackProv, selfRef)),
		bundleEntry(ackBase+"Organization/"+selfID, orgResource(selfID, self)),
		bundleEntry(ackBase+"Organization/"+destID, orgResource(destID, of.Sender)))
	if len(issues) > 0 {
		var kids []*node
		for _, is := range issues {
			// details: the issue's code where it has one, and its text.
			var dk []*node
			text := is.Text
			if strings.HasPrefix(is.Details, "MSG_") && isCode(is.Details) {
				sys := sysFHIROO
				if medcomAckCodes[is.Details] {
					sys = sysAckErr
				}
				dk = append(dk, list(coding("coding", sys, is.Details)))
			} else if text == "" {
				text = is.Details
			}
			if text != "" {
				dk = append(dk, prim("text", text))
			}
			details := cplx("details", dk...)
			sev, c := is.Severity, is.Code
			if sev == "" {
				sev = "error"
			}
			if c == "" {
				c = "processing"
			}
			kids = append(kids, list(cplx("issue", prim("severity", sev), prim("code", c), details)))
		}
		entries = append(entries, bundleEntry(ackBase+"OperationOutcome/"+ooID,
			resource("OperationOutcome", ooID, profAckOutcome, "Acknowledgement issues", kids...)))
	}
	root := cplx("Bundle", append([]*node{
		prim("id", bid), meta(profAckMessage), prim("type", "message"), prim("timestamp", fhirTime(now)),
	}, entries...)...)
	return encode(root, of.Encoding)
}

// EpisodeOfCare is an episode-of-care identifier (Encounter.episodeOfCare
// in FHIR, EpisodeOfCareIdentifier in XDIS91). System names its issuer
// (https://sor2.sum.dsdn.dk/#id=<SOR id>); empty means the receiver of
// the reply, who sent the letter it answers (an XDIS91 letter names none).
type EpisodeOfCare struct{ System, Value string }

// Author is the person who wrote a new text segment (Practitioner +
// PractitionerRole in the Bundle).
type Author struct {
	GivenName, FamilyName string
	Role                  string // free text, e.g. "Koordinator"; MedCom's role codes are not mapped
	Phone                 string
}

// BuildOptions controls BuildCareCommunication.
type BuildOptions struct {
	Encoding         string       // EncodingXML or EncodingJSON
	Self, To         Organization // sender (us) and receiver; both need SOR and GLN
	Mode             string       // ModeNew, ModeReply or ModeForward
	PreviousHeaderID string       // reply/forward: the MessageHeader.id answered ("GLN#letterid" for OIOXML)
	ThreadID         string       // reply: the thread's Communication.identifier; empty on new/forward makes one
	HeaderID         string       // keep on resend; empty makes a new one
	BundleID         string       // new per transmission; empty makes a new one
	Now              time.Time    // zero means time.Now()
	// Optional additions beyond the shared contract:
	Author   Author   // the writer of the new text; defaults to the sender's name
	Previous *Message // the message replied to or forwarded: its segments, Provenances and episode of care are carried over
	// Episode is the episode-of-care id of the message a reply answers,
	// when Previous is not at hand (MedCom: a reply carries it over,
	// whatever format the answered letter came in).
	Episode *EpisodeOfCare
	// parts, set by WriteCareCommunication, stands for the attachments
	// that are not inline: their bytes are sent from their readers.
	parts *body.Template
}

// BuildCareCommunication writes l as a new, reply or forward
// CareCommunication. l supplies the patient, category, topic (or subject),
// priority, text and attachments. It returns the bytes and the
// MessageHeader.id (the letter's MedCom identity; keep it for resends).
func BuildCareCommunication(l *letter.Letter, opt BuildOptions) ([]byte, string, error) {
	return buildCareCommunication(l, opt)
}

// WriteCareCommunication is BuildCareCommunication for a letter whose
// attachments are opened rather than held: the message is a body.Body
// whose attachment data are read, and base64-encoded, as it is written
// (a 100 MB attachment is never held whole, nor its 133 MB of base64).
func WriteCareCommunication(l *letter.Letter, opt BuildOptions) (*body.Body, string, error) {
	opt.parts = &body.Template{}
	doc, id, err := buildCareCommunication(l, opt)
	if err != nil {
		return nil, "", err
	}
	b, err := opt.parts.Body(doc)
	if err != nil {
		return nil, "", fmt.Errorf("build carecommunication: %w", err)
	}
	return b, id, nil
}

func buildCareCommunication(l *letter.Letter, opt BuildOptions) ([]byte, string, error) {
	if l == nil {
		return nil, "", errors.New("build carecommunication: letter is nil")
	}
	l = foldTextFiles(l)
	prev := opt.Previous
	if opt.PreviousHeaderID == "" && prev != nil {
		opt.PreviousHeaderID = prev.HeaderID
	}
	if opt.ThreadID == "" && opt.Mode == ModeReply && prev != nil {
		opt.ThreadID = prev.ThreadID
	}
	topic := l.Topic
	if topic == "" {
		topic = l.Subject
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch opt.Encoding {
	case EncodingXML, EncodingJSON:
	default:
		bad("options.Encoding: must be %q or %q", EncodingXML, EncodingJSON)
	}
	switch opt.Mode {
	case ModeNew:
	case ModeReply:
		if opt.PreviousHeaderID == "" {
			bad("options.PreviousHeaderID: a reply must name the message it answers")
		}
		if opt.ThreadID == "" {
			bad("options.ThreadID: a reply keeps the thread id of the message it answers")
		}
	case ModeForward:
		if opt.PreviousHeaderID == "" {
			bad("options.PreviousHeaderID: a forward must name the message it passes on")
		}
	default:
		bad("options.Mode: must be %q, %q or %q", ModeNew, ModeReply, ModeForward)
	}
	if e := checkParty("options.Self", opt.Self); e != nil {
		errs = append(errs, e)
	}
	if e := checkParty("options.To", opt.To); e != nil {
		errs = append(errs, e)
	}
	pat := l.Patient
	switch {
	case pat == nil:
		bad("letter.patient: must be present")
	case pat.CPR != "":
		if msg := checkCPR(pat.CPR); msg != "" {
			bad("letter.patient.cpr: %s", msg)
		}
	case pat.ReplacementID != "":
		sys := pat.ReplacementSystem
		if sys == "" {
			sys = replacementSystemOf(pat.ReplacementID)
		}
		if msg := checkReplacement(sys, pat.ReplacementID); msg != "" {
			bad("letter.patient.replacementId: %s", msg)
		}
	default:
		bad("letter.patient: must have a CPR or a replacement CPR")
	}
	// An empty family name is written as unknown (data-absent-reason), as
	// MedCom's patient profile allows: a child not yet registered keeps
	// the names that are known and none is made up.
	if strings.TrimSpace(l.Text) == "" {
		bad("letter.text: must not be empty (a CareCommunication needs a text segment)")
	}
	// The receiver checks these too; refuse to send what it would reject.
	for _, c := range codeProblems(l.Category, topic, l.Priority) {
		bad("letter.%s: %s", c.field, c.msg)
	}
	for i, a := range l.Attachments {
		if a.Data == nil && (opt.parts == nil || a.ContentType == contentTypeLink) {
			bad("letter.attachments[%d].data: must be loaded before building", i)
		}
		if a.Name == "" {
			bad("letter.attachments[%d].name: must not be empty (it becomes the title)", i)
		}
		switch {
		case a.ContentType == contentTypeLink:
			if strings.TrimSpace(string(a.Data)) == "" {
				bad("letter.attachments[%d].data: the link has no address", i)
			}
		case !slices.Contains(AttachmentTypes, mediaType(a.ContentType)):
			// The value set is bound as required: the receiver would refuse
			// the whole message (fatal-error) for it.
			bad("letter.attachments[%d].contentType: must be one of MedCom's attachment types %s (a file of another type cannot travel in a CareCommunication)", i, strings.Join(AttachmentTypes, ", "))
		case a.Len() <= 0:
			// Written without data it would read as an earlier
			// attachment a reply lists, and the file would be lost.
			bad("letter.attachments[%d].data: the file is empty", i)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, "", fmt.Errorf("build carecommunication: %w", err)
	}

	now := opt.Now
	if now.IsZero() {
		now = time.Now()
	}
	hid := opt.HeaderID
	if hid == "" {
		hid = uuid.NewString()
	}
	bid := opt.BundleID
	if bid == "" {
		bid = uuid.NewString()
	}
	id := func(name string) string { return derivedID("cc", hid, name) }
	thread := opt.ThreadID
	if thread == "" {
		thread = "urn:uuid:" + id("thread")
	}
	activity := map[string]string{ModeNew: actNew, ModeReply: actReply, ModeForward: actForward}[opt.Mode]

	// Organizations by SOR: us, the receiver, and any others named by
	// carried-over segments and Provenances.
	orgs := []Organization{opt.Self, opt.To}
	orgRef := map[string]string{}
	addOrg := func(o Organization) string {
		if o.SOR == "" {
			return ""
		}
		if r, ok := orgRef[o.SOR]; ok {
			return r
		}
		r := "Organization/" + id("org-"+o.SOR)
		orgRef[o.SOR] = r
		if o != opt.Self && o != opt.To {
			orgs = append(orgs, o)
		}
		return r
	}
	selfRef, toRef := addOrg(opt.Self), addOrg(opt.To)
	if opt.Self.SOR == opt.To.SOR {
		toRef = selfRef
	}

	// Authors: PractitionerRole + Practitioner pairs.
	type authorRes struct {
		a       *author
		roleID  string
		practID string
	}
	var authors []authorRes
	authorRef := func(a *author) string {
		if a == nil {
			return ""
		}
		for _, x := range authors {
			if x.a == a {
				return "PractitionerRole/" + x.roleID
			}
		}
		n := fmt.Sprint(len(authors))
		authors = append(authors, authorRes{a: a, roleID: id("role-" + n), practID: id("practitioner-" + n)})
		return "PractitionerRole/" + authors[len(authors)-1].roleID
	}
	me := &author{family: opt.Author.FamilyName, roleText: opt.Author.Role, phone: opt.Author.Phone}
	if opt.Author.GivenName != "" {
		me.given = strings.Fields(opt.Author.GivenName)
	}
	if me.family == "" && len(me.given) == 0 {
		me.family = opt.Self.Name
	}
	if me.roleText == "" && me.roleCode == "" {
		me.roleText = "Afsender"
	}

	// Segments: carried over first, then the new text and attachments.
	var segs []segment
	if prev != nil && opt.Mode != ModeNew {
		for _, s := range prev.segments {
			if s.att != nil && opt.Mode == ModeReply {
				// a reply lists earlier attachments without their data
				a := *s.att
				a.data, a.url = nil, ""
				s.att = &a
			}
			segs = append(segs, s)
		}
	}
	newText := segment{id: "urn:uuid:" + id("segment-text"), assignerSOR: opt.Self.SOR, time: fhirTime(now), text: l.Text, author: me}
	segs = append(segs, newText)
	mine := []string{newText.id}
	for i, a := range l.Attachments {
		data := a.Data
		if data == nil && a.Len() > 0 {
			data = opt.parts.Mark(fmt.Sprintf("attachment %d", i+1), a.Open, a.Len())
		}
		att := &segAttachment{contentType: mediaType(a.ContentType), title: a.Name, data: data}
		if a.ContentType == contentTypeLink { // a link travels as contentAttachment.url
			att = &segAttachment{title: a.Name, url: strings.TrimSpace(string(a.Data))}
		}
		s := segment{
			id: "urn:uuid:" + id(fmt.Sprintf("segment-attachment-%d", i)), assignerSOR: opt.Self.SOR, time: fhirTime(now),
			att: att,
		}
		segs = append(segs, s)
		mine = append(mine, s.id)
	}

	var payload []*node
	for _, s := range segs {
		assigner := ""
		if s.assignerSOR != "" {
			assigner = addOrg(findOrg(s.assignerSOR, opt, prev))
		}
		kids := []*node{
			extension(extDateTime, prim("valueDateTime", s.time)),
			extension(extIdentifier, cplx("valueIdentifier", prim("value", s.id), ref("assigner", assigner))),
		}
		if s.author != nil {
			kids = append(kids, extension(extPractitioner, ref("valueReference", authorRef(s.author))))
			if s.author.phone != "" || s.att == nil {
				// A text segment must name its author's contact; the number
				// is written when known (MedCom's ContactPoint: value "if known").
				kids = append(kids, extension(extContact, cplx("valueContactPoint", prim("system", "phone"), prim("value", s.author.phone))))
			}
		}
		if s.att != nil {
			var data string
			if s.att.data != nil {
				data = base64Std(s.att.data)
			}
			kids = append(kids, cplx("contentAttachment", prim("contentType", s.att.contentType), prim("data", data),
				prim("url", s.att.url), prim("title", s.att.title), prim("creation", s.att.creation)))
		} else {
			kids = append(kids, &node{name: "contentString", val: s.text, hasVal: true})
		}
		payload = append(payload, list(cplx("payload", kids...)))
	}

	commID, patID, provID, encID := id("communication"), id("patient"), id("provenance"), id("encounter")
	ep := opt.Episode
	if ep == nil && prev != nil && prev.episode != nil {
		ep = &EpisodeOfCare{System: prev.episode.system, Value: prev.episode.value}
	}
	var encounter *node
	if ep != nil && ep.Value != "" && opt.Mode == ModeReply {
		sys := ep.System
		if sys == "" {
			sys = sorEndpoint + opt.To.SOR
		}
		encounter = resource("Encounter", encID, "http://medcomfhir.dk/ig/core/StructureDefinition/medcom-core-encounter", "Encounter (episode of care)",
			prim("status", "unknown"),
			coding("class", "http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB"),
			ref("subject", "Patient/"+patID),
			list(cplx("episodeOfCare", cplx("identifier", prim("system", sys), prim("value", ep.Value)))))
	}
	var encRef *node
	if encounter != nil {
		encRef = ref("encounter", "Encounter/"+encID)
	}
	comm := resource("Communication", commID, profCCComm, "CareCommunication, category "+l.Category,
		append([]*node{
			list(cplx("identifier", prim("value", thread))),
			prim("status", "unknown"),
			list(cplx("category", list(coding("coding", sysCat, l.Category)))),
			prim("priority", l.Priority),
			ref("subject", "Patient/"+patID),
			cplx("topic", prim("text", topic)),
			encRef,
		}, payload...)...)

	header := resource("MessageHeader", hid, profCCHeader, "CareCommunication message "+hid,
		coding("eventCoding", sysEvent, EventCareCommunication),
		destination(toRef, opt.To.SOR),
		ref("sender", selfRef),
		cplx("source", prim("endpoint", sorEndpoint+opt.Self.SOR)),
		list(ref("focus", "Communication/"+commID)),
		prim("definition", ccDefinition))

	patient := patientResource(patID, pat)

	// Provenances: carried-over history, then this message's.
	var provs []*node
	if prev != nil && opt.Mode != ModeNew {
		for i, p := range prev.provs {
			agent := ""
			if p.agent != nil {
				agent = addOrg(*p.agent)
			}
			pid := id(fmt.Sprintf("provenance-prev-%d", i))
			provs = append(provs, bundleEntry(ccBase+"Provenance/"+pid, provenanceResource(pid, profCCProv, p, agent)))
		}
	}
	own := provenance{target: "MessageHeader/" + hid, occurred: fhirTime(now), recorded: fhirTime(now), activity: activity}
	for _, s := range mine {
		own.entities = append(own.entities, provEntity{role: "source", ident: s})
	}
	if opt.PreviousHeaderID != "" && opt.Mode != ModeNew {
		e := provEntity{role: "revision", ref: "MessageHeader/" + opt.PreviousHeaderID}
		if strings.Contains(opt.PreviousHeaderID, "#") { // OIOXML/EDIFACT letter: "GLN#letterid"
			e = provEntity{role: "revision", ident: opt.PreviousHeaderID}
		}
		own.entities = append(own.entities, e)
	}
	provs = append(provs, bundleEntry(ccBase+"Provenance/"+provID, provenanceResource(provID, profCCProv, own, selfRef)))

	entries := []*node{
		bundleEntry(ccBase+"MessageHeader/"+hid, header),
		bundleEntry(ccBase+"Patient/"+patID, patient),
		bundleEntry(ccBase+"Communication/"+commID, comm),
	}
	for _, a := range authors {
		role := resource("PractitionerRole", a.roleID, profPractRole, "Role "+a.a.roleText,
			ref("practitioner", "Practitioner/"+a.practID),
			list(cplx("code", optionalCoding(a.a), prim("text", a.a.roleText))))
		var given []*node
		for _, g := range a.a.given {
			given = append(given, list(prim("given", g)))
		}
		pract := resource("Practitioner", a.practID, profPractioner, "Practitioner "+strings.Join(append(append([]string{}, a.a.given...), a.a.family), " "),
			list(cplx("name", append([]*node{prim("family", a.a.family)}, given...)...)))
		entries = append(entries, bundleEntry(ccBase+"PractitionerRole/"+a.roleID, role), bundleEntry(ccBase+"Practitioner/"+a.practID, pract))
	}
	for _, o := range orgs {
		oid := strings.TrimPrefix(orgRef[o.SOR], "Organization/")
		entries = append(entries, bundleEntry(ccBase+"Organization/"+oid, orgResource(oid, o)))
	}
	if encounter != nil {
		entries = append(entries, bundleEntry(ccBase+"Encounter/"+encID, encounter))
	}
	entries = append(entries, provs...)

	root := cplx("Bundle", append([]*node{
		prim("id", bid), meta(profCCMessage), prim("type", "message"), prim("timestamp", fhirTime(now)),
	}, entries...)...)
	out, err := encode(root, opt.Encoding)
	if err != nil {
		return nil, "", fmt.Errorf("build carecommunication: %w", err)
	}
	return out, hid, nil
}

// foldTextFiles puts a letter's plain-text files into its text. A
// CareCommunication carries only MedCom's attachment types (PDF and
// images, bound as required), but a region's discharge note often comes as
// a text/plain document: refused, the note would never reach the GP. Its
// words travel as the message's text instead, under the file's name, and
// a file that only repeats the text adds nothing. A text file in a charset
// not known here, or not held in memory (a large part), stays a file and
// is refused below with the allowed types.
func foldTextFiles(l *letter.Letter) *letter.Letter {
	var keep []letter.Attachment
	text, folded := strings.TrimSpace(l.Text), false
	for _, a := range l.Attachments {
		s, ok := plainText(a)
		if !ok {
			keep = append(keep, a)
			continue
		}
		folded = true
		switch s = strings.TrimSpace(s); {
		case s == "" || s == text:
		case text == "":
			text = s
		default:
			text += "\n\n" + a.Name + ":\n" + s
		}
	}
	if !folded {
		return l
	}
	c := *l
	c.Text, c.Attachments = text, keep
	return &c
}

// plainText is a text/plain file's words in UTF-8, when its charset is
// one the MedCom reader takes (xmlsafe.CharsetOf: UTF-8 or unnamed with
// UTF-8 bytes, US-ASCII, Latin-1, Latin-9, windows-1252).
func plainText(a letter.Attachment) (string, bool) {
	ct, params, err := mime.ParseMediaType(a.ContentType)
	if err != nil || ct != "text/plain" || a.Data == nil {
		return "", false
	}
	cs := params["charset"]
	cm, known := xmlsafe.CharsetOf(cs)
	switch {
	case cs != "" && !known:
		return "", false
	case cm == nil:
		return string(a.Data), utf8.Valid(a.Data)
	}
	b, err := cm.NewDecoder().Bytes(a.Data)
	return string(b), err == nil
}

// mediaType is a content type without its parameters, in lower case
// ("application/pdf" for "Application/PDF; name=x.pdf").
func mediaType(ct string) string {
	ct, _, _ = strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(ct))
}

func optionalCoding(a *author) *node {
	if a.roleCode == "" {
		return nil
	}
	return list(coding("coding", a.roleSystem, a.roleCode))
}

// findOrg returns the Organization with the given SOR among the parties
// known to a build.
func findOrg(sor string, opt BuildOptions, prev *Message) Organization {
	for _, o := range []Organization{opt.Self, opt.To} {
		if o.SOR == sor {
			return o
		}
	}
	if prev != nil {
		for _, o := range []Organization{prev.Sender, prev.Receiver} {
			if o.SOR == sor {
				return o
			}
		}
		for _, p := range prev.provs {
			if p.agent != nil && p.agent.SOR == sor {
				return *p.agent
			}
		}
	}
	return Organization{SOR: sor}
}

// patientResource writes the patient: the CPR number, or failing that the
// replacement CPR with its own system (see replacementSystemOf when none is
// named), and the name as far as it is known. An unknown family name is written as absent
// with a data-absent-reason; given names are left out when unknown.
func patientResource(id string, p *letter.Patient) *node {
	var ident *node
	if p.CPR != "" {
		ident = list(cplx("identifier", prim("system", sysCPR), prim("value", p.CPR)))
	} else {
		sys := p.ReplacementSystem
		if sys == "" {
			sys = replacementSystemOf(p.ReplacementID)
		}
		ident = list(cplx("identifier", prim("use", "temp"), prim("system", sys), prim("value", p.ReplacementID)))
	}
	family := prim("family", p.FamilyName)
	if p.FamilyName == "" {
		family = absentPrim("family", "unknown")
	}
	var given []*node
	for _, g := range strings.Fields(p.GivenName) {
		given = append(given, list(prim("given", g)))
	}
	text := "Patient " + strings.TrimSpace(p.GivenName+" "+p.FamilyName)
	if p.FamilyName == "" {
		text = strings.TrimSpace(text + " (family name unknown)")
	}
	return resource("Patient", id, profPatient, text,
		ident,
		list(cplx("name", append([]*node{prim("use", "official"), family}, given...)...)))
}

// replacementSystemOf names the system of a replacement CPR that came
// without one (XDIS91's AlternativeIdentifier names no issuer): DK-core's
// X-eCPR and D-eCPR patterns tell those apart (the 7th character, then two
// letters and a digit); anything else is written under the eCPR arc itself,
// MedCom core 2.x's E-CPR system, rather than claimed for an issuer.
func replacementSystemOf(v string) string {
	if len(v) != 10 || !allDigits(v[:6]) || !realDate(2000, atoi2(v[2:4]), atoi2(v[0:2])) ||
		v[7] < 'A' || v[7] > 'Z' || v[8] < 'A' || v[8] > 'Z' || v[9] < '0' || v[9] > '9' {
		return sysECPR
	}
	switch v[6] {
	case '1', '7':
		return sysXeCPR
	case '0', '5', '6':
		return sysDeCPR
	}
	return sysECPR
}
