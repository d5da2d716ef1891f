package tykgateway

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/keylens/keylens"
)

// SyncStore is what a sync reads of keylens.
type SyncStore interface {
	Catalogue(ctx context.Context) (*keylens.Catalogue, error)
	FindDevelopers(ctx context.Context, f keylens.DeveloperFilter) ([]*keylens.Developer, int, error)
	ResolveKey(ctx context.Context, hash string) (*keylens.Credential, error)
}

// Drift kinds.
const (
	DriftMissing         = "missing"          // keylens has the key, the gateway does not
	DriftPolicies        = "policies differ"  // the gateway's apply_policies are not keylens's
	DriftMetadata        = "metadata differs" // alias, meta_data, is_inactive or org_id
	DriftOnlyInGateway   = "only in gateway"  // a portal key (tyk_developer_id set) keylens does not have
	DriftMissingPolicy   = "policy missing"   // a catalogue policy the gateway does not have
	driftCannotRecreate  = "cannot be recreated: keylens keeps only its hash; issue the developer a new key"
	driftListingDisabled = "the gateway does not list keys (set enable_hashed_keys_listing): keys only in the gateway were not looked for"
)

// Drift is one difference between keylens and the gateway.
type Drift struct {
	Kind        string
	KeyHash     string // or the policy id, for DriftMissingPolicy
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

// Sync compares keylens with the gateway: every catalogue policy (and
// inactivePolicy) must exist there, and every key keylens holds must be
// there (by hash) with keylens's policies and metadata; keys in the gateway
// that carry a tyk_developer_id and that keylens does not hold are
// reported too. With fix, policies and metadata are rewritten (keeping
// quota counters) and keys only in the gateway are deleted; a missing key
// cannot be recreated, nor a missing policy created.
func Sync(ctx context.Context, store SyncStore, c *Client, inactivePolicy string, fix bool) (*SyncReport, error) {
	rep := &SyncReport{}
	if err := syncPolicies(ctx, store, c, inactivePolicy, rep); err != nil {
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
				if err := syncKey(ctx, store, c, hash, inactivePolicy, fix, rep); err != nil {
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

func syncPolicies(ctx context.Context, store SyncStore, c *Client, inactivePolicy string, rep *SyncReport) error {
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
		want = append(want, e.PolicyID)
	}
	if inactivePolicy != "" {
		want = append(want, inactivePolicy)
	}
	slices.Sort(want)
	for _, p := range slices.Compact(want) {
		if !have[p] {
			detail := "in the catalogue; keys naming it fail at the gateway"
			if p == inactivePolicy {
				detail = "--tyk-inactive-policy; create it with is_inactive: true"
			}
			rep.Drift = append(rep.Drift, Drift{Kind: DriftMissingPolicy, KeyHash: p, Detail: detail})
		}
	}
	return nil
}

func syncKey(ctx context.Context, store SyncStore, c *Client, hash, inactivePolicy string, fix bool, rep *SyncReport) error {
	cred, err := store.ResolveKey(ctx, hash)
	if keylens.ErrorCode(err) == keylens.ENOTFOUND {
		return nil // revoked since listed
	} else if err != nil {
		return err
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
