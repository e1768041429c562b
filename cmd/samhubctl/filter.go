package main

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

const filterHelp = `A filter is one or more key=value pairs, comma-separated or in several
--filter flags; all must hold:
  destination=D        parked for destination D
  code=C               the last error's reason code (e.g. unavailable, consent_missing)
  thread=ID            a letter's thread id, as 'samhubctl letter trace' shows it
  thread-token=T       a thread token, as 'queue held' and the entries show it
  patient=CPR          the child's CPR number (sent in a request body, never a URL;
                       needs --reason: the search is audited)
  older-than=DUR       parked more than DUR ago (90m, 4h, 2d, 1w)
  newer-than=DUR       parked less than DUR ago
  parked-before=TIME   parked before TIME (RFC 3339, or 2026-03-04 or 2026-03-04T09:30
                       in this machine's time zone)
  parked-after=TIME    parked at or after TIME
  up-to=N              parked no later than entry N (a preview's count)
  all                  no condition: every parked letter (replay only)`

// queueFilter is the filter as the API takes it.
type queueFilter struct {
	Destination  string `json:"destination,omitempty"`
	Code         string `json:"code,omitempty"`
	Thread       string `json:"thread,omitempty"`
	ThreadToken  string `json:"threadToken,omitempty"`
	Patient      string `json:"patient,omitempty"`
	ParkedAfter  string `json:"parkedAfter,omitempty"`
	ParkedBefore string `json:"parkedBefore,omitempty"`
	UpTo         uint64 `json:"upTo,omitempty"`
	all          bool
}

func (f queueFilter) empty() bool {
	return f == queueFilter{} || f == queueFilter{all: true}
}

// String shows the filter as it was given (the CPR masked).
func (f queueFilter) String() string {
	var parts []string
	for _, kv := range [][2]string{{"destination", f.Destination}, {"code", f.Code}, {"thread", f.Thread}, {"thread-token", f.ThreadToken},
		{"parked-after", f.ParkedAfter}, {"parked-before", f.ParkedBefore}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+kv[1])
		}
	}
	if f.Patient != "" {
		parts = append(parts, "patient=[CPR]")
	}
	if f.UpTo != 0 {
		parts = append(parts, "up-to="+strconv.FormatUint(f.UpTo, 10))
	}
	if len(parts) == 0 {
		return "all"
	}
	return strings.Join(parts, ",")
}

// query is the filter as GET /api/v1/queue takes it (no patient).
func (f queueFilter) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"destination": f.Destination, "code": f.Code, "thread": f.Thread, "threadToken": f.ThreadToken,
		"parkedAfter": f.ParkedAfter, "parkedBefore": f.ParkedBefore} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.UpTo != 0 {
		q.Set("upTo", strconv.FormatUint(f.UpTo, 10))
	}
	return q
}

// parseFilter reads --filter values at time now.
func parseFilter(values []string, now time.Time) (queueFilter, error) {
	var f queueFilter
	for _, v := range values {
		for _, pair := range strings.Split(v, ",") {
			pair = strings.TrimSpace(pair)
			if pair == "" {
				continue
			}
			if pair == "all" {
				f.all = true
				continue
			}
			k, val, ok := strings.Cut(pair, "=")
			val = strings.TrimSpace(val)
			if !ok || val == "" {
				return f, fail(exitUsage, "--filter %q: must be key=value (see 'samhubctl queue list --help')", pair)
			}
			var err error
			switch strings.TrimSpace(k) {
			case "destination":
				f.Destination = val
			case "code":
				f.Code = val
			case "thread":
				f.Thread = val
			case "thread-token":
				f.ThreadToken = val
			case "patient":
				f.Patient = val
			case "older-than", "newer-than":
				var d time.Duration
				if d, err = parseAge(val); err == nil {
					at := now.Add(-d).UTC().Format(time.RFC3339)
					if k == "older-than" {
						f.ParkedBefore = at
					} else {
						f.ParkedAfter = at
					}
				}
			case "parked-before", "parked-after":
				var t time.Time
				if t, err = parseTime(val); err == nil {
					if k == "parked-before" {
						f.ParkedBefore = t.Format(time.RFC3339)
					} else {
						f.ParkedAfter = t.Format(time.RFC3339)
					}
				}
			case "up-to":
				if f.UpTo, err = strconv.ParseUint(val, 10, 64); err != nil || f.UpTo == 0 {
					err = fmt.Errorf("must be a positive entry number")
				}
			default:
				return f, fail(exitUsage, "--filter %q: unknown key %q; keys are %s", pair, k, strings.Join(filterKeys(), ", "))
			}
			if err != nil {
				return f, fail(exitUsage, "--filter %s: %v", k, err)
			}
		}
	}
	if f.all && f != (queueFilter{all: true}) {
		return f, fail(exitUsage, "--filter all: means every parked letter; give it alone or give conditions")
	}
	return f, nil
}

func filterKeys() []string {
	keys := []string{"destination", "code", "thread", "thread-token", "patient", "older-than", "newer-than", "parked-before", "parked-after", "up-to", "all"}
	sort.Strings(keys)
	return keys
}

// parseAge reads 90m, 4h, 2d, 1w.
func parseAge(s string) (time.Duration, error) {
	unit := map[byte]time.Duration{'d': 24 * time.Hour, 'w': 7 * 24 * time.Hour}[s[len(s)-1]]
	var d time.Duration
	var err error
	if unit != 0 {
		var n int
		n, err = strconv.Atoi(s[:len(s)-1])
		d = time.Duration(n) * unit
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q must be a positive duration such as 90m, 4h, 2d or 1w", s)
	}
	return d, nil
}

// parseTime reads RFC 3339, or a date or date and time in the local zone.
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q must be a time such as 2026-03-04T09:30:00+01:00, 2026-03-04T09:30 or 2026-03-04", s)
}
