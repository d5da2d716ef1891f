package web

import (
	"html/template"
	"strconv"
	"time"
)

// funcs are the templates' helpers: formatting only.
var funcs = template.FuncMap{
	"num":   num,
	"f1":    func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
	"plus":  func(a, b float64) float64 { return a + b },
	"minus": func(a, b float64) float64 { return a - b },
	"half":  func(a float64) float64 { return a / 2 },
	"date":  date,
	"day":   day,
	"entry": entryLink,
	"short": shortHash,
}

// num writes a count with thousands separators: 100,000.
func num(v any) string {
	var n int64
	switch x := v.(type) {
	case int:
		n = int64(x)
	case int64:
		n = x
	default:
		return "?"
	}
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// date writes an instant in UTC to the minute; "—" for none.
func date(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2 Jan 2006 15:04")
}

// day writes the UTC day of an instant; "—" for none.
func day(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2 Jan 2006")
}
