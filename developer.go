package keylens

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/keylens/keylens/identity"
)

// Developer is a portal developer as the Tyk Classic Portal API shows it.
// Secrets stay inside: the password, its hash and the password history are
// never marshalled.
type Developer struct {
	ID          string    `json:"id"`
	Email       string    `json:"email"`
	DateCreated time.Time `json:"date_created"`
	Inactive    bool      `json:"inactive"`
	OrgID       string    `json:"org_id"`

	// Keys maps a key hash to the policies it grants. A key hash belongs
	// to at most one developer.
	Keys map[string][]string `json:"keys"`
	// Subscriptions maps a policy id to the key hash that carries it.
	Subscriptions map[string]string `json:"subscriptions"`
	// Fields are the developer's custom fields from sign-up.
	Fields map[string]string `json:"fields"`

	Nonce           string                   `json:"nonce"`
	SSOKey          string                   `json:"sso_key"`
	OAuthClients    map[string][]OAuthClient `json:"oauth_clients"`
	PasswordMaxDays int                      `json:"password_max_days"`
	PasswordUpdated time.Time                `json:"password_updated"`
	LastLoginDate   time.Time                `json:"last_login_date"`

	// Password is write-only input: plain text, or an existing bcrypt hash
	// to store as it is. Empty on output.
	Password string `json:"-"`
	// PasswordHash is the stored bcrypt hash; PasswordHistory the hashes
	// of earlier and current passwords, newest last.
	PasswordHash    string   `json:"-"`
	PasswordHistory []string `json:"-"`
}

// OAuthClient is an OAuth client a developer obtained for a policy.
type OAuthClient struct {
	ClientID       string    `json:"client_id"`
	Secret         string    `json:"secret"`
	RedirectURI    string    `json:"redirect_uri"`
	AppDescription string    `json:"app_description"`
	UseCase        string    `json:"use_case"`
	DateCreated    time.Time `json:"date_created"`
}

// developerJSON is the wire shape: Developer's fields plus the write-only
// password and the spellings older payloads use (_id, api_keys), and the
// PWHistory member Tyk's responses carry (always empty here).
type developerJSON struct {
	developerAlias
	LegacyID  string          `json:"_id,omitempty"`
	Password  string          `json:"password,omitempty"`
	APIKeys   json.RawMessage `json:"api_keys,omitempty"`
	PWHistory []string        `json:"PWHistory"`
}

type developerAlias Developer

// MarshalJSON writes the Tyk shape. Nil maps are written as {} and the
// password history as [], so clients see every member Tyk sends.
func (d *Developer) MarshalJSON() ([]byte, error) {
	out := developerJSON{developerAlias: developerAlias(*d), PWHistory: []string{}}
	out.Password = ""
	if out.Keys == nil {
		out.Keys = map[string][]string{}
	}
	if out.Subscriptions == nil {
		out.Subscriptions = map[string]string{}
	}
	if out.Fields == nil {
		out.Fields = map[string]string{}
	}
	if out.OAuthClients == nil {
		out.OAuthClients = map[string][]OAuthClient{}
	}
	return json.Marshal(out)
}

// ExtraJSONMembers are the members UnmarshalJSON reads beyond Developer's
// fields: the write-only password and older payloads' spellings.
func (*Developer) ExtraJSONMembers() []string {
	return []string{"password", "_id", "api_keys", "PWHistory"}
}

// UnmarshalJSON reads a developer object as any Tyk portal client sends it:
// "id" or "_id", a write-only "password", and "api_keys" from older payloads
// (a key → policy map, or key → policies) merged into Keys. PWHistory in the
// input is ignored: history is kept by the store, never set by a client.
func (d *Developer) UnmarshalJSON(b []byte) error {
	var in developerJSON
	if err := json.Unmarshal(b, &in); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			// Name the member as the client spelled it, not our embedding.
			typeErr.Field = strings.TrimPrefix(typeErr.Field, "developerAlias.")
		}
		return err
	}
	*d = Developer(in.developerAlias)
	d.Password = in.Password
	d.PasswordHash, d.PasswordHistory = "", nil
	if d.ID == "" {
		d.ID = in.LegacyID
	}
	if len(in.APIKeys) > 0 && string(in.APIKeys) != "null" {
		legacy, err := decodeAPIKeys(in.APIKeys)
		if err != nil {
			return err
		}
		for k, pols := range legacy {
			if d.Keys == nil {
				d.Keys = map[string][]string{}
			}
			if _, ok := d.Keys[k]; !ok {
				d.Keys[k] = pols
			}
		}
	}
	return nil
}

func decodeAPIKeys(raw json.RawMessage) (map[string][]string, error) {
	var single map[string]string
	if err := json.Unmarshal(raw, &single); err == nil {
		out := make(map[string][]string, len(single))
		for k, p := range single {
			if p == "" {
				out[k] = []string{}
			} else {
				out[k] = []string{p}
			}
		}
		return out, nil
	}
	var multi map[string][]string
	if err := json.Unmarshal(raw, &multi); err != nil {
		return nil, &json.UnmarshalTypeError{Value: "api_keys", Field: "api_keys", Type: nil}
	}
	return multi, nil
}

// DeveloperFilter selects developers for FindDevelopers.
type DeveloperFilter struct {
	// EmailContains keeps developers whose email contains it, ignoring case.
	EmailContains string
	// Offset and Limit page the result (ordered by id, i.e. by creation);
	// Limit <= 0 means no limit.
	Offset, Limit int
}

// DeveloperService is the system of record for developers.
type DeveloperService interface {
	// FindDeveloperByID returns ENOTFOUND if no developer has id.
	FindDeveloperByID(ctx context.Context, id string) (*Developer, error)
	// FindDeveloperByEmail matches email ignoring case; ENOTFOUND if none.
	FindDeveloperByEmail(ctx context.Context, email string) (*Developer, error)
	// FindDevelopers returns one page of the developers that match, and
	// how many match in all.
	FindDevelopers(ctx context.Context, filter DeveloperFilter) ([]*Developer, int, error)
	// CreateDeveloper stores d and sets its ID (when empty), DateCreated
	// (when zero), OrgID (when empty: the portal's org) and password
	// fields. EINVALID for a rule broken (see Developer.Validate),
	// ECONFLICT for a taken id or email (ignoring case) or a key hash that
	// belongs to another developer.
	CreateDeveloper(ctx context.Context, d *Developer) error
	// UpdateDeveloper replaces developer id with d, as Tyk's PUT does:
	// every member comes from d, except that an empty Password keeps the
	// current one and a zero DateCreated keeps the stored one. ENOTFOUND,
	// EINVALID and ECONFLICT as for CreateDeveloper. d is updated to what
	// was stored.
	UpdateDeveloper(ctx context.Context, id string, d *Developer) error
	// PatchDeveloper changes the members p names and keeps every other,
	// reading and writing in one transaction; it returns what was
	// stored. ENOTFOUND, EINVALID and ECONFLICT as for UpdateDeveloper.
	PatchDeveloper(ctx context.Context, id string, p DeveloperPatch) (*Developer, error)
	// DeleteDeveloper removes the developer and every key of theirs;
	// ENOTFOUND if none.
	DeleteDeveloper(ctx context.Context, id string) error
	// VerifyCredentials checks email and password and, on success, records
	// the login time. EUNAUTHORIZED for an unknown email, a wrong password,
	// a developer with no password, or an inactive developer: the caller
	// cannot tell which.
	VerifyCredentials(ctx context.Context, email, password string) (*Developer, error)
	// SetPassword replaces a developer's password and records the change
	// in PasswordUpdated and the history. ENOTFOUND, EINVALID.
	SetPassword(ctx context.Context, id, password string) error
}

// Limits on developer input, so that one request cannot bloat the store.
const (
	MaxEmailLength = 254 // RFC 5321 path limit
	MaxKeysPerDev  = 1000
	MaxFieldCount  = 100
	MaxFieldLength = 4096
	maxIDLength    = 512
)

// Validate checks the rules every stored developer obeys, reporting the
// first broken one as EINVALID. It does not look at other developers.
func (d *Developer) Validate() error {
	if d.ID != "" && !IsObjectID(d.ID) {
		return Errorf(EINVALID, "Developer id must be 24 lowercase hex characters")
	}
	if err := ValidateEmail(d.Email); err != nil {
		return err
	}
	if len(d.OrgID) > maxIDLength || len(d.Nonce) > MaxFieldLength || len(d.SSOKey) > MaxFieldLength {
		return Errorf(EINVALID, "org_id, nonce or sso_key is too long")
	}
	if d.PasswordMaxDays < 0 {
		return Errorf(EINVALID, "password_max_days must not be negative")
	}
	if len(d.Keys) > MaxKeysPerDev {
		return Errorf(EINVALID, "A developer has at most %d keys", MaxKeysPerDev)
	}
	for k, pols := range d.Keys {
		if k == "" || len(k) > maxIDLength {
			return Errorf(EINVALID, "Key ids must be 1 to %d characters", maxIDLength)
		}
		for _, p := range pols {
			if p == "" || len(p) > maxIDLength {
				return Errorf(EINVALID, "Policy ids must be 1 to %d characters", maxIDLength)
			}
		}
	}
	for p, k := range d.Subscriptions {
		if p == "" || len(p) > maxIDLength || len(k) > maxIDLength {
			return Errorf(EINVALID, "Subscription policy and key ids must be 1 to %d characters", maxIDLength)
		}
	}
	if len(d.Fields) > MaxFieldCount {
		return Errorf(EINVALID, "A developer has at most %d custom fields", MaxFieldCount)
	}
	for name, v := range d.Fields {
		if name == "" || len(name) > 256 || len(v) > MaxFieldLength {
			return Errorf(EINVALID, "Custom field names must be 1 to 256 characters and values at most %d", MaxFieldLength)
		}
	}
	if err := ValidateFieldNames("fields", slices.Collect(maps.Keys(d.Fields))); err != nil {
		return err
	}
	for pol, clients := range d.OAuthClients {
		if pol == "" || len(pol) > maxIDLength {
			return Errorf(EINVALID, "OAuth client policy ids must be 1 to %d characters", maxIDLength)
		}
		for _, c := range clients {
			if c.ClientID == "" || len(c.ClientID) > maxIDLength || len(c.Secret) > MaxFieldLength ||
				len(c.RedirectURI) > MaxFieldLength || len(c.AppDescription) > MaxFieldLength || len(c.UseCase) > MaxFieldLength {
				return Errorf(EINVALID, "OAuth clients need a client_id; their members are limited to %d characters", MaxFieldLength)
			}
			if LooksSealed(c.Secret) {
				return Errorf(EINVALID, "An OAuth client secret must not start with %q", SealedPrefix)
			}
		}
	}
	return nil
}

// ValidateEmail accepts a single bare address (no display name), at most
// MaxEmailLength bytes.
func ValidateEmail(email string) error {
	if email == "" {
		return Errorf(EINVALID, "Email is required")
	}
	if len(email) > MaxEmailLength {
		return Errorf(EINVALID, "Email is too long")
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || addr.Name != "" || strings.ContainsAny(email, " \t\r\n") {
		return Errorf(EINVALID, "Email address is not valid")
	}
	return nil
}

// NormalizeKeys files every key of d under its KeyHashOf, so a raw key sent
// in a developer object is stored as its hash, and points subscriptions at
// the same ids.
func (d *Developer) NormalizeKeys() {
	if len(d.Keys) > 0 {
		keys := make(map[string][]string, len(d.Keys))
		for k, pols := range d.Keys {
			if pols == nil {
				pols = []string{}
			}
			keys[KeyHashOf(k)] = pols
		}
		d.Keys = keys
	}
	for p, k := range d.Subscriptions {
		d.Subscriptions[p] = KeyHashOf(k)
	}
}

// PrepareNew makes d ready to store as a new developer: validated, keys
// filed under their hashes, a plain password replaced by its bcrypt hash
// (stamped at now) and recorded as the first of its history. bcrypt takes
// tens of milliseconds: call it before any transaction.
func (d *Developer) PrepareNew(now time.Time) error {
	if err := d.PrepareUpdate(now); err != nil {
		return err
	}
	d.PasswordHistory = nil
	if d.PasswordHash != "" {
		d.PasswordHistory = AppendPasswordHistory(nil, d.PasswordHash)
	}
	return nil
}

// PrepareUpdate makes d, a replacement, ready to merge (MergeUpdate):
// validated, keys filed under their hashes, a plain password hashed.
func (d *Developer) PrepareUpdate(now time.Time) error {
	if err := d.Validate(); err != nil {
		return err
	}
	d.NormalizeKeys()
	if d.Password != "" {
		h, err := HashPassword(d.Password)
		if err != nil {
			return err
		}
		d.Password, d.PasswordHash, d.PasswordUpdated = "", h, now
	}
	return nil
}

// MergeUpdate completes d, a prepared replacement of cur, as Tyk's PUT
// does: everything is replaced, except what the server keeps when the
// replacement omits it (the password and its history, the creation and
// last-login dates, the org). A new password joins the history.
func (d *Developer) MergeUpdate(cur *Developer) {
	if d.PasswordHash == "" {
		d.PasswordHash, d.PasswordUpdated, d.PasswordHistory = cur.PasswordHash, cur.PasswordUpdated, cur.PasswordHistory
	} else {
		d.PasswordHistory = AppendPasswordHistory(cur.PasswordHistory, d.PasswordHash)
	}
	if d.DateCreated.IsZero() {
		d.DateCreated = cur.DateCreated
	}
	if d.LastLoginDate.IsZero() {
		d.LastLoginDate = cur.LastLoginDate
	}
	if d.OrgID == "" {
		d.OrgID = cur.OrgID
	}
}

// KeyDiff is how an update changes a developer's keys: keys are diffed,
// not rewritten, so that what approval stored beside a key (its auth type,
// basic password, JWT material) survives an update that keeps it.
type KeyDiff struct {
	Removed []string // key hashes, sorted
	Added   []string // key hashes, sorted
	Changed []string // key hashes whose policies differ, sorted
}

// DiffKeys compares the keys of cur and next.
func DiffKeys(cur, next map[string][]string) KeyDiff {
	var d KeyDiff
	for hash := range cur {
		if _, keep := next[hash]; !keep {
			d.Removed = append(d.Removed, hash)
		}
	}
	for hash, pols := range next {
		old, had := cur[hash]
		switch {
		case !had:
			d.Added = append(d.Added, hash)
		case !slices.Equal(old, pols):
			d.Changed = append(d.Changed, hash)
		}
	}
	slices.Sort(d.Removed)
	slices.Sort(d.Added)
	slices.Sort(d.Changed)
	return d
}

// ValidateFieldNames refuses custom field names that would travel as the
// same upstream header or session metadata key: "Use case", "Use_case" and
// "Use-case" all become X-Developer-Field-Use-case; "Case" and "case"
// become headers that differ only by case, which HTTP treats as one. Such
// names would silently overwrite each other; refused at write time, the
// message names both. (A name with no ASCII letter or digit travels in
// the identity JSON only, as before.)
func ValidateFieldNames(member string, names []string) error {
	slices.Sort(names)
	header := make(map[string]string, len(names))
	meta := make(map[string]string, len(names))
	for _, name := range names {
		h := strings.ToLower(identity.HeaderToken(name))
		if h == "" {
			continue
		}
		if other, ok := header[h]; ok {
			return Errorf(EINVALID, "%s: %q and %q would be the same upstream header; rename one", member, other, name)
		}
		header[h] = name
		m := identity.MetaToken(name)
		if other, ok := meta[m]; ok && m != "" {
			return Errorf(EINVALID, "%s: %q and %q would be the same session metadata key; rename one", member, other, name)
		}
		meta[m] = name
	}
	return nil
}
