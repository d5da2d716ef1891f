package sqlstore_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/sqlstore"
	"github.com/keylens/keylens/sqlstore/pgtest"
)

// recordingProvisioner stands in for a gateway: it records what it was
// asked to create and undo, and fails or cancels the approving
// transaction's context when told.
type recordingProvisioner struct {
	fail   error
	cancel context.CancelFunc // called after a successful Provision
	// wait, when set, is called before answering (outside the lock).
	wait func()

	mu      sync.Mutex
	issued  []*keylens.Issued
	owners  []keylens.CredentialOwner
	undone  []*keylens.Issued
	created int
}

func (p *recordingProvisioner) Provision(ctx context.Context, is *keylens.Issued, owner keylens.CredentialOwner) (func(context.Context), error) {
	p.mu.Lock()
	p.issued, p.owners = append(p.issued, is), append(p.owners, owner)
	if p.fail != nil {
		p.mu.Unlock()
		return nil, p.fail
	}
	p.created++
	p.mu.Unlock()
	if p.wait != nil {
		p.wait()
	}
	if p.cancel != nil {
		p.cancel() // the transaction now fails after the gateway said yes
	}
	return func(context.Context) {
		p.mu.Lock()
		p.undone = append(p.undone, is)
		p.mu.Unlock()
	}, nil
}

func TestProvisioner_SQLite(t *testing.T) {
	testProvisioner(t, func(t *testing.T) *sqlstore.DB { return openSQLite(t, filepath.Join(t.TempDir(), "k.db")) })
}

func TestProvisioner_PostgreSQL(t *testing.T) {
	cluster := pgtest.Shared(t)
	testProvisioner(t, func(t *testing.T) *sqlstore.DB {
		db, err := sqlstore.Open(context.Background(), cluster.NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}

// testProvisioner: an approval asks the provisioner first, with what it
// issues and to whom; a refusal fails the approval and stores nothing; a
// transaction that fails after the provisioner created the credential
// undoes it.
func testProvisioner(t *testing.T, open func(t *testing.T) *sqlstore.DB) {
	ctx := context.Background()
	setup := func(t *testing.T) (*sqlstore.DB, *keylens.Developer, *recordingProvisioner) {
		db := open(t)
		p := &recordingProvisioner{}
		db.Provisioner = p
		cat := &keylens.Catalogue{APIs: []keylens.CatalogueEntry{{PolicyID: "pol-token", AuthType: keylens.AuthToken}}}
		if err := db.PutCatalogue(ctx, cat); err != nil {
			t.Fatal(err)
		}
		d := &keylens.Developer{Email: "ada@example.com", Fields: map[string]string{"Company": "AE"}}
		if err := db.CreateDeveloper(ctx, d); err != nil {
			t.Fatal(err)
		}
		return db, d, p
	}
	request := func() *keylens.KeyRequest {
		return &keylens.KeyRequest{ApplyPolicies: []string{"pol-token"}, Fields: map[string]any{"use": "billing"}}
	}

	t.Run("AskedFirstWithTheIssuedKeyAndItsOwner", func(t *testing.T) {
		db, d, p := setup(t)
		a, err := db.IssueKey(ctx, d.ID, request())
		if err != nil {
			t.Fatal(err)
		}
		if len(p.issued) != 1 || p.issued[0].Approval.RawKey != a.RawKey || p.issued[0].Key.Hash != a.KeyHash || len(p.undone) != 0 {
			t.Fatalf("provisioner saw %+v, undone %d", p.issued, len(p.undone))
		}
		o := p.owners[0]
		if o.ID != d.ID || o.Email != "ada@example.com" || o.OrgID != d.OrgID || o.Fields["Company"] != "AE" || o.Inactive {
			t.Errorf("owner %+v", o)
		}
		if _, err := db.FindKey(ctx, a.KeyHash); err != nil {
			t.Errorf("key not stored: %v", err)
		}
	})
	t.Run("AnUnknownClientsSecretIsNotFound", func(t *testing.T) {
		// Rotating an OAuth secret is refused while provisioning, but an
		// id that names no client of the developer is still 404.
		db, d, _ := setup(t)
		if _, err := db.RotateOAuthSecret(ctx, d.ID, "no-such-client", time.Hour); keylens.ErrorCode(err) != keylens.ENOTFOUND {
			t.Errorf("rotating an unknown client's secret: %v, want not found", err)
		}
	})
	t.Run("RefusalStoresNothing", func(t *testing.T) {
		db, d, p := setup(t)
		p.fail = keylens.Errorf(keylens.EBADGATEWAY, "Tyk gateway: no")
		r := request()
		if err := db.CreateKeyRequest(ctx, &keylens.KeyRequest{ByUser: d.ID, ApplyPolicies: r.ApplyPolicies}); err != nil {
			t.Fatal(err)
		}
		reqs, _, _ := db.FindKeyRequests(ctx, keylens.KeyRequestFilter{})
		_, err := db.ApproveKeyRequest(ctx, reqs[0].ID)
		if keylens.ErrorCode(err) != keylens.EBADGATEWAY {
			t.Fatalf("approve: %v", err)
		}
		if keys, _ := db.FindDeveloperKeys(ctx, d.ID); len(keys) != 0 {
			t.Errorf("keys stored: %v", keys)
		}
		if got, _ := db.FindKeyRequestByID(ctx, reqs[0].ID); got.Approved {
			t.Error("request approved")
		}
		if _, err := db.IssueKey(ctx, d.ID, request()); keylens.ErrorCode(err) != keylens.EBADGATEWAY {
			t.Errorf("IssueKey: %v", err)
		}
		if reqs, n, _ := db.FindKeyRequests(ctx, keylens.KeyRequestFilter{}); n != 1 {
			t.Errorf("IssueKey refused by the gateway filed a request: %v", reqs)
		}
	})
	t.Run("UndoneWhenTheTransactionFailsAfterwards", func(t *testing.T) {
		db, d, p := setup(t)
		cctx, cancel := context.WithCancel(ctx)
		p.cancel = cancel
		if _, err := db.IssueKey(cctx, d.ID, request()); err == nil {
			t.Fatal("IssueKey succeeded on a cancelled context")
		}
		if p.created != 1 || len(p.undone) != 1 {
			t.Errorf("created %d, undone %d: want the credential undone", p.created, len(p.undone))
		}
		if keys, _ := db.FindDeveloperKeys(ctx, d.ID); len(keys) != 0 {
			t.Errorf("keys stored: %v", keys)
		}
	})
	t.Run("TwoApprovalsOfOneRequestRace", func(t *testing.T) {
		// Both have created their key in the gateway before either
		// commits: one commits, the other finds the request approved and
		// undoes its key.
		db, d, p := setup(t)
		r := &keylens.KeyRequest{ByUser: d.ID, ApplyPolicies: []string{"pol-token"}}
		if err := db.CreateKeyRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		var both sync.WaitGroup
		both.Add(2)
		p.wait = func() { both.Done(); both.Wait() }
		var wg sync.WaitGroup
		errs := make([]error, 2)
		approvals := make([]*keylens.Approval, 2)
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				approvals[i], errs[i] = db.ApproveKeyRequest(ctx, r.ID)
			}()
		}
		wg.Wait()
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won = i
			case keylens.ErrorCode(err) != keylens.ECONFLICT:
				t.Errorf("approval %d: %v, want a conflict", i, err)
			}
		}
		if (errs[0] == nil) == (errs[1] == nil) {
			t.Fatalf("approvals answered %v and %v: want exactly one to succeed", errs[0], errs[1])
		}
		keys, _ := db.FindDeveloperKeys(ctx, d.ID)
		if len(keys) != 1 || keys[0].Hash != approvals[won].KeyHash {
			t.Errorf("keys stored %v, want the winner's %s", keys, approvals[won].KeyHash)
		}
		if p.created != 2 || len(p.undone) != 1 || p.undone[0].Key.Hash == approvals[won].KeyHash {
			t.Errorf("created %d, undone %v: want the loser's key undone", p.created, p.undone)
		}
	})
	t.Run("DeveloperChangedMeanwhile", func(t *testing.T) {
		// Deactivated while the gateway creates the key as active: the
		// key is stored and marked for the outbox to rewrite.
		db, d, p := setup(t)
		p.wait = func() {
			d.Inactive = true
			if err := db.UpdateDeveloper(ctx, d.ID, d); err != nil {
				t.Error(err)
			}
		}
		last, _ := db.LastChange(ctx)
		a, err := db.IssueKey(ctx, d.ID, request())
		if err != nil {
			t.Fatal(err)
		}
		changes, _, _ := db.ChangesSince(ctx, last, 100)
		rewrite := false
		for _, c := range changes {
			rewrite = rewrite || (c.Kind == keylens.ChangeKeyUpdated && c.KeyHash == a.KeyHash)
		}
		if !rewrite || p.owners[0].Inactive {
			t.Errorf("changes %+v: want the key marked updated after the deactivation", changes)
		}
	})
}

// TestApprovalCommitLost_PostgreSQL: the connection is lost at the
// approval's COMMIT. When the server committed, the approval stands and
// its gateway credential stays; when it did not, the credential is
// undone.
func TestApprovalCommitLost_PostgreSQL(t *testing.T) {
	ctx := context.Background()
	for _, committed := range []bool{true, false} {
		proxy := pgtest.NewProxy(t, pgtest.Shared(t).NewDatabase(t))
		db, err := sqlstore.Open(ctx, proxy.URL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		p := &recordingProvisioner{}
		db.Provisioner = p
		if err := db.PutCatalogue(ctx, &keylens.Catalogue{APIs: []keylens.CatalogueEntry{{PolicyID: "pol-token", AuthType: keylens.AuthToken}}}); err != nil {
			t.Fatal(err)
		}
		d := &keylens.Developer{Email: "ada@example.com"}
		if err := db.CreateDeveloper(ctx, d); err != nil {
			t.Fatal(err)
		}
		lost := proxy.LoseCommit("INSERT INTO developer_keys", committed)
		a, err := db.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-token"}})
		select {
		case <-lost:
		default:
			t.Fatalf("committed=%v: the connection was not lost at the commit (err %v)", committed, err)
		}
		keys, _ := db.FindDeveloperKeys(ctx, d.ID)
		if committed {
			if err != nil || len(keys) != 1 || keys[0].Hash != a.KeyHash || len(p.undone) != 0 {
				t.Errorf("committed: err %v, keys %v, undone %d: want the approval to stand", err, keys, len(p.undone))
			}
		} else if err == nil || len(keys) != 0 || len(p.undone) != 1 {
			t.Errorf("not committed: err %v, keys %v, undone %d: want it undone", err, keys, len(p.undone))
		}
	}
}
