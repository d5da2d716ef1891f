package sqlstore_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/sqlstore"
	"github.com/keylens/keylens/sqlstore/pgtest"
)

// recordingProvisioner stands in for a gateway: it records what it was
// asked to create and undo, and fails or cancels the approving
// transaction's context when told.
type recordingProvisioner struct {
	fail    error
	cancel  context.CancelFunc // called after a successful Provision
	issued  []*keylens.Issued
	owners  []keylens.CredentialOwner
	undone  int
	created int
}

func (p *recordingProvisioner) Provision(ctx context.Context, is *keylens.Issued, owner keylens.CredentialOwner) (func(context.Context), error) {
	p.issued, p.owners = append(p.issued, is), append(p.owners, owner)
	if p.fail != nil {
		return nil, p.fail
	}
	p.created++
	if p.cancel != nil {
		p.cancel() // the transaction now fails after the gateway said yes
	}
	return func(context.Context) { p.undone++ }, nil
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
		if len(p.issued) != 1 || p.issued[0].Approval.RawKey != a.RawKey || p.issued[0].Key.Hash != a.KeyHash || p.undone != 0 {
			t.Fatalf("provisioner saw %+v, undone %d", p.issued, p.undone)
		}
		o := p.owners[0]
		if o.ID != d.ID || o.Email != "ada@example.com" || o.OrgID != d.OrgID || o.Fields["Company"] != "AE" || o.Inactive {
			t.Errorf("owner %+v", o)
		}
		if _, err := db.FindKey(ctx, a.KeyHash); err != nil {
			t.Errorf("key not stored: %v", err)
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
		if p.created != 1 || p.undone != 1 {
			t.Errorf("created %d, undone %d: want the credential undone", p.created, p.undone)
		}
		if keys, _ := db.FindDeveloperKeys(ctx, d.ID); len(keys) != 0 {
			t.Errorf("keys stored: %v", keys)
		}
	})
}
