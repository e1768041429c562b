package console_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/samhub/samhub/internal/hubtest"
)

// Months older than council.retention_days read "not kept" on the
// figures page, with a note saying from when the figures count; within
// the retention nothing is said.
func TestCouncilFiguresSayWhatIsNotKept(t *testing.T) {
	h := startHub(t)
	c, _ := login(t, h, "drift", hubtest.OperationsPassword)
	st, page := get(t, c, h.BaseURL+"/console/kpi?months=36") // the default retention is 760 days
	if st != http.StatusOK {
		t.Fatalf("status %d", st)
	}
	mustContain(t, "the note", page, `id="kpi-notkept"`, "council.retention_days")
	table := regexp.MustCompile(`(?s)<table id="table-referrals".*?</table>`).FindString(page)
	notKept := regexp.MustCompile(`<td class="n">not kept</td>`).FindAllString(table, -1)
	if len(notKept) == 0 || len(notKept) > 12 {
		t.Errorf("%d months not kept in the referrals table:\n%s", len(notKept), table)
	}
	if strings.Count(table, `<th scope="row">`) != 37 { // 36 months and the total
		t.Errorf("rows:\n%s", table)
	}
	_, page = get(t, c, h.BaseURL+"/console/kpi?months=12")
	if strings.Contains(page, `id="kpi-notkept"`) || strings.Contains(page, "not kept") {
		t.Errorf("twelve months are kept, yet the page says otherwise")
	}
}
