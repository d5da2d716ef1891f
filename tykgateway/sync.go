package tykgateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/keylens/keylens"
)

// SyncStore is what a sync reads of keylens: what the outbox reads (to
// apply the changes it skipped), and more.
type SyncStore interface {
	Store
	Catalogue(ctx context.Context) (*keylens.Catalogue, error)
	FindDevelopers(ctx context.Context, f keylens.DeveloperFilter) ([]*keylens.Developer, int, error)
	OAuthClientOrg(ctx context.Context, clientID string) (string, error)
	SkippedChanges(ctx context.Context) ([]keylens.SkippedChange, error)
	ForgetSkippedChange(ctx context.Context, seq int64) error
}

// Drift kinds.
const (
	DriftMissing         = "missing"             // keylens has the key, the gateway does not
	DriftPolicies        = "policies differ"     // the gateway's apply_policies are not keylens's
	DriftMetadata        = "metadata differs"    // alias, meta_data, is_inactive or org_id
	DriftOnlyInGateway   = "only in gateway"     // a portal key (tyk_developer_id set) keylens does not have
	DriftMissingPolicy   = "policy missing"      // a catalogue policy the gateway does not have
	DriftPolicyActive    = "policy not inactive" // the inactive policy does not stop keys
	DriftUnreadable      = "unreadable"          // keylens cannot read the key (a secret that does not open)
	DriftSkipped         = "skipped change"      // a change the outbox gave up on (KeyHash: its sequence number)
	driftCannotRecreate  = "cannot be recreated: keylens keeps only its hash; issue the developer a new key"
	driftListingDisabled = "the gateway does not list keys (set enable_hashed_keys_listing): keys only in the gateway were not looked for"
)

// Drift is one difference between keylens and the gateway.
type Drift struct {
	Kind        string
	KeyHash     string // or the policy id (DriftMissingPolicy), or the change's sequence number (DriftSkipped)
	DeveloperID string
	Detail      string
	Fixed       bool
}

func (d Drift) String() string {
	s := d.Kind + " " + d.KeyHash
	if d.DeveloperID != "" {
		s += " (developer " + d.DeveloperID + ")"
	}
	if d.Detail != "" {
		s += ": " + d.Detail
	}
	if d.Fixed {
		s += " [fixed]"
	}
	return s
}

// SyncReport is what Sync found.
type SyncReport struct {
	Keys  int // keys keylens holds
	Drift []Drift
	Notes []string
}

// Unfixed counts the drift that remains.
func (r *SyncReport) Unfixed() int {
	n := 0
	for _, d := range r.Drift {
		if !d.Fixed {
			n++
		}
	}
	return n
}

// Sync compares keylens with the gateway: changes the outbox skipped are
// reported (with fix, applied again); every catalogue policy and the
// inactive policy must exist there (the inactive one inactive); every key
// keylens holds must be there (by hash) with keylens's policies and
// metadata; keys in the gateway that carry a tyk_developer_id and that
// keylens does not hold are reported too, but not the OAuth access tokens
// the gateway issued to clients keylens holds (their sessions name the
// client and copy its metadata). With fix, policies and metadata are
// rewritten (keeping quota counters), keys only in the gateway deleted,
// and keylens's own inactive policy created; a missing key cannot be
// recreated, nor a catalogue policy created.
func Sync(ctx context.Context, store SyncStore, c *Client, inactive *InactivePolicy, fix bool) (*SyncReport, error) {
	rep := &SyncReport{}
	if err := syncSkipped(ctx, store, c, inactive, fix, rep); err != nil {
		return nil, err
	}
	if err := syncPolicies(ctx, store, c, inactive, fix, rep); err != nil {
		return nil, err
	}
	held := map[string]bool{}
	const page = 500
	for offset := 0; ; offset += page {
		devs, _, err := store.FindDevelopers(ctx, keylens.DeveloperFilter{Offset: offset, Limit: page})
		if err != nil {
			return nil, err
		}
		for _, d := range devs {
			for hash := range d.Keys {
				held[hash] = true
				if err := syncKey(ctx, store, c, hash, inactive.id(), fix, rep); err != nil {
					return nil, err
				}
			}
		}
		if len(devs) < page {
			break
		}
	}
	rep.Keys = len(held)
	listed, err := c.ListKeys(ctx)
	if StatusOf(err) == http.StatusNotFound {
		rep.Notes = append(rep.Notes, driftListingDisabled)
		return rep, nil
	} else if err != nil {
		return nil, fmt.Errorf("listing the gateway's keys: %w", err)
	}
	for _, hash := range listed {
		if held[hash] {
			continue
		}
		s, err := c.GetKey(ctx, hash)
		if IsNotFound(err) {
			continue // deleted since listed
		} else if err != nil {
			return nil, fmt.Errorf("key %s: %w", hash, err)
		}
		dev, _ := s.Meta()[MetaDeveloperID].(string)
		if dev == "" {
			continue // not a portal key
		}
		if client := s.String("oauth_client_id"); client != "" {
			_, err := store.OAuthClientOrg(ctx, client)
			if err == nil {
				continue // an access token of a client keylens holds
			} else if keylens.ErrorCode(err) != keylens.ENOTFOUND {
				return nil, err
			}
		}
		d := Drift{Kind: DriftOnlyInGateway, KeyHash: hash, DeveloperID: dev}
		if fix {
			if err := c.DeleteKey(ctx, hash); err != nil && !IsNotFound(err) {
				return nil, fmt.Errorf("deleting key %s: %w", hash, err)
			}
			d.Fixed = true
		}
		rep.Drift = append(rep.Drift, d)
	}
	return rep, nil
}

// syncSkipped reports the changes the outbox skipped and, with fix,
// applies each again (the outbox's own way), forgetting those that apply.
func syncSkipped(ctx context.Context, store SyncStore, c *Client, inactive *InactivePolicy, fix bool, rep *SyncReport) error {
	skipped, err := store.SkippedChanges(ctx)
	if err != nil {
		return err
	}
	o := &Outbox{Store: store, Client: c, Inactive: inactive}
	for _, sc := range skipped {
		what := sc.Kind
		switch {
		case sc.KeyHash != "":
			what += " of key " + sc.KeyHash
		case sc.ClientID != "":
			what += " of OAuth client " + sc.ClientID
		}
		d := Drift{Kind: DriftSkipped, KeyHash: strconv.FormatInt(sc.Seq, 10), DeveloperID: sc.DeveloperID, Detail: what + ": " + sc.Reason}
		if fix {
			if err := o.Apply(ctx, sc.Change); err != nil {
				d.Detail += "; applying it again failed: " + err.Error()
			} else if err := store.ForgetSkippedChange(ctx, sc.Seq); err != nil {
				return err
			} else {
				d.Fixed = true
			}
		}
		rep.Drift = append(rep.Drift, d)
	}
	return nil
}

func syncPolicies(ctx context.Context, store SyncStore, c *Client, inactive *InactivePolicy, fix bool, rep *SyncReport) error {
	cat, err := store.Catalogue(ctx)
	if err != nil {
		return err
	}
	pols, err := c.Policies(ctx)
	if err != nil {
		return fmt.Errorf("listing the gateway's policies: %w", err)
	}
	have := map[string]bool{}
	for _, p := range pols {
		have[p.PolicyID()] = true
	}
	var want []string
	for _, e := range cat.APIs {
		if e.PolicyID != inactive.id() {
			want = append(want, e.PolicyID)
		}
	}
	slices.Sort(want)
	for _, p := range slices.Compact(want) {
		if !have[p] {
			rep.Drift = append(rep.Drift, Drift{Kind: DriftMissingPolicy, KeyHash: p, Detail: "in the catalogue; keys naming it fail at the gateway"})
		}
	}
	if inactive == nil {
		return nil
	}
	err = inactive.Check(ctx, c)
	if err == nil {
		return nil
	} else if IsGateway(err) {
		return fmt.Errorf("the inactive policy: %w", err)
	}
	d := Drift{Kind: DriftPolicyActive, KeyHash: inactive.ID, Detail: err.Error()}
	if errors.Is(err, ErrPolicyMissing) {
		d = Drift{Kind: DriftMissingPolicy, KeyHash: inactive.ID, Detail: "--tyk-inactive-policy; create it with is_inactive: true"}
	}
	if inactive.Create {
		d.Detail = "keylens's inactive policy: created at start, or by --fix"
		if fix {
			if err := inactive.Ensure(ctx, c); err != nil {
				return err
			}
			d.Fixed = true
		}
	}
	rep.Drift = append(rep.Drift, d)
	return nil
}

func syncKey(ctx context.Context, store SyncStore, c *Client, hash, inactivePolicy string, fix bool, rep *SyncReport) error {
	cred, err := store.ResolveKey(ctx, hash)
	if keylens.ErrorCode(err) == keylens.ENOTFOUND {
		return nil // revoked since listed
	} else if err != nil {
		// One key keylens cannot read does not stop the comparison of
		// the others.
		rep.Drift = append(rep.Drift, Drift{Kind: DriftUnreadable, KeyHash: hash, Detail: err.Error()})
		return nil
	}
	s, err := c.GetKey(ctx, hash)
	if IsNotFound(err) {
		rep.Drift = append(rep.Drift, Drift{Kind: DriftMissing, KeyHash: hash, DeveloperID: cred.Owner.ID, Detail: driftCannotRecreate})
		return nil
	} else if err != nil {
		return fmt.Errorf("key %s: %w", hash, err)
	}
	want := DesiredFor(&cred.Key, cred.Owner, inactivePolicy)
	diff := Compare(s, want)
	if diff == (Difference{}) {
		return nil
	}
	polDetail := fmt.Sprintf("gateway %v, keylens %v", s.Policies(), want.Policies)
	fixed := false
	if fix {
		if err := Reconcile(ctx, c, hash, s, want); err != nil {
			return fmt.Errorf("fixing key %s: %w", hash, err)
		}
		fixed = true
	}
	if diff.Policies {
		rep.Drift = append(rep.Drift, Drift{Kind: DriftPolicies, KeyHash: hash, DeveloperID: cred.Owner.ID,
			Detail: polDetail, Fixed: fixed})
	}
	if diff.Meta {
		rep.Drift = append(rep.Drift, Drift{Kind: DriftMetadata, KeyHash: hash, DeveloperID: cred.Owner.ID, Fixed: fixed})
	}
	return nil
}
