package console

import (
	"cmp"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/samhub/samhub/pipeline/council"
)

// The council's figures as small SVG charts drawn on the server (no
// script, no chart library), each with a title and a description for
// screen readers and its numbers in a table beside it. The figures come
// from the council's register (council.KPI, as GET /api/v1/kpi), so they
// survive restarts and agree across replicas.

// chart is an SVG chart's geometry, in the viewBox's units.
type chart struct {
	ID, Title, Desc string
	Class           string // grouped: more than one bar a month
	W, H            float64
	// The plot area: bars stand on Y0 (vertical) or start at X0
	// (horizontal).
	X0, Y0, X1, Y1 float64
	Ticks          []tick
	Bars           []bar
	Legend         []legend
	Horizontal     bool
}

type tick struct {
	X, Y  float64 // where the grid line and its label are
	Label string
}

type bar struct {
	X, Y, W, H float64
	Class      string
	Tip        string // the bar's own title (hover, screen readers)
	Value      string // written at the bar's end; "" for none
	VX, VY     float64
	Label      string // under the bar (vertical) or before it (horizontal)
	Label2     string // a second line under it (the year)
	LX, LY     float64
}

type legend struct {
	X, Y  float64 // the label; its colour box stands before it
	BoxY  float64
	Class string
	Label string
}

// niceMax rounds a chart's largest value up to a step of 1, 2 or 5 times a
// power of ten, with at most five steps; it returns the top and the step.
func niceMax(v float64) (float64, float64) {
	if v <= 0 {
		return 1, 1
	}
	raw := v / 5
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	step := pow
	for _, m := range []float64{1, 2, 5, 10} {
		if m*pow >= raw {
			step = m * pow
			break
		}
	}
	step = math.Max(step, 1)
	return math.Ceil(v/step) * step, step
}

func r1(v float64) float64 { return math.Round(v*10) / 10 }

// num1 writes a figure with one decimal at most, as the language does.
func num1(lang string, v float64) string { return days(lang, r1(v)) }

var monthsShort = map[string][12]string{
	"en": {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"},
	"da": {"jan", "feb", "mar", "apr", "maj", "jun", "jul", "aug", "sep", "okt", "nov", "dec"},
}

// monthLabel is "mar" and, on the first month and each January, the year.
func monthLabel(lang, ym string, first bool) (string, string) {
	t, err := time.Parse("2006-01", ym)
	if err != nil {
		return ym, ""
	}
	year := ""
	if first || t.Month() == time.January {
		year = t.Format("2006")
	}
	return monthsShort[lang][t.Month()-1], year
}

// series is one value per month of a vertical chart.
type series struct {
	Name, Class string
	Values      []float64
	Has         []bool // false: no value that month (no bar, "–")
}

// columns is a vertical bar chart over months, with one bar per series
// in each month's slot.
func columns(lang, id, title, desc string, months []string, unit string, ss ...series) *chart {
	ch := &chart{ID: id, Title: title, Desc: desc, W: 720, H: 250, X0: 44, Y0: 200, X1: 710, Y1: 24}
	top := 0.0
	for _, s := range ss {
		for _, v := range s.Values {
			top = math.Max(top, v)
		}
	}
	top, step := niceMax(top)
	scale := (ch.Y0 - ch.Y1) / top
	for v := 0.0; v <= top+1e-9; v += step {
		ch.Ticks = append(ch.Ticks, tick{X: ch.X0 - 6, Y: r1(ch.Y0 - v*scale), Label: num1(lang, v)})
	}
	slot := (ch.X1 - ch.X0) / float64(len(months))
	bw := math.Min(34, slot*0.7/float64(len(ss)))
	for i, ym := range months {
		l1, l2 := monthLabel(lang, ym, i == 0)
		x := ch.X0 + float64(i)*slot + (slot-bw*float64(len(ss)))/2
		for j, s := range ss {
			b := bar{X: r1(x + float64(j)*bw), W: r1(bw - 2), Class: s.Class}
			if i < len(s.Values) && (s.Has == nil || s.Has[i]) {
				v := s.Values[i]
				b.H = r1(v * scale)
				b.Y = r1(ch.Y0 - b.H)
				b.Value = num1(lang, v)
				b.VX, b.VY = r1(b.X+b.W/2), r1(b.Y-4)
				b.Tip = l1 + " " + ym[:4] + ": " + num1(lang, v) + unit
				if s.Name != "" {
					b.Tip = s.Name + ", " + b.Tip
				}
			}
			if j == 0 {
				b.Label, b.Label2 = l1, l2
				b.LX, b.LY = r1(ch.X0+float64(i)*slot+slot/2), ch.Y0+16
			}
			ch.Bars = append(ch.Bars, b)
		}
	}
	if len(ss) > 1 {
		ch.Class = "grouped"
		for j, s := range ss {
			ch.Legend = append(ch.Legend, legend{X: ch.X0 + float64(j)*220, Y: 12, BoxY: 2, Class: s.Class, Label: s.Name})
		}
	}
	return ch
}

// hbars is a horizontal bar chart: one bar per label.
func hbars(lang, id, title, desc string, labels []string, values []float64) *chart {
	ch := &chart{ID: id, Title: title, Desc: desc, W: 720, X0: 260, X1: 660, Y1: 10, Horizontal: true}
	rowH := 26.0
	ch.H = ch.Y1 + rowH*float64(len(labels)) + 28
	ch.Y0 = ch.H - 22
	top := 0.0
	for _, v := range values {
		top = math.Max(top, v)
	}
	top, step := niceMax(top)
	scale := (ch.X1 - ch.X0) / top
	for v := 0.0; v <= top+1e-9; v += step {
		ch.Ticks = append(ch.Ticks, tick{X: r1(ch.X0 + v*scale), Y: ch.Y0 + 16, Label: num1(lang, v)})
	}
	for i, l := range labels {
		y := ch.Y1 + float64(i)*rowH
		b := bar{X: ch.X0, Y: r1(y + 4), H: rowH - 8, W: r1(values[i] * scale), Class: "bar", Value: num1(lang, values[i]),
			Label: shorten(l, 34), LX: ch.X0 - 8, LY: r1(y + rowH/2 + 4), Tip: l + ": " + num1(lang, values[i])}
		b.VX, b.VY = r1(b.X+b.W+6), b.LY
		ch.Bars = append(ch.Bars, b)
	}
	return ch
}

func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

type kpiMonth struct {
	Label                                        string
	Referrals, Recommended, Median, P90, Rejects string
}

type kpiPractice struct {
	Name, IDs string
	Referrals int
}

type kpiPage struct {
	K                council.KPI
	Months           int
	MonthChoices     []option
	From, To         string
	WatchDays        string
	Median, P90      string
	ReferralChart    *chart
	LeadChart        *chart
	PracticeChart    *chart
	RejectionChart   *chart
	Rows             []kpiMonth
	Practices        []kpiPractice
	PracticesOmitted int
	Coordinator      bool
	// NotKept notes the months before council.retention_days ("" when
	// the period is all kept).
	NotKept string
}

// practicesShown bounds the practice chart; the table lists them all.
const practicesShown = 12

func (c *Console) kpi(w http.ResponseWriter, r *http.Request, ses *session) {
	k, ok := c.register(w, r, ses)
	if !ok {
		return
	}
	months := 12
	if v := r.URL.Query().Get("months"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 60 {
			c.render(w, r, ses, http.StatusBadRequest, "error", errorPage{Message: tr(c.lang, "k.months.bad")})
			return
		}
		months = n
	}
	f := k.KPI(months)
	lang := c.lang
	p := kpiPage{K: f, Months: months, WatchDays: period(lang, f.WatchDays), From: day(f.From, k.Rule().Loc), To: day(f.To.Add(-12*time.Hour), k.Rule().Loc),
		Median: num1(lang, f.LeadTime.MedianDays), P90: num1(lang, f.LeadTime.P90Days), Coordinator: ses.role == "coordinator"}
	choices := []int{6, 12, 24, 36}
	if !slices.Contains(choices, months) {
		choices = append(choices, months) // a period typed into the address
		slices.Sort(choices)
	}
	for _, n := range choices {
		p.MonthChoices = append(p.MonthChoices, option{Value: strconv.Itoa(n), Label: tr(lang, "k.months.n", n), Selected: n == months})
	}
	var ym []string
	refs, med, p90, rej := series{Class: "bar"}, series{Name: tr(lang, "k.median"), Class: "bar"}, series{Name: tr(lang, "k.p90"), Class: "bar alt"}, series{Class: "bar warn"}
	if !f.KeptFrom.IsZero() {
		l1, year := monthLabel(lang, f.KeptFrom.Format("2006-01"), true)
		p.NotKept = tr(lang, "k.notkept", l1+" "+year, formatNum(lang, f.RetentionDays), day(f.KeptFrom, k.Rule().Loc))
	}
	for _, m := range f.Months {
		ym = append(ym, m.Month)
		l1, _ := monthLabel(lang, m.Month, true)
		if m.NotKept != "" {
			// No bar and no 0: the register no longer has the month.
			nk := tr(lang, "k.notkept.cell")
			p.Rows = append(p.Rows, kpiMonth{Label: l1 + " " + m.Month[:4], Referrals: nk, Recommended: nk, Median: "–", P90: "–", Rejects: nk})
			for _, s := range []*series{&refs, &med, &p90, &rej} {
				s.Values, s.Has = append(s.Values, 0), append(s.Has, false)
			}
			continue
		}
		row := kpiMonth{Label: l1 + " " + m.Month[:4], Referrals: formatNum(lang, m.Referrals), Recommended: formatNum(lang, m.Recommended), Median: "–", P90: "–", Rejects: "–"}
		refs.Values, refs.Has = append(refs.Values, float64(m.Referrals)), append(refs.Has, true)
		has := m.LeadTime.Count > 0
		med.Values, med.Has = append(med.Values, m.LeadTime.MedianDays), append(med.Has, has)
		p90.Values, p90.Has = append(p90.Values, m.LeadTime.P90Days), append(p90.Has, has)
		if has {
			row.Median, row.P90 = num1(lang, m.LeadTime.MedianDays), num1(lang, m.LeadTime.P90Days)
		}
		rej.Values, rej.Has = append(rej.Values, float64(m.Rejections)), append(rej.Has, true)
		if f.Rejections.Configured {
			row.Rejects = formatNum(lang, m.Rejections)
		}
		p.Rows = append(p.Rows, row)
	}
	period := tr(lang, "k.period", p.From, p.To)
	p.ReferralChart = columns(lang, "chart-referrals", tr(lang, "k.c.referrals"), tr(lang, "k.c.referrals.desc", period, formatNum(lang, f.Referrals)), ym, "", refs)
	p.LeadChart = columns(lang, "chart-leadtime", tr(lang, "k.c.lead"), tr(lang, "k.c.lead.desc", period, p.Median, p.P90), ym, " "+tr(lang, "k.days.unit"), med, p90)
	if f.Rejections.Configured {
		p.RejectionChart = columns(lang, "chart-rejections", tr(lang, "k.c.rejections"), tr(lang, "k.c.rejections.desc", period, formatNum(lang, f.Rejections.Total)), ym, "", rej)
	}
	var labels []string
	var values []float64
	for i, pr := range f.PerPractice {
		name := cmp.Or(pr.Name, orgIDs(pr.Org))
		p.Practices = append(p.Practices, kpiPractice{Name: name, IDs: orgIDs(pr.Org), Referrals: pr.Referrals})
		if i < practicesShown {
			labels, values = append(labels, name), append(values, float64(pr.Referrals))
		} else {
			p.PracticesOmitted++
		}
	}
	if len(labels) > 0 {
		p.PracticeChart = hbars(lang, "chart-practices", tr(lang, "k.c.practices"), tr(lang, "k.c.practices.desc", period, formatNum(lang, len(f.PerPractice))), labels, values)
	}
	c.render(w, r, ses, http.StatusOK, "kpi", p)
}
