package keylens

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Actor is who makes a change: an admin account, the admin key, or a
// developer acting for themselves in the developer portal.
// Transports put it in the request's context (WithActor); a store records
// it with every change, in the change's own transaction.
type Actor struct {
	ID   string // the admin's (or developer's) id; "" for the admin key
	Name string // the admin's (or developer's) email, or ActorAdminKey
	Via  string // ViaConsole, ViaAPI, ViaCommandLine, ViaPortal
}

// ActorAdminKey names the admin key in the audit trail.
const ActorAdminKey = "admin key"

// Where a change came from.
const (
	ViaConsole     = "console"
	ViaAPI         = "api"
	ViaCommandLine = "command line"
	ViaPortal      = "developer portal"
)

type actorKey struct{}

// WithActor returns ctx carrying who acts.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor ctx carries; false when none does (a change
// made by keylens's own code, or a test).
func ActorFrom(ctx context.Context) (Actor, bool) {
	a, ok := ctx.Value(actorKey{}).(Actor)
	return a, ok
}

// Audit actions: what a change did. Every change an admin can make, through
// the console, the REST API or the command line, records one of these.
const (
	AuditDeveloperCreated   = "developer.created"
	AuditDeveloperUpdated   = "developer.updated"
	AuditDeveloperDeleted   = "developer.deleted"
	AuditDeveloperPassword  = "developer.password_set"
	AuditDeveloperSignedUp  = "developer.signed_up"
	AuditPasswordReset      = "developer.password_reset"
	AuditKeyRequestCreated  = "key_request.created"
	AuditKeyRequestUpdated  = "key_request.updated"
	AuditKeyRequestDeleted  = "key_request.deleted"
	AuditKeyRequestApproved = "key_request.approved"
	AuditKeyIssued          = "key.issued"
	AuditKeyPolicies        = "key.policies_changed"
	AuditKeyRevoked         = "key.revoked"
	AuditKeyRotated         = "key.rotated" // a new key replaces one, which stops when its grace ends
	AuditKeyExpired         = "key.expired" // a replaced key's grace ended: it was removed
	AuditKeyQuotaReset      = "key.quota_reset"
	AuditOAuthClientDeleted = "oauth_client.deleted"
	AuditOAuthSecretRotated = "oauth_client.secret_rotated" // a new secret; the old one works until its grace ends
	AuditOAuthTokenRevoked  = "oauth_client.token_revoked"  // one access token, by the admin
	AuditOAuthTokensRevoked = "oauth_client.tokens_revoked" // every access token of a client
	AuditCatalogueUpdated   = "catalogue.updated"
	AuditConfigUpdated      = "configuration.updated"
	AuditAdminCreated       = "admin.created"
	AuditAdminDisabled      = "admin.disabled"
	AuditAdminEnabled       = "admin.enabled"
	AuditAdminDeleted       = "admin.deleted"
)

// Object types an audit entry names.
const (
	ObjectDeveloper     = "developer"
	ObjectKeyRequest    = "key_request"
	ObjectKey           = "key" // by its hash: a raw key is never recorded
	ObjectOAuthClient   = "oauth_client"
	ObjectCatalogue     = "catalogue"
	ObjectConfiguration = "configuration"
	ObjectAdmin         = "admin"
)

// AuditEntry is one recorded change: who, what, which object, when.
type AuditEntry struct {
	Seq        int64     `json:"seq"`
	Time       time.Time `json:"time"`
	Actor      string    `json:"actor"`    // Actor.Name; "" when no actor was known
	ActorID    string    `json:"actor_id"` // Actor.ID
	Via        string    `json:"via"`
	Action     string    `json:"action"`
	ObjectType string    `json:"object_type"`
	ObjectID   string    `json:"object_id"`
	// DeveloperID is the developer the change concerns, when one does:
	// the Activity page filters on it.
	DeveloperID string `json:"developer_id"`
	// Detail says what changed, in a line; never a secret.
	Detail string `json:"detail"`
	// DeveloperEmail is the developer's current email, filled on reads;
	// "" once the developer is deleted.
	DeveloperEmail string `json:"developer_email,omitempty"`
}

// NewAuditEntry returns the entry for a change made at now by the actor
// ctx carries.
func NewAuditEntry(ctx context.Context, now time.Time, action, objectType, objectID, developerID, detail string) AuditEntry {
	a, _ := ActorFrom(ctx)
	if len(detail) > maxAuditDetail {
		detail = detail[:maxAuditDetail] + "…"
	}
	return AuditEntry{Time: now.UTC(), Actor: a.Name, ActorID: a.ID, Via: a.Via, Action: action,
		ObjectType: objectType, ObjectID: objectID, DeveloperID: developerID, Detail: detail}
}

const maxAuditDetail = 2000

// AuditFilter selects audit entries, newest first.
type AuditFilter struct {
	DeveloperID   string // "": every entry
	Offset, Limit int    // Limit <= 0: no limit
}

// AuditService reads the audit trail. Entries are written by the store
// with the changes they record, never on their own.
type AuditService interface {
	// FindAudit returns a page of the entries f selects, newest first,
	// and how many it selects in all.
	FindAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, int, error)
}

// DeveloperChanges describes how next differs from cur in the members an
// admin edits, for an audit entry: "email a → b; fields Company, Name;
// deactivated". It names changed custom fields but not their values, and
// never a password.
func DeveloperChanges(cur, next *Developer) string {
	var parts []string
	if cur.Email != next.Email {
		parts = append(parts, fmt.Sprintf("email %s → %s", cur.Email, next.Email))
	}
	var fields []string
	for name, v := range next.Fields {
		if old, ok := cur.Fields[name]; !ok || old != v {
			fields = append(fields, name)
		}
	}
	for name := range cur.Fields {
		if _, ok := next.Fields[name]; !ok {
			fields = append(fields, name+" (removed)")
		}
	}
	if len(fields) > 0 {
		slices.Sort(fields)
		parts = append(parts, "fields "+strings.Join(fields, ", "))
	}
	if cur.Inactive != next.Inactive {
		if next.Inactive {
			parts = append(parts, "deactivated")
		} else {
			parts = append(parts, "activated")
		}
	}
	if next.PasswordHash != cur.PasswordHash {
		parts = append(parts, "password changed")
	}
	d := DiffKeys(cur.Keys, next.Keys)
	if n := len(d.Added) + len(d.Removed) + len(d.Changed); n > 0 {
		parts = append(parts, fmt.Sprintf("keys: %d added, %d removed, %d with other policies", len(d.Added), len(d.Removed), len(d.Changed)))
	}
	if len(parts) == 0 {
		return "no member an admin edits changed"
	}
	return strings.Join(parts, "; ")
}

// DeveloperPatch changes some members of a developer and keeps the rest,
// read and written in one transaction, so that a change made meanwhile
// (a key approved while an admin edits the profile) is never lost.
type DeveloperPatch struct {
	Email    *string           // nil: keep
	Fields   map[string]string // nil: keep; otherwise the new fields, whole
	Inactive *bool             // nil: keep
	Password string            // "": keep
}

// Apply returns cur with p applied, ready for PrepareUpdate.
func (p *DeveloperPatch) Apply(cur *Developer) *Developer {
	next := *cur
	next.Keys = cloneMap(cur.Keys)
	next.Subscriptions = cloneMap(cur.Subscriptions)
	next.OAuthClients = cloneMap(cur.OAuthClients)
	next.Fields = cloneMap(cur.Fields)
	next.Password, next.PasswordHash, next.PasswordHistory = "", "", nil
	if p.Email != nil {
		next.Email = strings.TrimSpace(*p.Email)
	}
	if p.Fields != nil {
		next.Fields = cloneMap(p.Fields)
	}
	if p.Inactive != nil {
		next.Inactive = *p.Inactive
	}
	next.Password = p.Password
	return &next
}

func cloneMap[V any](m map[string]V) map[string]V {
	if m == nil {
		return nil
	}
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// CatalogueChanges describes how next differs from cur, for an audit
// entry: the policies published, withdrawn and edited.
func CatalogueChanges(cur, next *Catalogue) string {
	var added, removed, changed []string
	for _, e := range next.APIs {
		old := cur.Entry(e.PolicyID)
		switch {
		case old == nil:
			added = append(added, e.PolicyID)
		case !sameEntry(old, &e):
			changed = append(changed, e.PolicyID)
		}
	}
	for _, e := range cur.APIs {
		if next.Entry(e.PolicyID) == nil {
			removed = append(removed, e.PolicyID)
		}
	}
	var parts []string
	for _, p := range []struct {
		verb string
		ids  []string
	}{{"published", added}, {"withdrew", removed}, {"edited", changed}} {
		if len(p.ids) > 0 {
			parts = append(parts, p.verb+" "+strings.Join(p.ids, ", "))
		}
	}
	if len(parts) == 0 {
		return "no entry changed"
	}
	return strings.Join(parts, "; ")
}

func sameEntry(a, b *CatalogueEntry) bool {
	return a.Name == b.Name && a.ShortDescription == b.ShortDescription && a.LongDescription == b.LongDescription &&
		a.Show == b.Show && a.APIID == b.APIID && a.Documentation == b.Documentation && a.Version == b.Version &&
		a.IsKeyless == b.IsKeyless && a.AuthType == b.AuthType &&
		string(a.Config) == string(b.Config) && string(a.Fields) == string(b.Fields)
}

// ConfigChanges describes how the typed members of next differ from cur's.
func ConfigChanges(cur, next *PortalConfig) string {
	var parts []string
	if cur.RequireKeyApproval != next.RequireKeyApproval {
		parts = append(parts, fmt.Sprintf("require key approval %t → %t", cur.RequireKeyApproval, next.RequireKeyApproval))
	}
	if !slices.Equal(cur.KeyRequestFields, next.KeyRequestFields) {
		parts = append(parts, "key request fields: "+listOrNone(next.KeyRequestFields))
	}
	if !slices.Equal(cur.SignupFields, next.SignupFields) {
		parts = append(parts, "sign-up fields: "+listOrNone(next.SignupFields))
	}
	if len(parts) == 0 {
		return "no typed member changed"
	}
	return strings.Join(parts, "; ")
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
