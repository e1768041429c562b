package council

import "github.com/samhub/samhub/pipeline/route"

// Options are the register's settings: the council block of the
// configuration, turned into these by internal/config (Council.Options),
// so the register knows no configuration loader.
type Options struct {
	// Enabled keeps the register; off, New returns nil.
	Enabled  bool
	Meetings Meetings
	// WatchDays: a referral with no recommendation this many days after
	// it arrived is flagged (council.watch_days).
	WatchDays float64
	// RetentionDays is how long the register keeps a referral's facts.
	RetentionDays int
	Receipt       Receipt
	// Rejections classify letters as child psychiatry turning a referral
	// down; the first that matches names the rejection.
	Rejections []RejectionRule
	// Sectors are the destinations' sectors by name, for the trace's
	// waiting destinations.
	Sectors map[string]string
	// ConsentSectors are the sectors whose consent a configured route (or
	// the receipt) needs; the views show the consent of these only. Nil
	// shows every scope (a register built without routes, in tests).
	ConsentSectors []string
	// Replicas are the register's consumer's replicas (nats.replicas).
	Replicas int
}

// Meetings are the meeting rule ("second tuesday 13:00"), its time zone
// and the referrals one meeting takes.
type Meetings struct {
	Rule string
	Zone string
	Cap  int
	// CutoffDays: a referral takes a meeting at least this many days
	// after it arrived (or, seated from the waiting, after now).
	CutoffDays int
	// ClosedDays are the municipality's own closing days, marked like
	// public holidays (schedule.ParseClosingDays).
	ClosedDays []string
}

// Receipt is the receipt to the referring GP: a reply in the referral's
// thread naming the meeting that takes it, sent through Destination.
type Receipt struct {
	Enabled     bool
	Destination string
	// Template is the letter's text (Go text/template over ReceiptFields).
	Template string
	// MovedTemplate is the text of the letter telling a GP the meeting
	// that takes the referral has a new date (ReceiptFields with Before).
	MovedTemplate string
	// RequireConsent checks the gp scope of the consent like any route.
	RequireConsent bool
}

// RejectionRule classifies a letter as a rejection by child psychiatry:
// Match as in routes, and when Words is set, one of the words in the
// subject or text (case-insensitive).
type RejectionRule struct {
	Name  string
	Match route.Match
	Words []string
}

// DefaultReceiptTemplate is the receipt's text unless configured.
const DefaultReceiptTemplate = "Henvisningen er modtaget og behandles på samrådsmødet {{.Weekday}} den {{.Date}} kl. {{.Time}}.\n\nVenlig hilsen\n{{.Council}}\n"

// DefaultMovedTemplate is the text of a new date's letter unless
// configured.
const DefaultMovedTemplate = "Henvisningen behandles nu på samrådsmødet {{.Weekday}} den {{.Date}} kl. {{.Time}} og ikke som tidligere meddelt {{.Before}}.\n\nVenlig hilsen\n{{.Council}}\n"

// ReceiptFields are what a receipt template can use; Before (the date the
// GP was told last, e.g. "tirsdag den 10. marts 2026 kl. 13.00") only a
// new date's.
type ReceiptFields struct {
	Date, Time, Weekday, Council, Practice, Before string
}
