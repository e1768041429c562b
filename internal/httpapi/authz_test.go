package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/samhub/samhub/internal/httpapi"
	"github.com/samhub/samhub/internal/hubtest"
)

// policy is who may call each API route, written down here independently
// of server.go so that a change to either shows up as a failing test.
var policy = map[string][]string{
	"GET /api/v1/whoami":                                {httpapi.RoleCoordinator, httpapi.RoleOperations, httpapi.RoleAuditor},
	"GET /api/v1/stats":                                 {httpapi.RoleCoordinator, httpapi.RoleOperations},
	"GET /api/v1/queue":                                 {httpapi.RoleCoordinator},
	"GET /api/v1/queue/{seq}":                           {httpapi.RoleCoordinator},
	"POST /api/v1/queue/{seq}/replay":                   {httpapi.RoleCoordinator},
	"POST /api/v1/queue/{seq}/discard":                  {httpapi.RoleCoordinator},
	"POST /api/v1/queue/replay":                         {httpapi.RoleCoordinator},
	"POST /api/v1/queue/search":                         {httpapi.RoleCoordinator},
	"POST /api/v1/queue/bulk-replays":                   {httpapi.RoleCoordinator},
	"GET /api/v1/queue/bulk-replays":                    {httpapi.RoleCoordinator},
	"GET /api/v1/queue/bulk-replays/{id}":               {httpapi.RoleCoordinator},
	"GET /api/v1/holds":                                 {httpapi.RoleCoordinator, httpapi.RoleOperations},
	"POST /api/v1/holds/{destination}/{thread}/release": {httpapi.RoleCoordinator},
	"GET /api/v1/letters/{id}/trace":                    {httpapi.RoleCoordinator},
	"POST /api/v1/letters/{id}/content":                 {httpapi.RoleCoordinator},
	"POST /api/v1/consents":                             {httpapi.RoleCoordinator},
	"POST /api/v1/consents/lookup":                      {httpapi.RoleCoordinator},
	"POST /api/v1/consents/revoke":                      {httpapi.RoleCoordinator},
	"GET /api/v1/audit":                                 {httpapi.RoleAuditor},
	"GET /api/v1/rejected":                              {httpapi.RoleCoordinator, httpapi.RoleOperations},
	"POST /api/v1/rejected/{source}/{id}/put-back":      {httpapi.RoleCoordinator},
	"GET /api/v1/meetings":                              {httpapi.RoleCoordinator},
	"POST /api/v1/meetings":                             {httpapi.RoleCoordinator},
	"GET /api/v1/meetings/{id}":                         {httpapi.RoleCoordinator},
	"POST /api/v1/meetings/{id}/move":                   {httpapi.RoleCoordinator},
	"POST /api/v1/meetings/{id}/cancel":                 {httpapi.RoleCoordinator},
	"POST /api/v1/meetings/{id}/agenda":                 {httpapi.RoleCoordinator},
	"GET /api/v1/referrals":                             {httpapi.RoleCoordinator},
	"POST /api/v1/referrals/{id}/move":                  {httpapi.RoleCoordinator},
	"POST /api/v1/referrals/{id}/withdraw":              {httpapi.RoleCoordinator},
	"POST /api/v1/referrals/{id}/reinstate":             {httpapi.RoleCoordinator},
	"GET /api/v1/kpi":                                   {httpapi.RoleCoordinator, httpapi.RoleOperations},
}

type caller struct {
	name  string
	role  string // "" for callers without a valid token
	token string
}

var callers = []caller{
	{"coordinator", httpapi.RoleCoordinator, hubtest.CoordinatorToken},
	{"operations", httpapi.RoleOperations, hubtest.OperationsToken},
	{"auditor", httpapi.RoleAuditor, hubtest.AuditorToken},
	{"no token", "", ""},
	{"wrong token", "", "not-a-configured-token"},
}

// bodyFor is a well-formed body for each POST route, aimed at ids that do
// not exist, so allowed calls change nothing but the consent registry.
func bodyFor(route string) []byte {
	if strings.Contains(route, "/consents") {
		return []byte(`{"patient":"2509479989","consent":{"givenBy":"custody-holder","form":"written","scopes":["municipality"]},"reason":"authorisation matrix test"}`)
	}
	if strings.HasSuffix(route, "/queue/replay") {
		return []byte(`{"seqs":[999999],"reason":"authorisation matrix test"}`)
	}
	if strings.HasSuffix(route, "/queue/bulk-replays") {
		return []byte(`{"filter":{"destination":"nowhere"},"dryRun":true}`)
	}
	return []byte(`{"reason":"authorisation matrix test"}`)
}

func TestAuthorisationMatrix(t *testing.T) {
	h := hubtest.Start(t)
	routes := httpapi.Routes()
	listed := map[string]bool{}
	for _, rt := range routes {
		listed[rt] = true
		if _, ok := policy[rt]; !ok {
			t.Errorf("route %s has no row in the authorisation policy of this test", rt)
		}
	}
	for rt := range policy {
		if !listed[rt] {
			t.Errorf("the policy names %s, which httpapi.Routes() does not list", rt)
		}
	}
	for _, rt := range routes {
		method, pattern, _ := strings.Cut(rt, " ")
		path := strings.NewReplacer("{seq}", "999999", "{id}", "no-such-letter", "{destination}", "gp", "{thread}", "0000", "{source}", "medcom").Replace(pattern)
		for _, c := range callers {
			t.Run(rt+" as "+c.name, func(t *testing.T) {
				var body *bytes.Reader
				if method == http.MethodPost {
					body = bytes.NewReader(bodyFor(rt))
				} else {
					body = bytes.NewReader(nil)
				}
				req, err := http.NewRequest(method, h.BaseURL+path, body)
				if err != nil {
					t.Fatal(err)
				}
				if c.token != "" {
					req.Header.Set("Authorization", "Bearer "+c.token)
				}
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				allowed := false
				for _, r := range policy[rt] {
					allowed = allowed || r == c.role
				}
				st := resp.StatusCode
				switch {
				case c.role == "":
					if st != http.StatusUnauthorized {
						t.Fatalf("status %d, want 401", st)
					}
				case !allowed:
					if st != http.StatusForbidden {
						t.Fatalf("status %d, want 403", st)
					}
				default:
					// Allowed: a 2xx, or a 4xx about the (missing) item, never 401/403/5xx.
					if st == http.StatusUnauthorized || st == http.StatusForbidden || st >= 500 || st < 200 {
						t.Fatalf("status %d, want 2xx or a 4xx other than 401/403", st)
					}
				}
				if st >= 400 {
					if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
						t.Errorf("error answer has Content-Type %q, want application/problem+json", ct)
					}
					var p struct {
						Status int    `json:"status"`
						Detail string `json:"detail"`
					}
					if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || p.Status != st || p.Detail == "" {
						t.Errorf("problem document %+v (%v)", p, err)
					}
				}
			})
		}
	}
}
