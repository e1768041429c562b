package epj

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/epj/internal/fhir"
	"github.com/samhub/samhub/pipeline/letter"
)

// feed is one resource type the source polls and the search parameter
// that selects what is addressed to the municipality. DocumentReference has
// no recipient element; the gateway lists the addressee in context.related.
type feed struct {
	Type      string
	Addressee string
}

var feeds = []feed{
	{Type: "Communication", Addressee: "recipient:identifier"},
	{Type: "DocumentReference", Addressee: "related:identifier"},
}

const pageSize = 50

// cursor is how far a feed has been published: the last _lastUpdated seen
// and the resource versions published at exactly that instant. The next
// poll asks for ge At and skips Seen, so notes sharing an instant are
// neither skipped nor repeated.
//
// A note can be stamped before At and yet appear after a poll passed At:
// the region's servers stamp by their own clocks, and a transaction may
// commit after a later one. So while a poll may still be close to At, the
// feed is read from FeedOverlap before At, and Recent keeps the versions
// published since Since, so the overlap publishes only what is new.
// Checked is the gateway's time (its Date header) when a poll that read
// everything began: once that is FeedOverlap past At, whatever is stored
// later is stamped after At, and polls read from At alone again, so a
// quiet feed does not fetch its last notes at every poll.
type cursor struct {
	At   time.Time `json:"at"`
	Seen []string  `json:"seen,omitempty"` // "id/versionId"
	// Since: Seen and Recent hold every version published with an instant
	// from Since to At. Zero in a cursor stored by a build without the
	// overlap, which recorded At alone.
	Since   time.Time `json:"since,omitzero"`
	Recent  []seen    `json:"recent,omitempty"` // instants from Since, before At
	Checked time.Time `json:"checked,omitzero"`
}

// seen is a note version published with an instant before the cursor's.
type seen struct {
	Key string    `json:"key"` // "id/versionId"
	At  time.Time `json:"at"`
}

// overlapping reports whether a poll must read from before cur.At.
func (a *Adapter) overlapping(cur cursor) bool {
	w := a.cfg.FeedOverlap
	return w > 0 && !cur.At.IsZero() && (cur.Checked.IsZero() || cur.Checked.Sub(cur.At) < w)
}

// record notes a published version with instant at, and forgets what lies
// more than FeedOverlap before the cursor.
func (a *Adapter) record(cur *cursor, key string, at time.Time) {
	switch {
	case cur.At.IsZero():
		// The feed's first note: nothing was published before it, so
		// what it records covers the overlap before it too.
		*cur = cursor{At: at, Seen: []string{key}, Since: at.Add(-a.cfg.FeedOverlap)}
	case at.Equal(cur.At):
		cur.Seen = append(cur.Seen, key)
	case at.After(cur.At):
		for _, k := range cur.Seen {
			cur.Recent = append(cur.Recent, seen{k, cur.At})
		}
		cur.At, cur.Seen = at, []string{key}
	case !at.Before(cur.Since):
		cur.Recent = append(cur.Recent, seen{key, at})
	}
	if lo := cur.At.Add(-a.cfg.FeedOverlap); cur.Since.Before(lo) {
		cur.Since = lo
		cur.Recent = slices.DeleteFunc(cur.Recent, func(s seen) bool { return s.At.Before(lo) })
	}
}

// Run polls the feeds every PollInterval until ctx ends. A failed poll is
// logged and tried again at the next tick; the cursor has not moved past
// anything unpublished.
func (a *Adapter) Run(ctx context.Context, pub adapters.Publisher) error {
	if a.cfg.PollInterval <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(a.cfg.PollInterval)
	defer t.Stop()
	for {
		for _, f := range feeds {
			if err := a.pollFeed(ctx, pub, f); err != nil && ctx.Err() == nil {
				_, reason, code := adapters.Classify(err)
				a.log.WarnContext(ctx, "epj: poll failed; will try again", "feed", f.Type, "code", code, "reason", reason)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Poll reads every feed once and publishes what is new. Run calls it on
// each tick; it is exported for a one-shot read (tests, a CLI).
func (a *Adapter) Poll(ctx context.Context, pub adapters.Publisher) error {
	var errs []error
	for _, f := range feeds {
		if err := a.pollFeed(ctx, pub, f); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (a *Adapter) pollFeed(ctx context.Context, pub adapters.Publisher, f feed) error {
	key := a.stateKey("cursor", f.Type)
	cur, err := a.loadCursor(ctx, key)
	if err != nil {
		return err
	}
	q := url.Values{
		f.Addressee: {fhir.SystemSOR + "|" + a.cfg.Self.SOR},
		"_sort":     {"_lastUpdated"},
		"_count":    {fmt.Sprint(pageSize)},
	}
	if !cur.At.IsZero() && cur.Since.IsZero() {
		cur.Since = cur.At // stored by a build that recorded At alone
	}
	from := cur.At
	if a.overlapping(cur) {
		from = latest(cur.At.Add(-a.cfg.FeedOverlap), cur.Since)
	}
	if !from.IsZero() {
		q.Set("_lastUpdated", "ge"+from.UTC().Format(time.RFC3339Nano))
	}
	patients := map[string]*patientEntry{} // per poll, by reference
	// What to read is decided by where the poll started, not by how far
	// it has come: a later page may hold an older note.
	known := map[string]bool{}
	for _, k := range cur.Seen {
		known[k] = true
	}
	for _, r := range cur.Recent {
		known[r.Key] = true
	}
	done := map[string]bool{} // published in this poll: a note listed twice goes once
	var began time.Time       // the gateway's Date at the first page
	next := f.Type + "?" + q.Encode()
	read := 0     // notes published in this poll
	refused := "" // the host of a next link not followed
	for pages := 0; next != "" && pages < 1000; pages++ {
		if host, out := a.c.outside(next); out {
			// The link would take the token to a host the configuration
			// did not name: not followed. What the pages before it held is
			// published and the cursor stands after it, so the next poll
			// reads on from there (a page per poll) rather than the feed
			// failing at every poll. A gateway that names itself wrongly
			// in its links (behind a proxy) is the usual cause.
			refused = host
			if read == 0 && from.Before(cur.At) {
				// The overlap alone filled the pages read: ask again from
				// the cursor's own instant, as a poll without it would.
				from = cur.At
				q.Set("_lastUpdated", "ge"+from.UTC().Format(time.RFC3339Nano))
				next = f.Type + "?" + q.Encode()
				continue
			}
			break
		}
		resp, err := a.c.do(ctx, http.MethodGet, next, "", nil, nil)
		if err != nil {
			return err
		}
		if resp.status != http.StatusOK {
			return classify(resp, f.Type+" search")
		}
		if pages == 0 {
			began, _ = http.ParseTime(resp.header.Get("Date"))
		}
		var b fhir.Bundle
		if err := json.Unmarshal(resp.body, &b); err != nil || b.ResourceType != "Bundle" {
			return adapters.Retryable("bad_bundle", "the region's gateway answered a search with something other than a Bundle", err)
		}
		next = ""
		for _, ln := range b.Link {
			if ln.Relation == "next" {
				next = ln.URL
			}
		}
		// The page in _lastUpdated order, whatever order the gateway gave
		// (it may ignore _sort): the cursor then passes nothing unread.
		type item struct {
			h   fhir.ResourceHead
			at  time.Time
			raw json.RawMessage
		}
		var page []item
		for _, e := range b.Entry {
			var h fhir.ResourceHead
			if err := json.Unmarshal(e.Resource, &h); err != nil || h.ResourceType != f.Type || h.ID == "" || h.Meta == nil {
				a.log.WarnContext(ctx, "epj: feed entry without resourceType, id or meta skipped", "feed", f.Type)
				continue
			}
			at, err := time.Parse(time.RFC3339Nano, h.Meta.LastUpdated)
			if err != nil {
				a.log.WarnContext(ctx, "epj: feed entry without a valid meta.lastUpdated skipped", "feed", f.Type, "id", h.ID)
				continue
			}
			page = append(page, item{h, at, e.Resource})
		}
		slices.SortStableFunc(page, func(x, y item) int { return x.at.Compare(y.at) })
		for _, it := range page {
			h, at := it.h, it.at
			seenKey := h.ID + "/" + h.Meta.VersionID
			if at.Before(from) || known[seenKey] || done[seenKey] {
				continue
			}
			l, err := a.toLetter(ctx, f.Type, h, it.raw, patients)
			if err != nil {
				return err
			}
			if err := pub.Publish(ctx, l); err != nil {
				return fmt.Errorf("epj: publish %s: %w", l.ID, err)
			}
			done[seenKey] = true
			read++
			if behind := cur.At.Sub(at); behind > 0 {
				// Stamped before a note already read: another server's
				// clock, a late commit, or a gateway that does not sort
				// across pages. Read now; the cursor stays.
				a.log.InfoContext(ctx, "epj: a note stamped before the feed position was read", "feed", f.Type, "behind", behind.String())
			}
			a.record(&cur, seenKey, at)
			if err := a.saveCursor(ctx, key, cur); err != nil {
				return err
			}
		}
	}
	if refused != "" {
		msg := "epj: the gateway's next-page link points outside its configured url and is not followed; the next poll goes on after the notes read so far. Set the gateway's own base address (HAPI FHIR: server_address) to the url the hub uses"
		if read == 0 && next != "" {
			// A first page of notes all read before (more at one instant
			// than a page holds) cannot be passed without the link.
			msg = "epj: the gateway's next-page link points outside its configured url and is not followed, and no note before it was new: the feed cannot go on until the gateway's own base address (HAPI FHIR: server_address) is the url the hub uses"
		}
		a.log.WarnContext(ctx, msg, "feed", f.Type, "link_host", refused, "url_host", a.c.host(), "notes_read", read)
		return nil // not Checked: the overlap was not read whole
	}
	if next == "" && !began.IsZero() && a.overlapping(cur) {
		// Everything stored before began was read: if that is
		// FeedOverlap past At, later polls need not read before At.
		cur.Checked = began
		return a.saveCursor(ctx, key, cur)
	}
	return nil
}

func latest(x, y time.Time) time.Time {
	if x.After(y) {
		return x
	}
	return y
}

func (a *Adapter) loadCursor(ctx context.Context, key string) (cursor, error) {
	var cur cursor
	b, _, err := a.st.Get(ctx, key)
	if errors.Is(err, adapters.ErrNotFound) {
		return cur, nil
	}
	if err != nil {
		return cur, adapters.Retryable("state", "the hub could not read the feed position", err)
	}
	if err := json.Unmarshal(b, &cur); err != nil {
		return cur, adapters.Permanent("state", "the stored feed position is damaged", err)
	}
	return cur, nil
}

func (a *Adapter) saveCursor(ctx context.Context, key string, cur cursor) error {
	b, _ := json.Marshal(cur)
	if _, err := a.st.Put(ctx, key, b); err != nil {
		// The letter is published but the cursor did not move: the next
		// poll publishes it again, which the pipeline's dedup absorbs.
		return adapters.Retryable("state", "the hub could not store the feed position", err)
	}
	return nil
}

// toLetter maps a feed resource onto a Letter. Original is the resource
// exactly as it appeared in the Bundle.
func (a *Adapter) toLetter(ctx context.Context, typ string, h fhir.ResourceHead, raw json.RawMessage, patients map[string]*patientEntry) (*letter.Letter, error) {
	l := &letter.Letter{
		ID:        "epj:" + a.name + ":" + typ + "/" + h.ID + "/" + h.Meta.VersionID,
		Kind:      letter.KindNote,
		Format:    "fhir-r4",
		Source:    a.name,
		Received:  a.now(),
		Receivers: []letter.Party{{Role: "municipality", SOR: a.cfg.Self.SOR, GLN: a.cfg.Self.GLN, Name: a.cfg.Self.Name}},
		Original: letter.Original{
			Data:        append([]byte(nil), raw...),
			ContentType: "application/fhir+json",
			Filename:    typ + "-" + h.ID + ".json",
			SHA256:      letter.Digest(raw),
		},
		Meta: map[string]string{MetaFHIRResource: typ + "/" + h.ID, MetaFHIRVersion: h.Meta.VersionID},
	}
	var (
		subject   *fhir.Reference
		sender    *fhir.Reference
		contained []fhir.Organization
		files     []fhir.Attachment
		named     []fhir.Reference // recipients (Communication) or related parties (DocumentReference)
	)
	switch typ {
	case "Communication":
		var c fhir.Communication
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, adapters.Permanent("bad_resource", "a Communication from the region could not be read", err)
		}
		subject, sender, contained, named = c.Subject, c.Sender, c.Contained, c.Recipient
		l.Sent = parseDateTime(c.Sent)
		l.Priority = c.Priority
		if c.Topic != nil {
			l.Subject = c.Topic.Text
		}
		var texts []string
		for _, p := range c.Payload {
			switch {
			case p.ContentString != "":
				texts = append(texts, p.ContentString)
			case p.ContentAttachment != nil:
				files = append(files, *p.ContentAttachment)
			}
		}
		l.Text = strings.Join(texts, "\n\n")
		for _, r := range c.InResponseTo {
			if r.Identifier != nil && r.Identifier.System == fhir.SystemLetter {
				l.InReplyTo = r.Identifier.Value
			}
		}
	case "DocumentReference":
		var d fhir.DocumentReference
		if err := json.Unmarshal(raw, &d); err != nil {
			return nil, adapters.Permanent("bad_resource", "a DocumentReference from the region could not be read", err)
		}
		subject, contained = d.Subject, d.Contained
		if d.Context != nil {
			named = d.Context.Related
		}
		if len(d.Author) > 0 {
			sender = &d.Author[0]
		} else {
			sender = d.Custodian
		}
		l.Sent = parseDateTime(d.Date)
		l.Text = d.Description
		if d.Type != nil {
			for _, c := range d.Type.Coding {
				if c.System == fhir.SystemLOINC && c.Code == fhir.LOINCDischarge {
					l.Kind = letter.KindDischargeNote
				}
			}
		}
		for _, c := range d.Content {
			files = append(files, c.Attachment)
		}
	}
	l.Sender = a.senderParty(sender, contained)
	for i, f := range files {
		if f.Data == nil {
			// Content by URL (Binary) is not fetched; the original keeps the link.
			l.Meta[MetaAttachmentsByURL] = fmt.Sprint(len(files) - i)
			continue
		}
		name := f.Title
		if name == "" {
			name = fmt.Sprintf("attachment-%d", i+1)
		}
		l.Attachments = append(l.Attachments, letter.NewAttachment(name, f.ContentType, f.Data))
	}
	p, err := a.patient(ctx, subject, patients)
	if err != nil {
		return nil, err
	}
	l.Patient = p
	l.Receivers = append(l.Receivers, a.otherRecipients(l, named, contained, patients[subjectKey(subject)])...)
	return l, nil
}

// otherRecipients are the parties a note names besides the municipality
// (Communication.recipient, DocumentReference.context.related): the child's
// GP a discharge letter is for, say. A party that is the child's GP
// (Patient.generalPractitioner) gets the role gp; others are left for the
// hub's receiver directory to know. A discharge summary that names nobody
// else goes to the child's GP as well: discharge letters to the GP are what
// the region sends (Sundhedsloven § 41).
func (a *Adapter) otherRecipients(l *letter.Letter, named []fhir.Reference, contained []fhir.Organization, pt *patientEntry) []letter.Party {
	var gps []letter.Party
	if pt != nil {
		gps = pt.gps
	}
	var out []letter.Party
	for _, r := range named {
		q := a.party(&r, contained)
		if (q.SOR == "" && q.GLN == "") || (q.SOR != "" && q.SOR == a.cfg.Self.SOR) || (q.GLN != "" && q.GLN == a.cfg.Self.GLN) {
			continue
		}
		for _, g := range gps {
			if (g.SOR != "" && g.SOR == q.SOR) || (g.GLN != "" && g.GLN == q.GLN) {
				q.Role = letter.RoleGP
				if q.Name == "" {
					q.Name = g.Name
				}
			}
		}
		out = append(out, q)
	}
	if len(out) == 0 && l.Kind == letter.KindDischargeNote {
		out = append(out, gps...)
	}
	return out
}

// senderParty finds the sending organisation, in contained resources when
// the reference is local ("#id"), and falls back to the configured region.
func (a *Adapter) senderParty(r *fhir.Reference, contained []fhir.Organization) letter.Party {
	p := a.party(r, contained)
	p.Role = "region"
	if p.SOR == "" {
		p.SOR = a.cfg.Recipient
	}
	return p
}

// party reads an organisation from a reference: its identifier and
// display, and a contained resource's when the reference is local ("#id").
func (a *Adapter) party(r *fhir.Reference, contained []fhir.Organization) letter.Party {
	var p letter.Party
	var ids []fhir.Identifier
	if r != nil {
		if r.Identifier != nil {
			ids = append(ids, *r.Identifier)
		}
		p.Name = r.Display
		if id, ok := strings.CutPrefix(r.Reference, "#"); ok {
			for _, o := range contained {
				if o.ID == id {
					ids = append(ids, o.Identifier...)
					if o.Name != "" {
						p.Name = o.Name
					}
				}
			}
		}
	}
	for _, id := range ids {
		switch id.System {
		case fhir.SystemSOR:
			p.SOR = id.Value
		case fhir.SystemGLN, fhir.SystemGLNOld:
			p.GLN = id.Value
		}
	}
	return p
}

// patient resolves the subject: from its identifier when it has one, else
// by reading the referenced Patient. A missing or unknown patient leaves the
// letter without one (the pipeline parks it) rather than stalling the feed.
func (a *Adapter) patient(ctx context.Context, r *fhir.Reference, cache map[string]*patientEntry) (*letter.Patient, error) {
	if r == nil {
		return nil, nil
	}
	if r.Identifier != nil {
		return patientFrom([]fhir.Identifier{*r.Identifier}, nil), nil
	}
	ref := subjectKey(r)
	if ref == "" {
		return nil, nil
	}
	if e, ok := cache[ref]; ok {
		return e.p, nil
	}
	resp, err := a.c.do(ctx, http.MethodGet, ref, "", nil, nil)
	if err != nil {
		return nil, err
	}
	switch {
	case resp.status == http.StatusNotFound || resp.status == http.StatusGone:
		cache[ref] = &patientEntry{}
		return nil, nil
	case resp.status != http.StatusOK:
		return nil, classify(resp, "patient read")
	}
	var pt fhir.Patient
	if err := json.Unmarshal(resp.body, &pt); err != nil || pt.ResourceType != "Patient" {
		return nil, adapters.Retryable("bad_patient", "the region's gateway returned something other than a Patient", err)
	}
	e := &patientEntry{p: patientFrom(pt.Identifier, pt.Name)}
	for _, g := range pt.GeneralPractitioner {
		q := a.party(&g, nil)
		if q.SOR != "" || q.GLN != "" {
			q.Role = letter.RoleGP
			e.gps = append(e.gps, q)
		}
	}
	cache[ref] = e
	return e.p, nil
}

// patientEntry is a Patient read from the gateway: the child, and the
// child's GP (Patient.generalPractitioner) when the region records one.
type patientEntry struct {
	p   *letter.Patient
	gps []letter.Party
}

// subjectKey is the "Patient/<id>" a subject reference points at, or "".
func subjectKey(r *fhir.Reference) string {
	if r == nil {
		return ""
	}
	ref := r.Reference
	if i := strings.LastIndex(ref, "Patient/"); i >= 0 {
		ref = ref[i:]
	}
	if !strings.HasPrefix(ref, "Patient/") || strings.Count(ref, "/") != 1 {
		return ""
	}
	return ref
}

func patientFrom(ids []fhir.Identifier, names []fhir.HumanName) *letter.Patient {
	p := &letter.Patient{}
	for _, id := range ids {
		switch {
		case id.System == fhir.SystemCPR:
			p.CPR = id.Value
		case strings.HasPrefix(id.System, fhir.SystemECPRStem):
			p.ReplacementID = id.Value
		}
	}
	for i, n := range names {
		if i == 0 || n.Use == "official" {
			p.GivenName, p.FamilyName = strings.Join(n.Given, " "), n.Family
		}
	}
	if p.Identifier() == "" && p.FamilyName == "" {
		return nil
	}
	return p
}

// parseDateTime reads a FHIR dateTime, which may be partial.
func parseDateTime(s string) time.Time {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02", "2006-01", "2006"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}
