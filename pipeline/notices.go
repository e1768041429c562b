package pipeline

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/samhub/samhub/pipeline/council"
	"github.com/samhub/samhub/pipeline/letter"
	"github.com/samhub/samhub/pipeline/retryq"
	"github.com/samhub/samhub/pipeline/route"
)

// notifySource is the source name of letters the hub makes itself
// (notices, the council's receipts).
const notifySource = council.HubSource

// notifyRoute is the implicit rule that carries notices to their destination.
func notifyRoute(n Notify) (route.Rule, bool) {
	if n.Destination == "" {
		return route.Rule{}, false
	}
	no := false
	return route.Rule{Name: "notifications", Match: route.Match{Kind: []string{string(letter.KindNotification)}}, To: []string{n.Destination}, RequireConsent: &no}, true
}

func (h *Hub) notifyOn(event string) bool {
	n := h.opt.Notify
	return n.Destination != "" && slices.Contains(n.On, event)
}

// noticeFor is the notice that a stored letter arrived or was answered,
// for the coordinator (and the case's contact person, when the source
// knows one), or nil when the letter calls for none. The notification
// destination calls it for every letter it reads, so the notice follows
// from the stored letter alone: the same letter always gives the same
// notice (its id names the letter), which the sink delivers once.
func (h *Hub) noticeFor(l *letter.Letter) *letter.Letter {
	if l.Kind == letter.KindNotification || l.Kind == letter.KindAcknowledgement || l.Source == notifySource {
		return nil // the hub's own letters (notices, receipts) are no news
	}
	kinds := h.opt.Notify.Kinds
	if len(kinds) == 0 {
		kinds = []string{string(letter.KindReferral)}
	}
	switch {
	case (l.Kind == letter.KindReply || l.InReplyTo != "") && h.notifyOn("answered"):
		return h.noticeLetter("answered", l.ID, l.ContactEmail, "", "Der er kommet svar i en sag i Samrådet.", "An answer arrived in a council case.")
	case slices.Contains(kinds, string(l.Kind)) && h.notifyOn("arrived"):
		return h.noticeLetter("arrived", l.ID, l.ContactEmail, "", "Der er kommet et nyt brev til Samrådet.", "A new letter arrived for the council.")
	}
	return nil
}

// notifyParked tells the coordinator that a letter waits for them.
func (h *Hub) notifyParked(ctx context.Context, d *destination, l *letter.Letter, f retryq.Failure) {
	if !h.notifyOn("parked") || d.name == h.opt.Notify.Destination || l.Kind == letter.KindNotification {
		return
	}
	h.sendNotice(ctx, "parked", l, d.name, "Et brev venter på koordinatoren i Samhubs kø ("+d.name+").", "A letter waits for the coordinator in Samhub's queue ("+d.name+"). Reason code: "+f.Code+".")
}

// sendNotice stores a notice letter; it is delivered like any letter (with
// retry and park) to the notification destination. A notice carries only
// the letter's reference, never its content, names or CPR.
func (h *Hub) sendNotice(ctx context.Context, event string, l *letter.Letter, dest, da, en string) {
	notice := h.noticeLetter(event, l.ID, l.ContactEmail, dest, da, en)
	// Stored off the source's path: the letter is already safe, and the
	// source need not wait a second fsync for its notice. A crash in between
	// loses the notice, never the letter; the console still shows it.
	h.background.Add(1)
	go func() {
		defer h.background.Done()
		pub := &ingest{h: h, source: notifySource}
		if err := pub.Publish(context.WithoutCancel(ctx), notice); err != nil {
			h.log.Warn("notice not stored", "event", event, "letter_id", l.ID, "err", err)
		}
	}()
}

// Notice stores a notice about the letter letterID now, and returns once
// it is stored (the council's referral watch). One notice per event and
// letter: a second one with the same event is not routed again.
func (h *Hub) Notice(ctx context.Context, event, letterID, da, en string) error {
	return (&ingest{h: h, source: notifySource}).Publish(ctx, h.noticeLetter(event, letterID, "", "", da, en))
}

// noticeLetter is a notice to the coordinator (and the case's contact
// person) about letterID: its reference and a link, nothing more.
func (h *Hub) noticeLetter(event, letterID, contact, dest, da, en string) *letter.Letter {
	recipients := append([]string(nil), h.opt.Notify.Recipients...)
	if contact != "" && !slices.Contains(recipients, contact) {
		recipients = append(recipients, contact)
	}
	var parties []letter.Party
	for _, r := range recipients {
		parties = append(parties, letter.Party{Role: "contact", Email: r})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n%s\n\nReference: %s\n", da, en, letterID)
	if h.opt.Notify.ConsoleURL != "" {
		fmt.Fprintf(&b, "%s/letters/%s\n", strings.TrimRight(h.opt.Notify.ConsoleURL, "/"), letterID)
	}
	id := "notice:" + event + ":" + dest + ":" + letterID
	// A notice is its own thread: it must not wait behind a failing letter.
	return &letter.Letter{ID: id, Kind: letter.KindNotification, Format: "notice",
		Sender: letter.Party{Role: "hub", Name: "Samhub"}, Receivers: parties,
		Subject: "Samhub: " + event, Text: scrubText(b.String()),
		Meta: map[string]string{"event": event, "letterId": letterID}}
}
