package rest

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keylens/keylens/portalstore"
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
			keys = append(keys, portalstore.KeyHashOf(k))
		}
	}
	s.answerHits(w, r, keys)
}

// GET /api/activity/keys/{key}/{fd}/{fm}/{fy}/{td}/{tm}/{ty}
func (s *Server) keyActivity(w http.ResponseWriter, r *http.Request) {
	var keys []string
	if k := strings.TrimSpace(r.PathValue("key")); k != "" {
		keys = []string{portalstore.KeyHashOf(k)}
	}
	s.answerHits(w, r, keys)
}

func (s *Server) answerHits(w http.ResponseWriter, r *http.Request, keys []string) {
	switch {
	case len(keys) == 0:
		s.writeError(w, r, portalstore.Errorf(portalstore.EINVALID, "name at least one key"))
		return
	case len(keys) > maxQueryKeys:
		s.writeError(w, r, portalstore.Errorf(portalstore.EINVALID, "at most %d keys per query", maxQueryKeys))
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
	hq := portalstore.HitQuery{Keys: keys, From: from, To: to.AddDate(0, 0, 1), Res: q.Get("res")}
	if hq.Res == "" {
		hq.Res = portalstore.ResDay
	}
	if from.After(to) {
		s.writeError(w, r, portalstore.Errorf(portalstore.EINVALID, "from is after to"))
		return
	}
	switch v := q.Get("by_code"); v {
	case "", "0", "false":
	case "1", "true":
		hq.ByCode = true
	default:
		s.writeError(w, r, portalstore.Errorf(portalstore.EINVALID, "by_code must be true or false"))
		return
	}
	p := -1
	if v := q.Get("p"); v != "" {
		var err error
		if p, err = strconv.Atoi(v); err != nil {
			s.writeError(w, r, portalstore.Errorf(portalstore.EINVALID, "p must be a whole number"))
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
		lo := min((p-1)*PageSize, len(rows))
		rows = rows[lo:min(lo+PageSize, len(rows))]
	}
	for _, row := range rows {
		var j hitRowJSON
		t := row.Period
		j.ID.Year, j.ID.Month, j.ID.Code = t.Year(), int(t.Month()), row.Code
		if hq.Res != portalstore.ResMonth {
			j.ID.Day = t.Day()
		}
		if hq.Res == portalstore.ResHour {
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
	bad := portalstore.Errorf(portalstore.EINVALID, "date %q: want D/M/YYYY", s)
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

// maxHitsBody bounds a POST /api/keylens/hits body: a sidecar's group of
// batches, up to some 10,000 series.
const maxHitsBody = 16 << 20

// POST /api/keylens/hits: {"batches":[{"batch_id","deltas":[…]}…]} (or one
// batch as {"batch_id","deltas"}) from a sidecar that runs against this
// portal (keylens sidecar --portal). It answers once the batches are
// committed; Meta.applied says which were applied now, the others having
// been applied before under the same id.
func (s *Server) addHits(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Batches []portalstore.HitBatch `json:"batches"`
		portalstore.HitBatch
	}
	if err := decodeLimit(w, r, &in, maxHitsBody); err != nil {
		s.writeDecodeError(w, r, err)
		return
	}
	if in.Batches == nil {
		in.Batches = []portalstore.HitBatch{in.HitBatch}
	} else if in.ID != "" || in.Series != nil {
		s.writeError(w, r, portalstore.Errorf(portalstore.EINVALID, "give batches, or one batch_id with its deltas, not both"))
		return
	}
	writer := s.HitWriter
	if writer == nil {
		writer = s.Hits
	}
	applied, err := writer.AddHits(r.Context(), in.Batches)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Status: "OK", Message: "Hits added", Meta: hitsApplied{applied}})
}

type hitsApplied struct {
	Applied []bool `json:"applied"`
}
