package digitalpost

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/httpclient"
	"github.com/samhub/samhub/pipeline/letter"
)

var cprPattern = regexp.MustCompile(`^[0-9]{10}$`)

// Deliver sends l to each custody holder in l.To, one message each. It is
// idempotent per holder (the message UUID); holders it could not reach
// while others got the letter come back as *adapters.Partial.
func (a *Adapter) Deliver(ctx context.Context, l *letter.Letter) (adapters.Delivery, error) {
	if ctx.Err() != nil {
		return adapters.Delivery{}, adapters.Retryable("cancelled", "the delivery was interrupted", ctx.Err())
	}
	// Checked before anything leaves: deny by default, as behind the router.
	if !l.Consent.Allows(letter.ScopeParents, a.now()) {
		return adapters.Delivery{}, adapters.Permanent("no_consent", "consent does not cover the parents", nil)
	}
	if len(l.To) == 0 {
		return adapters.Delivery{}, adapters.Permanent("no_addressee", "the letter is addressed to no custody holder", nil)
	}
	c, err := documents(ctx, l)
	if err != nil {
		return adapters.Delivery{}, err
	}
	key, err := a.uuidKey(ctx)
	if err != nil {
		return adapters.Delivery{}, err
	}
	var (
		ids               []string
		delivered, failed []letter.Party
		errs              []error
		existing          = true
	)
	for _, p := range l.To {
		if ctx.Err() != nil {
			failed, errs = append(failed, p), append(errs, adapters.Retryable("cancelled", "the delivery was interrupted", ctx.Err()))
			continue
		}
		cpr := strings.TrimSpace(p.CPR)
		if !cprPattern.MatchString(cpr) {
			failed, errs = append(failed, p), append(errs, adapters.Permanent("no_cpr",
				"a custody holder has no CPR number (Digital Post reaches citizens by CPR); add it to the document's recipients in the case system, or send a paper letter", nil))
			continue
		}
		id := messageUUID(key, l.ID, cpr)
		old, err := a.send(ctx, l, cpr, id, c)
		if err != nil {
			failed, errs = append(failed, p), append(errs, err)
			continue
		}
		delivered, ids = append(delivered, p), append(ids, id)
		existing = existing && old
	}
	if len(failed) == 0 {
		a.log.InfoContext(ctx, "digitalpost: letter delivered", slog.Any("letter", l), "messages", len(ids), "existing", existing)
		return adapters.Delivery{RemoteID: strings.Join(ids, " "), Existing: existing}, nil
	}
	err = combine(errs, len(l.To))
	if len(delivered) > 0 {
		return adapters.Delivery{}, &adapters.Partial{Delivered: delivered, Failed: failed, Err: err}
	}
	return adapters.Delivery{}, err
}

// send posts the message for one custody holder; existing reports a
// message the service had already.
func (a *Adapter) send(ctx context.Context, l *letter.Letter, cpr, uuid string, c contents) (existing bool, err error) {
	msg, err := a.kombiRequest(l, cpr, uuid, c)
	if err != nil {
		return false, adapters.Permanent("encode", "the hub could not write the MeMo message", err)
	}
	if max := a.cfg.MaxUpload; max > 0 && msg.Len() > max {
		return false, &adapters.TooLarge{Size: msg.Len(), Limit: max, Setting: "adapters." + a.name + ".max_upload"}
	}
	resp, err := a.c.post(ctx, msg)
	if err != nil {
		return false, err
	}
	if resp.status == http.StatusRequestEntityTooLarge {
		_, _, oerr := outcome(resp)
		return false, &adapters.TooLarge{Size: msg.Len(), Limit: a.cfg.MaxUpload, Err: oerr}
	}
	_, existing, err = outcome(resp)
	return existing, err
}

// combine makes one error of the custody holders' failures: retryable if
// any is (the letter comes again and the holders who have it get a
// repeat), else permanent, with a reason that counts and never names.
func combine(errs []error, total int) error {
	for _, err := range errs {
		if class, _, _ := adapters.Classify(err); class == adapters.ClassRetryable {
			if len(errs) == 1 && total == 1 {
				return err
			}
			_, reason, code := adapters.Classify(err)
			return &adapters.Error{Class: adapters.ClassRetryable, Code: code, RetryAfter: adapters.RetryAfterOf(err), Err: err,
				Reason: fmt.Sprintf("%d of %d custody holders could not be reached yet: %s", len(errs), total, reason)}
		}
	}
	_, reason, code := adapters.Classify(errs[0])
	same := true
	for _, err := range errs[1:] {
		if _, _, c := adapters.Classify(err); c != code {
			same = false
		}
	}
	if code == "recipient_exempt" && same {
		if total == 1 {
			reason = "the custody holder is exempt from Digital Post (fritaget): send the letter on paper, then discard this entry"
		} else {
			reason = fmt.Sprintf("%d of %d custody holders are exempt from Digital Post (fritaget): send them the letter on paper, then discard this entry; the case system's outbox shows who", len(errs), total)
			if len(errs) < total {
				reason += " (the others have it by Digital Post)"
			}
		}
		return adapters.Permanent(code, reason, errs[0])
	}
	if total > 1 {
		reason = fmt.Sprintf("%d of %d custody holders could not be sent the letter: %s", len(errs), total, reason)
	}
	return adapters.Permanent(code, reason, errs[0])
}

// Capacity: deliveries at once, one per connection to the system.
func (a *Adapter) Capacity() int { return httpclient.MaxConnsPerHost }
