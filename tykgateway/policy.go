package tykgateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultInactivePolicy is the id of the policy keylens creates in the
// gateway when no --tyk-inactive-policy names one.
const DefaultInactivePolicy = "keylens-inactive"

// ErrPolicyWritesRefused says that the gateway refuses to write policies
// (its policies come from a Dashboard): keylens cannot create the inactive
// policy, and an operator must name one.
var ErrPolicyWritesRefused = errors.New("the Tyk gateway refuses to write policies (its policies come from a Dashboard?): " +
	"create a policy with \"is_inactive\": true there and pass its id as --tyk-inactive-policy")

// ErrPolicyMissing says that a policy named by --tyk-inactive-policy is not
// in the gateway.
var ErrPolicyMissing = errors.New("--tyk-inactive-policy is not in the Tyk gateway: deactivating a developer fails there until it is created")

// InactivePolicy is the gateway policy that replaces a deactivated
// developer's policies on their keys. Tyk ignores a key's own is_inactive
// when the key has policies (every portal key has); a policy with
// is_inactive: true makes each key applying it answer 403. keylens creates
// it (Create, the default) or uses the one an operator named.
type InactivePolicy struct {
	ID    string
	OrgID string // the portal's: the keys' org, where Tyk looks their policies up
	// Create says keylens creates the policy when the gateway lacks it
	// (and makes it inactive should it not be).
	Create bool

	ready atomic.Bool
	mu    sync.Mutex
	err   error // a refusal that no retry mends
}

// Ensure makes sure the gateway has the policy, inactive, in the org:
// when Create is set it creates it (or sets its is_inactive) and reloads
// the gateway; a policy named by an operator is left to Check. Once it
// has succeeded, or met ErrPolicyWritesRefused, it answers at once; an
// unreachable gateway is tried again on the next call.
func (p *InactivePolicy) Ensure(ctx context.Context, c *Client) error {
	if p == nil || !p.Create || p.ready.Load() {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ready.Load() {
		return nil
	}
	if p.err != nil {
		return p.err
	}
	cur, err := p.find(ctx, c)
	if err != nil {
		return err
	}
	if cur != nil && cur.OrgID != p.OrgID {
		p.err = fmt.Errorf("the Tyk gateway has a policy %s in org %s, not in the portal's org %s: name another with --tyk-inactive-policy",
			p.ID, cur.OrgID, p.OrgID)
		return p.err
	}
	if cur == nil || !cur.IsInactive {
		pol := map[string]any{"id": p.ID, "name": "keylens: deactivated developers", "org_id": p.OrgID,
			"is_inactive": true, "active": true, "access_rights": map[string]any{}}
		if err := c.WritePolicy(ctx, pol, cur != nil); err != nil {
			if StatusOf(err) != 0 {
				p.err = fmt.Errorf("%w (it answered: %v)", ErrPolicyWritesRefused, err)
				return p.err
			}
			return err
		}
		if err := c.Reload(ctx); err != nil {
			return err
		}
		// A reload is asynchronous in a real gateway: wait until the
		// policy is loaded, for at most a few seconds.
		for i := 0; ; i++ {
			if cur, err = p.find(ctx, c); err != nil {
				return err
			}
			if cur != nil && cur.IsInactive {
				break
			}
			if i == 25 {
				return fmt.Errorf("the Tyk gateway has not loaded policy %s after a reload", p.ID)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	p.ready.Store(true)
	return nil
}

// Check verifies a policy an operator named (Create unset): ErrPolicyMissing
// when the gateway lacks it, an error when it is not inactive or in
// another org.
func (p *InactivePolicy) Check(ctx context.Context, c *Client) error {
	cur, err := p.find(ctx, c)
	switch {
	case err != nil:
		return err
	case cur == nil:
		return ErrPolicyMissing
	case !cur.IsInactive:
		return fmt.Errorf("--tyk-inactive-policy %s is not inactive in the Tyk gateway: set \"is_inactive\": true on it, or deactivated developers' keys keep working", p.ID)
	case p.OrgID != "" && cur.OrgID != p.OrgID:
		return fmt.Errorf("--tyk-inactive-policy %s is in org %s, not in the portal's org %s (--org-id): Tyk looks a key's policies up in its own org", p.ID, cur.OrgID, p.OrgID)
	}
	return nil
}

func (p *InactivePolicy) find(ctx context.Context, c *Client) (*Policy, error) {
	pols, err := c.Policies(ctx)
	if err != nil {
		return nil, err
	}
	for _, pol := range pols {
		if pol.PolicyID() == p.ID {
			return &pol, nil
		}
	}
	return nil, nil
}

// id is the policy's id; "" for a nil policy.
func (p *InactivePolicy) id() string {
	if p == nil {
		return ""
	}
	return p.ID
}
