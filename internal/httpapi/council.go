package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/samhub/samhub/pipeline/council"
)

// The council's month: meetings, the referral register and the figures
// (pipeline/council). Pages of the console are thin views of these.

// councilRoutes are the council's API routes and who may call them.
var councilRoutes = []route{
	{"GET /api/v1/meetings", []string{RoleCoordinator}, (*Server).meetingList},
	{"POST /api/v1/meetings", []string{RoleCoordinator}, (*Server).meetingAdd},
	{"GET /api/v1/meetings/{id}", []string{RoleCoordinator}, (*Server).meetingShow},
	{"POST /api/v1/meetings/{id}/move", []string{RoleCoordinator}, (*Server).meetingMove},
	{"POST /api/v1/meetings/{id}/cancel", []string{RoleCoordinator}, (*Server).meetingCancel},
	{"POST /api/v1/meetings/{id}/agenda", []string{RoleCoordinator}, (*Server).meetingAgenda},
	{"GET /api/v1/referrals", []string{RoleCoordinator}, (*Server).referralList},
	{"POST /api/v1/referrals/{id}/move", []string{RoleCoordinator}, (*Server).referralMove},
	{"POST /api/v1/referrals/{id}/withdraw", []string{RoleCoordinator}, (*Server).referralWithdraw},
	{"POST /api/v1/referrals/{id}/reinstate", []string{RoleCoordinator}, (*Server).referralReinstate},
	{"GET /api/v1/kpi", []string{RoleCoordinator, RoleOperations}, (*Server).kpi},
}

// council returns the register, or answers that it is off.
func (s *Server) council(w http.ResponseWriter, r *http.Request) (*council.Council, bool) {
	c := s.hub.Council()
	if c == nil {
		problem(w, r, http.StatusNotFound, "not-found", council.ErrOff.Error())
		return nil, false
	}
	return c, true
}

func (s *Server) councilActor(r *http.Request) council.Actor {
	a := s.actor(r)
	return council.Actor{Name: a.Name, Role: a.Role, Remote: a.Remote}
}

// dateParam reads a YYYY-MM-DD query parameter in the council's zone.
func dateParam(r *http.Request, name string, loc *time.Location, def time.Time) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	t, err := time.ParseInLocation(time.DateOnly, v, loc)
	if err != nil {
		return t, errors.New(name + ": must be a date such as 2026-03-01")
	}
	return t, nil
}

// meetingList lists the meetings from ?from to ?to (dates; by default from
// three months back to six months ahead).
func (s *Server) meetingList(w http.ResponseWriter, r *http.Request) {
	c, ok := s.council(w, r)
	if !ok {
		return
	}
	loc := c.Rule().Loc
	now := time.Now().In(loc)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	from, err := dateParam(r, "from", loc, today.AddDate(0, -3, 0))
	if err != nil {
		problem(w, r, 400, "bad-request", err.Error())
		return
	}
	to, err := dateParam(r, "to", loc, today.AddDate(0, 6, 0))
	if err != nil {
		problem(w, r, 400, "bad-request", err.Error())
		return
	}
	if !to.After(from) || to.Sub(from) > 5*366*24*time.Hour {
		problem(w, r, 400, "bad-request", "to: must be after from and at most five years later")
		return
	}
	ms := c.Meetings(from, to)
	if ms == nil {
		ms = []council.Meeting{}
	}
	writeJSON(w, 200, map[string]any{"zone": loc.String(), "rule": c.Rule().String(), "cap": c.Cap(), "watchDays": c.WatchDays(), "meetings": ms})
}

func (s *Server) meetingShow(w http.ResponseWriter, r *http.Request) {
	c, ok := s.council(w, r)
	if !ok {
		return
	}
	v, err := c.MeetingView(r.Context(), r.PathValue("id"))
	if err != nil {
		s.councilFail(w, r, err)
		return
	}
	writeJSON(w, 200, v)
}

type meetingBody struct {
	At     string `json:"at"`
	Cap    int    `json:"cap"`
	Reason string `json:"reason"`
}

// councilAction is a coordinator's action on the register: the body read
// into a B, do's answer written with status, or the register's refusal.
func councilAction[B any](s *Server, status int, do func(c *council.Council, r *http.Request, b B) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, ok := s.council(w, r)
		if !ok {
			return
		}
		var b B
		if err := readBody(r, &b); err != nil {
			problem(w, r, 400, "bad-request", err.Error())
			return
		}
		v, err := do(c, r, b)
		if err != nil {
			s.councilFail(w, r, err)
			return
		}
		writeJSON(w, status, v)
	}
}

func (s *Server) meetingAdd(w http.ResponseWriter, r *http.Request) {
	councilAction(s, http.StatusCreated, func(c *council.Council, r *http.Request, b meetingBody) (any, error) {
		return c.AddMeeting(r.Context(), s.councilActor(r), b.At, b.Cap, b.Reason)
	})(w, r)
}

func (s *Server) meetingMove(w http.ResponseWriter, r *http.Request) {
	councilAction(s, 200, func(c *council.Council, r *http.Request, b meetingBody) (any, error) {
		return c.MoveMeeting(r.Context(), s.councilActor(r), r.PathValue("id"), b.At, b.Reason)
	})(w, r)
}

// meetingCancel cancels a meeting that seats no child.
func (s *Server) meetingCancel(w http.ResponseWriter, r *http.Request) {
	councilAction(s, 200, func(c *council.Council, r *http.Request, b meetingBody) (any, error) {
		return c.CancelMeeting(r.Context(), s.councilActor(r), r.PathValue("id"), b.Reason)
	})(w, r)
}

type agendaBody struct {
	Reason string `json:"reason"`
	// Format is json (default) or csv; csv, or Export, is an export of
	// personal data and needs a reason.
	Format string `json:"format"`
	Export bool   `json:"export"`
}

// meetingAgenda is the meeting with the children's names: a POST because
// it reads personal data, audited before anything is returned.
func (s *Server) meetingAgenda(w http.ResponseWriter, r *http.Request) {
	c, ok := s.council(w, r)
	if !ok {
		return
	}
	var b agendaBody
	if err := readBody(r, &b); err != nil {
		problem(w, r, 400, "bad-request", err.Error())
		return
	}
	export := ""
	switch b.Format {
	case "", "json":
		if b.Export {
			export = "json"
		}
	case "csv":
		export = "csv"
	default:
		problem(w, r, 400, "bad-request", "format: must be json or csv")
		return
	}
	id := r.PathValue("id")
	v, err := c.Agenda(r.Context(), s.councilActor(r), id, b.Reason, export)
	if err != nil {
		s.councilFail(w, r, err)
		return
	}
	if b.Format != "csv" {
		writeJSON(w, 200, v)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="samraad-`+strings.ReplaceAll(id, `"`, "")+`.csv"`)
	w.WriteHeader(200)
	if err := c.WriteCSV(w, v); err != nil {
		s.log.Error("agenda csv not written", "meeting", id, "err", err)
	}
}

// referralList lists the register's referrals: ?state=waiting|answered|
// unanswered, ?meeting=ID.
func (s *Server) referralList(w http.ResponseWriter, r *http.Request) {
	c, ok := s.council(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	f := council.ReferralFilter{State: q.Get("state"), Meeting: q.Get("meeting")}
	switch f.State {
	case "", "waiting", "answered", "unanswered", "withdrawn":
	default:
		problem(w, r, 400, "bad-request", "state: must be waiting, answered, unanswered or withdrawn")
		return
	}
	writeJSON(w, 200, map[string]any{"watchDays": c.WatchDays(), "zone": c.Rule().Loc.String(), "referrals": c.Referrals(f)})
}

// referralBody is a coordinator's action on a referral; Meeting is where a
// move takes it (or a reinstated referral goes; "" for its own).
type referralBody struct {
	Meeting string `json:"meeting"`
	Reason  string `json:"reason"`
}

// referralMove moves a child's seat (the referral with letter id {id}) to
// the meeting named in the body.
func (s *Server) referralMove(w http.ResponseWriter, r *http.Request) {
	councilAction(s, 200, func(c *council.Council, r *http.Request, b referralBody) (any, error) {
		return c.MoveReferral(r.Context(), s.councilActor(r), r.PathValue("id"), b.Meeting, b.Reason)
	})(w, r)
}

// referralWithdraw withdraws the referral with letter id {id}.
func (s *Server) referralWithdraw(w http.ResponseWriter, r *http.Request) {
	councilAction(s, 200, func(c *council.Council, r *http.Request, b referralBody) (any, error) {
		return c.WithdrawReferral(r.Context(), s.councilActor(r), r.PathValue("id"), b.Reason)
	})(w, r)
}

// referralReinstate undoes the withdrawal of the referral with letter id
// {id}: in its own meeting, or in the meeting the body names.
func (s *Server) referralReinstate(w http.ResponseWriter, r *http.Request) {
	councilAction(s, 200, func(c *council.Council, r *http.Request, b referralBody) (any, error) {
		return c.ReinstateReferral(r.Context(), s.councilActor(r), r.PathValue("id"), b.Meeting, b.Reason)
	})(w, r)
}

// kpi is the council's figures over ?months (default 12).
func (s *Server) kpi(w http.ResponseWriter, r *http.Request) {
	c, ok := s.council(w, r)
	if !ok {
		return
	}
	months := 12
	if v := r.URL.Query().Get("months"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 60 {
			problem(w, r, 400, "bad-request", "months: must be a number from 1 to 60")
			return
		}
		months = n
	}
	writeJSON(w, 200, c.KPI(months))
}

func (s *Server) councilFail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, council.ErrNoMeeting):
		problem(w, r, 404, "not-found", "no council meeting with that id (see GET /api/v1/meetings)")
	case errors.Is(err, council.ErrReasonRequired):
		problem(w, r, 400, "reason-required", "a reason is required (field: reason)")
	case errors.Is(err, council.ErrBadTime):
		problem(w, r, 400, "bad-request", err.Error())
	case errors.Is(err, council.ErrMeetingClash), errors.Is(err, council.ErrNoRoom), errors.Is(err, council.ErrAnswered), errors.Is(err, council.ErrNotSeat), errors.Is(err, council.ErrNotEmpty), errors.Is(err, council.ErrWithdrawn), errors.Is(err, council.ErrChildOpen):
		problem(w, r, 409, "conflict", err.Error())
	case errors.Is(err, council.ErrNoReferral):
		problem(w, r, 404, "not-found", err.Error())
	default:
		s.fail(w, r, err)
	}
}
