package casesys

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/pipeline/letter"
)

type caseView struct {
	ID            string       `json:"id"`
	Status        string       `json:"status"`
	Version       int          `json:"version"`
	PrimaryParty  party        `json:"primaryParty"`
	Consent       *consentView `json:"consent"`
	ContactPerson *struct {
		Name  string `json:"name"`
		Email string `json:"email"`
	} `json:"contactPerson"`
	Referral *referralView `json:"referral"`
}

// party is a case's primary party: the child, by CPR or replacement id,
// with the name as the letters gave it.
type party struct {
	CPR               string `json:"cpr,omitempty"`
	ReplacementID     string `json:"replacementId,omitempty"`
	ReplacementSystem string `json:"replacementSystem,omitempty"`
	Name              string `json:"name,omitempty"`
	GivenName         string `json:"givenName,omitempty"`
	FamilyName        string `json:"familyName,omitempty"`
}

type consentView struct {
	GivenBy            string     `json:"givenBy,omitempty"`
	Form               string     `json:"form,omitempty"`
	GivenAt            *time.Time `json:"givenAt,omitempty"`
	Scopes             []string   `json:"scopes"`
	YoungPersonRefused bool       `json:"youngPersonRefused"`
	WithdrawnAt        *time.Time `json:"withdrawnAt,omitempty"`
}

type referralView struct {
	ThreadID string `json:"threadId,omitempty"`
	LetterID string `json:"letterId,omitempty"`
}

var cprDigits = regexp.MustCompile(`^[0-9]{10}$`)

// child is the patient of a letter as the case system knows a person: a
// CPR, or a replacement id (with its system) for a child without one.
type child struct {
	cpr, replacementID, replacementSystem string
	given, family                         string
}

func childOf(p *letter.Patient) child {
	c := child{
		cpr: normaliseID(p.CPR), replacementID: strings.TrimSpace(p.ReplacementID), replacementSystem: strings.TrimSpace(p.ReplacementSystem),
		given: strings.Join(strings.Fields(p.GivenName), " "), family: strings.Join(strings.Fields(p.FamilyName), " "),
	}
	if c.cpr != "" && !cprDigits.MatchString(c.cpr) && c.replacementID == "" {
		// A sender that put a replacement number where the CPR goes.
		c.replacementID, c.cpr = c.cpr, ""
	}
	return c
}

// id is the identifier the hub's case for this child is keyed on.
func (c child) id() string {
	if c.cpr != "" {
		return c.cpr
	}
	if c.replacementSystem != "" {
		return c.replacementSystem + "|" + c.replacementID
	}
	return c.replacementID
}

func (c child) party() party {
	p := party{CPR: c.cpr, GivenName: c.given, FamilyName: c.family, Name: strings.TrimSpace(c.given + " " + c.family)}
	if c.cpr == "" {
		p.ReplacementID, p.ReplacementSystem = c.replacementID, c.replacementSystem
	}
	return p
}

// errOtherChild says a case found by thread or replacement id turned out
// to belong to another child; the search starts again.
var errOtherChild = errors.New("the case belongs to another child")

// resolveCase finds the child's case, creating it (or parking the letter)
// when there is none, and brings the case's party up to date with what
// the letter knows better (the name, or the CPR of a child first known by
// a replacement id). It returns the case id.
//
// The case is looked up by the letter's CPR, else by its replacement id.
// A letter with a CPR that finds no case by it may be about a child whose
// case was made from a replacement id: MedCom letters carry the CPR or a
// replacement id, never both (medcom.md), so the link is the referral's
// thread, which the case keeps as referral.threadId. Such a case is taken
// only while it has no CPR and no other replacement id than the letter's:
// two children are never merged; at worst a coordinator joins two cases.
func (a *Adapter) resolveCase(ctx context.Context, l *letter.Letter) (string, error) {
	ch := childOf(l.Patient)
	for attempt := 0; ; attempt++ {
		id, err := a.resolveOnce(ctx, l, ch)
		if !errors.Is(err, errOtherChild) || attempt == 2 {
			return id, err
		}
	}
}

func (a *Adapter) resolveOnce(ctx context.Context, l *letter.Letter, ch child) (string, error) {
	var found *caseView
	var err error
	if ch.cpr != "" {
		found, err = a.findCase(ctx, map[string]any{"cpr": ch.cpr})
	} else {
		found, err = a.findCase(ctx, map[string]any{"replacementId": ch.replacementID, "replacementSystem": ch.replacementSystem})
	}
	if err != nil {
		return "", err
	}
	if found == nil && ch.cpr != "" && l.ThreadID != "" {
		found, err = a.findCase(ctx, map[string]any{"referralThreadId": l.ThreadID})
		if err != nil {
			return "", err
		}
		if found != nil && (found.PrimaryParty.CPR != "" || found.PrimaryParty.ReplacementID == "" ||
			(ch.replacementID != "" && found.PrimaryParty.ReplacementID != ch.replacementID)) {
			found = nil // the thread's case is another child's (it has a CPR, which is not this one)
		}
	}
	if found == nil {
		if a.cfg.OnMissingCase == "park" {
			return "", adapters.Permanent("no_case", "no case for this child; on_missing_case is park, so a coordinator must create or choose the case", nil)
		}
		return a.createCase(ctx, l, ch)
	}
	if found.Status == "open" {
		if err := a.updateParty(ctx, l, ch, found); err != nil {
			return "", err
		}
	}
	return found.ID, nil
}

// findCase searches the configured case type with q: an open case first,
// else a closed one (adding to it then answers case-closed and a
// coordinator decides); nil when there is none.
func (a *Adapter) findCase(ctx context.Context, q map[string]any) (*caseView, error) {
	q["caseType"], q["page"], q["pageSize"] = a.cfg.CaseType, 1, 100
	for k, v := range q {
		if v == "" {
			delete(q, k)
		}
	}
	body, _ := json.Marshal(q)
	// No Idempotency-Key: a search is a read, and a replayed answer would
	// hide a case a coordinator created after the letter was parked.
	resp, err := a.api.do(ctx, request{method: http.MethodPost, path: "/cases/search", body: body, contentType: "application/json"})
	if err != nil {
		return nil, err
	}
	if resp.status != http.StatusOK {
		return nil, classify("searching for the child's case", resp)
	}
	var res struct {
		Results []caseView `json:"results"`
	}
	if err := json.Unmarshal(resp.body, &res); err != nil {
		return nil, adapters.Retryable("bad_answer", "the case system's search answer could not be read", err)
	}
	var closed *caseView
	for i, c := range res.Results {
		if c.Status == "open" {
			return &res.Results[i], nil
		}
		if closed == nil {
			closed = &res.Results[i]
		}
	}
	return closed, nil
}

// createCase makes the child's case with what the letter knows. It holds
// the create guard for the case's externalId and searches again under it,
// so two letters about the same new child never make two cases.
func (a *Adapter) createCase(ctx context.Context, l *letter.Letter, ch child) (string, error) {
	ext := CaseExternalID(a.cfg.CaseType, ch.id())
	release, err := a.guardCreate(ctx, ext)
	if err != nil {
		return "", err
	}
	defer release()
	// Search again under the guard: another delivery may just have made it.
	q := map[string]any{"cpr": ch.cpr}
	if ch.cpr == "" {
		q = map[string]any{"replacementId": ch.replacementID, "replacementSystem": ch.replacementSystem}
	}
	if c, err := a.findCase(ctx, q); err != nil || c != nil {
		if c != nil {
			return c.ID, nil
		}
		return "", err
	}
	in := map[string]any{
		"externalId":   ext,
		"caseType":     a.cfg.CaseType,
		"title":        a.cfg.CaseTitle,
		"primaryParty": ch.party(),
	}
	if a.cfg.KLE != "" {
		in["kle"] = a.cfg.KLE
	}
	if a.cfg.ResponsibleUnit != "" {
		in["responsibleUnit"] = a.cfg.ResponsibleUnit
	}
	if c := l.Consent; c != nil {
		cv := consentView{GivenBy: c.GivenBy, Form: c.Form, Scopes: []string{}, YoungPersonRefused: c.YoungPersonRefused}
		if !c.GivenAt.IsZero() {
			cv.GivenAt = &c.GivenAt
		}
		if !c.WithdrawnAt.IsZero() {
			cv.WithdrawnAt = &c.WithdrawnAt
		}
		for _, s := range c.Scopes {
			cv.Scopes = append(cv.Scopes, string(s))
		}
		in["consent"] = cv
	}
	if l.Kind == letter.KindReferral {
		in["referral"] = referralView{ThreadID: l.Thread(), LetterID: l.ID}
	}
	body, _ := json.Marshal(in)
	resp, err := a.api.do(ctx, request{method: http.MethodPost, path: "/cases", body: body, contentType: "application/json", idemKey: a.idemKey(l, "create-case")})
	if err != nil {
		return "", err
	}
	switch {
	case resp.status == http.StatusCreated || resp.status == http.StatusOK:
		var c caseView
		if err := json.Unmarshal(resp.body, &c); err != nil || c.ID == "" {
			return "", adapters.Retryable("bad_answer", "the case system's answer to creating the case could not be read", err)
		}
		a.log.Info("case created in the case system", "case", c.ID, slog.Any("letter", l))
		return c.ID, nil
	case isDuplicate(resp):
		return existingID(resp)
	default:
		return "", classify("creating the child's case", resp)
	}
}

// updateParty writes to the case what the letter knows better: the CPR
// of a child the case knows only by a replacement id, and a better name.
// It reads the case again and decides anew when the case changed meanwhile.
func (a *Adapter) updateParty(ctx context.Context, l *letter.Letter, ch child, c *caseView) error {
	for attempt := 0; ; attempt++ {
		patch := partyPatch(ch, c.PrimaryParty)
		if patch == nil {
			return nil
		}
		body, _ := json.Marshal(map[string]any{"primaryParty": patch})
		path := "/cases/" + url.PathEscape(c.ID)
		resp, err := a.api.do(ctx, request{
			method: http.MethodPatch, path: path, body: body, contentType: "application/merge-patch+json",
			header: http.Header{"If-Match": {`"` + strconv.Itoa(c.Version) + `"`}},
			// The key names the change, so a new decision after a conflict is a new request.
			idemKey: a.idemKey(l, "update-case:"+opaque(string(body))[:12]),
		})
		if err != nil {
			return err
		}
		switch code := parseProblem(resp.body).Code; {
		case resp.status == http.StatusOK:
			if _, linked := patch["cpr"]; linked {
				a.log.Info("case of a child known by a replacement id now has the child's CPR", "case", c.ID, slog.Any("letter", l))
			}
			return nil
		case resp.status == http.StatusConflict && code == "party-conflict":
			return errOtherChild
		case resp.status == http.StatusConflict && code == "case-closed":
			return nil // adding the document reports the closed case
		case resp.status == http.StatusPreconditionFailed && attempt < 3:
			resp, err := a.api.do(ctx, request{method: http.MethodGet, path: path})
			if err != nil {
				return err
			}
			if resp.status != http.StatusOK {
				return classify("reading the child's case again", resp)
			}
			c = &caseView{}
			if err := json.Unmarshal(resp.body, c); err != nil {
				return adapters.Retryable("bad_answer", "the case system's case answer could not be read", err)
			}
			if ch.cpr != "" && c.PrimaryParty.CPR != "" && c.PrimaryParty.CPR != ch.cpr {
				return errOtherChild
			}
			if c.Status != "open" {
				return nil
			}
		default:
			return classify("updating the child's name or CPR on the case", resp)
		}
	}
}

// partyPatch is what to change on the case's party, or nil: the CPR where
// the case has none, and the letter's name when it is better.
func partyPatch(ch child, have party) map[string]any {
	patch := map[string]any{}
	if ch.cpr != "" && have.CPR == "" {
		patch["cpr"] = ch.cpr
	}
	if betterName(ch.given, ch.family, have) {
		patch["givenName"], patch["familyName"] = ch.given, ch.family
		patch["name"] = strings.TrimSpace(ch.given + " " + ch.family)
	}
	if len(patch) == 0 {
		return nil
	}
	return patch
}

// betterName reports whether the letter's name (given, family) says more
// than the case's: a family name where the case has none, more names, a
// longer name, or the same name with its parts where the case has only a
// full name. A name is never replaced by a shorter or vaguer one.
func betterName(given, family string, have party) bool {
	if given == "" && family == "" {
		return false
	}
	hGiven, hFamily, structured := have.GivenName, have.FamilyName, true
	if hGiven == "" && hFamily == "" {
		structured = false
		hGiven, hFamily = splitName(have.Name)
	}
	got := nameScore(given, family, true)
	had := nameScore(hGiven, hFamily, structured)
	for i := range got {
		if got[i] != had[i] {
			return got[i] > had[i]
		}
	}
	return false
}

func nameScore(given, family string, structured bool) [4]int {
	full := strings.Fields(given + " " + family)
	s := [4]int{0, len(full), utf8.RuneCountInString(strings.Join(full, " ")), 0}
	if strings.TrimSpace(family) != "" {
		s[0] = 1
	}
	if structured {
		s[3] = 1
	}
	return s
}

// splitName reads a full name without parts as the Danish convention has
// it: the last name is the family name, all before it given names.
func splitName(n string) (given, family string) {
	f := strings.Fields(n)
	switch len(f) {
	case 0:
		return "", ""
	case 1:
		return "", f[0]
	}
	return strings.Join(f[:len(f)-1], " "), f[len(f)-1]
}
