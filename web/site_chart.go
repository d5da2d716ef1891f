package web

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keylens/keylens"
)

// usage is a chart of hits, successes and errors per day over a range, with
// totals and, optionally, the status codes: Developer Usage and Key
// analytics both show one.
type usage struct {
	From, To string // YYYY-MM-DD, for the range form
	Error    string // a range that could not be read: the default is shown
	Chart    chart
	Codes    []codeCount // by status code, when asked
}

type codeCount struct {
	Code int
	Hits int64
}

// chart is an inline SVG line chart drawn on the server: the template
// chart.html writes it, escaping every value.
type chart struct {
	Label                    string // the SVG's accessible name
	W, H                     int
	Left, Top, Right, Bottom float64 // the plot area
	Series                   []series
	YTicks, XTicks           []tick
	Days                     []dayCount
	Hits, Success, Errors    int64 // totals
	Empty                    bool
}

type series struct {
	Name, Class string
	Points      string // "x,y x,y …"
	Dots        []point
}

type point struct{ X, Y float64 }

type tick struct {
	Pos   float64
	Label string
}

type dayCount struct {
	Date                  string
	Hits, Success, Errors int64
}

// maxUsageDays bounds a chosen range.
const maxUsageDays = 366

// usageRange reads ?from=&to= (YYYY-MM-DD, both days whole): by default the
// last 30 days up to today (UTC).
func usageRange(r *http.Request, now time.Time) (from, to time.Time, errMsg string) {
	to = now.UTC().Truncate(24 * time.Hour)
	from = to.AddDate(0, 0, -29)
	q := r.URL.Query()
	if q.Get("from") == "" && q.Get("to") == "" {
		return from, to, ""
	}
	f, err1 := time.Parse(time.DateOnly, q.Get("from"))
	t, err2 := time.Parse(time.DateOnly, q.Get("to"))
	switch {
	case err1 != nil || err2 != nil:
		return from, to, "Give both dates as YYYY-MM-DD. Showing the last 30 days."
	case f.After(t):
		return from, to, "The range starts after it ends. Showing the last 30 days."
	case t.Sub(f) >= maxUsageDays*24*time.Hour:
		return from, to, fmt.Sprintf("A range is at most %d days. Showing the last 30 days.", maxUsageDays)
	}
	return f, t, ""
}

// loadUsage queries the counters of keys per day from `from` to `to` (both
// whole days) and draws them; with codes, it also totals them by status.
// The console and the developer portal both draw it.
func loadUsage(ctx context.Context, hits keylens.HitService, now time.Time, r *http.Request, keys []string, label string, codes bool) (*usage, error) {
	from, to, errMsg := usageRange(r, now)
	u := &usage{From: from.Format(time.DateOnly), To: to.Format(time.DateOnly), Error: errMsg}
	var rows []keylens.HitRow
	if len(keys) > 0 {
		var err error
		rows, err = hits.QueryHits(ctx, keylens.HitQuery{Keys: keys, From: from, To: to.AddDate(0, 0, 1), Res: keylens.ResDay, ByCode: codes})
		if err != nil {
			return nil, err
		}
	}
	if codes {
		byCode := map[int]int64{}
		for _, row := range rows {
			byCode[row.Code] += row.Hits
		}
		for code, n := range byCode {
			u.Codes = append(u.Codes, codeCount{Code: code, Hits: n})
		}
		slices.SortFunc(u.Codes, func(a, b codeCount) int { return a.Code - b.Code })
	}
	u.Chart = drawChart(rows, from, to, label)
	return u, nil
}

// drawChart lays out one line per measure over the days from `from` to
// `to`. Rows may hold several per day (one per status code): they are
// summed.
func drawChart(rows []keylens.HitRow, from, to time.Time, label string) chart {
	const w, h = 720, 260
	ch := chart{Label: label, W: w, H: h, Left: 56, Top: 16, Right: w - 16, Bottom: h - 36}
	n := int(to.Sub(from).Hours()/24) + 1
	index := make(map[string]int, n)
	ch.Days = make([]dayCount, n)
	for i := range n {
		d := from.AddDate(0, 0, i).Format(time.DateOnly)
		ch.Days[i].Date, index[d] = d, i
	}
	for _, row := range rows {
		i, ok := index[row.Period.UTC().Format(time.DateOnly)]
		if !ok {
			continue
		}
		ch.Days[i].Hits += row.Hits
		ch.Days[i].Success += row.Success
		ch.Days[i].Errors += row.Errors
	}
	var top int64
	for _, d := range ch.Days {
		ch.Hits += d.Hits
		ch.Success += d.Success
		ch.Errors += d.Errors
		top = max(top, d.Hits)
	}
	ch.Empty = ch.Hits == 0
	yMax, step := niceScale(top)
	x := func(i int) float64 {
		if n == 1 {
			return (ch.Left + ch.Right) / 2
		}
		return ch.Left + float64(i)*(ch.Right-ch.Left)/float64(n-1)
	}
	y := func(v int64) float64 { return ch.Bottom - float64(v)*(ch.Bottom-ch.Top)/float64(yMax) }
	for v := int64(0); v <= yMax; v += step {
		ch.YTicks = append(ch.YTicks, tick{Pos: y(v), Label: compact(v)})
	}
	every := max(1, int(math.Ceil(float64(n)/8)))
	for i := 0; i < n; i += every {
		t, _ := time.Parse(time.DateOnly, ch.Days[i].Date)
		ch.XTicks = append(ch.XTicks, tick{Pos: x(i), Label: t.Format("2 Jan")})
	}
	for _, s := range []struct {
		name, class string
		get         func(dayCount) int64
	}{
		{"Hits", "hits", func(d dayCount) int64 { return d.Hits }},
		{"Successes", "success", func(d dayCount) int64 { return d.Success }},
		{"Errors", "errors", func(d dayCount) int64 { return d.Errors }},
	} {
		var b strings.Builder
		sr := series{Name: s.name, Class: s.class}
		for i, d := range ch.Days {
			px, py := x(i), y(s.get(d))
			fmt.Fprintf(&b, "%.1f,%.1f ", px, py)
			if n <= 62 {
				sr.Dots = append(sr.Dots, point{px, py})
			}
		}
		sr.Points = strings.TrimSpace(b.String())
		ch.Series = append(ch.Series, sr)
	}
	return ch
}

// niceScale returns an axis top at or above v and a step of 1, 2 or 5
// times a power of ten giving four to ten ticks.
func niceScale(v int64) (top, step int64) {
	if v <= 4 {
		return 4, 1
	}
	raw := float64(v) / 4
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = int64(m * mag)
			break
		}
	}
	top = (v + step - 1) / step * step
	return top, step
}

// compact writes a count for an axis: 950, 12k, 3.4M.
func compact(v int64) string {
	switch {
	case v >= 1_000_000:
		return strconv.FormatFloat(float64(v)/1e6, 'f', -1, 64) + "M"
	case v >= 10_000:
		return strconv.FormatInt(v/1000, 10) + "k"
	}
	return strconv.FormatInt(v, 10)
}
