package rest

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keylens/keylens"
)

// Aggregate analytics in Tyk's shapes: {"data":[row…],"pages":N}, rows
// {"id":{"day","month","year","hour","code"},"hits","success","error",
// "last_hit"}. All times are UTC.

type hitRowJSON struct {
	ID struct {
		Day   int `json:"day"`
		Month int `json:"month"`
		Year  int `json:"year"`
		Hour  int `json:"hour"`
		Code  int `json:"code"`
	} `json:"id"`
	Hits        int64   `json:"hits"`
	Success     int64   `json:"success"`
	Error       int64   `json:"error"`
	LastHit     string  `json:"last_hit"`
	RequestTime float64 `json:"request_time"` // mean latency in ms, when reported
}

type hitList struct {
	Data  []hitRowJSON `json:"data"`
	Pages int          `json:"pages"`
}

// maxQueryKeys bounds the keys of one aggregate query.
const maxQueryKeys = 1000

// GET /api/activity/keys/aggregate/{keys}/{fd}/{fm}/{fy}/{td}/{tm}/{ty}
func (s *Server) aggregateKeys(w http.ResponseWriter, r *http.Request) {
	var keys []string
	for k := range strings.SplitSeq(r.PathValue("keys"), ",") {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, keylens.KeyHashOf(k))
		}
	}
	s.answerHits(w, r, keys)
}

// GET /api/activity/keys/{key}/{fd}/{fm}/{fy}/{td}/{tm}/{ty}
func (s *Server) keyActivity(w http.ResponseWriter, r *http.Request) {
	var keys []string
	if k := strings.TrimSpace(r.PathValue("key")); k != "" {
		keys = []string{keylens.KeyHashOf(k)}
	}
	s.answerHits(w, r, keys)
}

func (s *Server) answerHits(w http.ResponseWriter, r *http.Request, keys []string) {
	// No key at all (a new developer's dashboard asks for ",") is an
	// empty answer, not an error: real custom portals crash on a 400.
	if len(keys) > maxQueryKeys {
		s.writeError(w, r, keylens.Errorf(keylens.EINVALID, "at most %d keys per query", maxQueryKeys))
		return
	}
	from, err := pathDate(r, "fd", "fm", "fy")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	to, err := pathDate(r, "td", "tm", "ty")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.queryHits(w, r, keys, from, to)
}

// queryHits answers the counters of keys from the day from to the day to,
// both whole, with the query string's res, api_id, by_code and p.
func (s *Server) queryHits(w http.ResponseWriter, r *http.Request, keys []string, from, to time.Time) {
	q := r.URL.Query()
	hq := keylens.HitQuery{Keys: keys, From: from, To: to.AddDate(0, 0, 1), Res: q.Get("res")}
	if hq.Res == "" {
		hq.Res = keylens.ResDay
	}
	if from.After(to) {
		s.writeError(w, r, keylens.Errorf(keylens.EINVALID, "from is after to"))
		return
	}
	switch v := q.Get("by_code"); v {
	case "", "0", "false":
	case "1", "true":
		hq.ByCode = true
	default:
		s.writeError(w, r, keylens.Errorf(keylens.EINVALID, "by_code must be true or false"))
		return
	}
	p := -1
	if v := q.Get("p"); v != "" {
		var err error
		if p, err = strconv.Atoi(v); err != nil {
			s.writeError(w, r, keylens.Errorf(keylens.EINVALID, "p must be a whole number"))
			return
		}
	}
	if api := q.Get("api_id"); api != "" {
		ids, err := s.apisOf(r, api)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		hq.APIIDs = ids
	}
	rows, err := s.Hits.QueryHits(r.Context(), hq)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := hitList{Data: make([]hitRowJSON, 0, len(rows))}
	if p >= 1 {
		out.Pages = pages(len(rows))
		lo := min(pageOffset(p), len(rows))
		rows = rows[lo:min(lo+PageSize, len(rows))]
	}
	for _, row := range rows {
		var j hitRowJSON
		t := row.Period
		j.ID.Year, j.ID.Month, j.ID.Code = t.Year(), int(t.Month()), row.Code
		if hq.Res != keylens.ResMonth {
			j.ID.Day = t.Day()
		}
		if hq.Res == keylens.ResHour {
			j.ID.Hour = t.Hour()
		}
		j.Hits, j.Success, j.Error = row.Hits, row.Success, row.Errors
		j.LastHit = row.LastHit.UTC().Format(time.RFC3339)
		j.RequestTime = row.LatencyMS
		out.Data = append(out.Data, j)
	}
	writeJSON(w, http.StatusOK, out)
}

// apisOf resolves an api_id filter: an API id, or a policy id standing for
// the APIs the catalogue publishes under it.
func (s *Server) apisOf(r *http.Request, id string) ([]string, error) {
	ids := []string{id}
	c, err := s.Catalogue.Catalogue(r.Context())
	if err != nil {
		return nil, err
	}
	for _, e := range c.APIs {
		if e.PolicyID == id && e.APIID != "" && !slices.Contains(ids, e.APIID) {
			ids = append(ids, e.APIID)
		}
	}
	return ids, nil
}

// pathDate reads a D/M/YYYY date from three path segments, zero-padded or
// not.
func pathDate(r *http.Request, d, m, y string) (time.Time, error) {
	return parseDate(r.PathValue(d) + "/" + r.PathValue(m) + "/" + r.PathValue(y))
}

// parseDate reads D/M/YYYY (zero-padded or not) or YYYY-MM-DD as a UTC day.
func parseDate(s string) (time.Time, error) {
	bad := keylens.Errorf(keylens.EINVALID, "date %q: want D/M/YYYY", s)
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	parts := strings.Split(s, "/")
	if len(parts) != 3 {
		return time.Time{}, bad
	}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || p == "" || p[0] == '+' || p[0] == '-' || len(p) > 4 {
			return time.Time{}, bad
		}
		n[i] = v
	}
	day, month, year := n[0], n[1], n[2]
	if year < 1970 || year > 9999 || month < 1 || month > 12 || day < 1 {
		return time.Time{}, bad
	}
	t := time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
	if t.Day() != day { // 31/2 normalises into March
		return time.Time{}, bad
	}
	return t, nil
}

// GET /api/portal/developers/{id}/usage?from=&to=&res=: the counters of
// all the developer's keys (the admin screens' "Developer Usage"); from
// and to are D/M/YYYY or YYYY-MM-DD, by default the last 30 days.
func (s *Server) developerUsage(w http.ResponseWriter, r *http.Request, id string) {
	d, err := s.Developers.FindDeveloperByID(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	to := time.Now().UTC().Truncate(24 * time.Hour)
	if v := q.Get("to"); v != "" {
		if to, err = parseDate(v); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	from := to.AddDate(0, 0, -29)
	if v := q.Get("from"); v != "" {
		if from, err = parseDate(v); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	keys := make([]string, 0, len(d.Keys))
	for k := range d.Keys {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	s.queryHits(w, r, keys, from, to)
}
