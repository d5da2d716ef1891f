package sidecar_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/sidecar"
	"github.com/keylens/keylens/sqlstore"
)

// fixture is a real SQLite store with a catalogue and one developer.
type fixture struct {
	db  *sqlstore.DB
	dev *keylens.Developer
	r   *sidecar.Resolver
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.PutCatalogue(ctx, &keylens.Catalogue{APIs: []keylens.CatalogueEntry{
		{PolicyID: "pol-token", AuthType: keylens.AuthToken},
		{PolicyID: "pol-basic", AuthType: keylens.AuthBasic},
		{PolicyID: "pol-jwt", AuthType: keylens.AuthJWT},
		{PolicyID: "pol-oauth", AuthType: keylens.AuthOAuth},
	}}); err != nil {
		t.Fatal(err)
	}
	dev := &keylens.Developer{Email: "ada@example.com", Fields: map[string]string{"Company": "Analytical Engines"}}
	if err := db.CreateDeveloper(ctx, dev); err != nil {
		t.Fatal(err)
	}
	return &fixture{db: db, dev: dev, r: sidecar.NewResolver(db, sidecar.ResolverOptions{})}
}

func (f *fixture) issue(t testing.TB, r *keylens.KeyRequest) *keylens.Approval {
	t.Helper()
	a, err := f.db.IssueKey(context.Background(), f.dev.ID, r)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestResolveRawKey(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.issue(t, &keylens.KeyRequest{ForPlan: "pol-token", Fields: map[string]any{"Use case": "billing"}})
	for _, cred := range []string{a.RawKey, "Bearer " + a.RawKey, "bearer  " + a.RawKey + " "} {
		e, err := f.r.Resolve(ctx, []byte(cred))
		if err != nil {
			t.Fatalf("%q: %v", cred, err)
		}
		id := e.Identity()
		if id.DeveloperID != f.dev.ID || id.Email != "ada@example.com" || id.KeyID != a.KeyHash || id.Policies[0] != "pol-token" ||
			id.Fields["Company"] != "Analytical Engines" || id.KeyRequestFields["Use case"] != "billing" || e.Inactive {
			t.Errorf("%q resolved to %+v", cred, id)
		}
	}
	for _, cred := range []string{"", "nope", "Bearer ", a.RawKey[:len(a.RawKey)-4], "Basic !!!", "\x00\xff"} {
		if _, err := f.r.Resolve(ctx, []byte(cred)); !errors.Is(err, sidecar.ErrUnknown) {
			t.Errorf("%q: %v, want ErrUnknown", cred, err)
		}
	}
}

func TestResolveFollowsRevocationAndDeactivation(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go f.r.Follow(ctx, f.db)
	a := f.issue(t, &keylens.KeyRequest{ForPlan: "pol-token"})
	if _, err := f.r.Resolve(ctx, []byte(a.RawKey)); err != nil {
		t.Fatal(err)
	}

	// Deactivate: the cached identity turns inactive.
	d, _ := f.db.FindDeveloperByID(ctx, f.dev.ID)
	d.Inactive = true
	if err := f.db.UpdateDeveloper(ctx, d.ID, d); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "deactivation", func() bool {
		e, err := f.r.Resolve(ctx, []byte(a.RawKey))
		return err == nil && e.Inactive
	})
	d.Inactive = false
	if err := f.db.UpdateDeveloper(ctx, d.ID, d); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reactivation", func() bool {
		e, err := f.r.Resolve(ctx, []byte(a.RawKey))
		return err == nil && !e.Inactive
	})
	// Revoke: the key stops resolving.
	if err := f.db.RevokeKey(ctx, f.dev.ID, a.KeyHash); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "revocation", func() bool {
		_, err := f.r.Resolve(ctx, []byte(a.RawKey))
		return errors.Is(err, sidecar.ErrUnknown)
	})
	// A key issued after it was remembered as unknown resolves at once.
	unknown := keylens.GenerateKey(f.dev.OrgID, "murmur64")
	if _, err := f.r.Resolve(ctx, []byte(unknown)); !errors.Is(err, sidecar.ErrUnknown) {
		t.Fatal(err)
	}
	b := f.issue(t, &keylens.KeyRequest{ForPlan: "pol-token"})
	waitFor(t, "new key", func() bool {
		_, err := f.r.Resolve(ctx, []byte(b.RawKey))
		return err == nil
	})
}

// waitFor polls cond for up to 2 s (the change feed answers on commit; this
// bound only keeps a broken build from hanging).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < 2*time.Second {
		if cond() {
			t.Logf("%s took effect after %v", what, time.Since(start).Round(time.Microsecond))
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%s did not take effect", what)
}

func TestResolveBasic(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.issue(t, &keylens.KeyRequest{ForPlan: "pol-basic"})
	basic := func(u, p string) []byte { return []byte("Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p))) }
	e, err := f.r.Resolve(ctx, basic(a.RawKey, a.Password))
	if err != nil || e.DeveloperID != f.dev.ID {
		t.Fatalf("basic: %v %v", e, err)
	}
	for name, cred := range map[string][]byte{
		"wrong password":  basic(a.RawKey, "wrong"),
		"unknown user":    basic("nobody", a.Password),
		"no colon":        []byte("Basic " + base64.StdEncoding.EncodeToString([]byte(a.RawKey))),
		"truncated b64":   []byte("Basic " + base64.StdEncoding.EncodeToString([]byte(a.RawKey + ":" + a.Password))[:10]),
		"token key as pw": basic(a.RawKey, ""),
	} {
		if _, err := f.r.Resolve(ctx, cred); !errors.Is(err, sidecar.ErrUnknown) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestResolveJWT(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const secret = "an-hmac-secret-of-32-characters!"
	hmacKey := f.issue(t, &keylens.KeyRequest{ForPlan: "pol-jwt", JWTSecret: secret})

	rsaPriv, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaKey := f.issue(t, &keylens.KeyRequest{ForPlan: "pol-jwt", JWTSecret: pemPublic(t, &rsaPriv.PublicKey)})
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecKey := f.issue(t, &keylens.KeyRequest{ForPlan: "pol-jwt", JWTSecret: pemPublic(t, &ecPriv.PublicKey)})
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	edKey := f.issue(t, &keylens.KeyRequest{ForPlan: "pol-jwt", JWTSecret: pemPublic(t, edPub)})
	tokenKey := f.issue(t, &keylens.KeyRequest{ForPlan: "pol-token"})

	now := time.Now()
	valid := jwt.MapClaims{"sub": "client", "exp": now.Add(time.Hour).Unix()}
	sign := func(m jwt.SigningMethod, kid string, claims jwt.MapClaims, key any) string {
		tok := jwt.NewWithClaims(m, claims)
		if kid != "" {
			tok.Header["kid"] = kid
		}
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := map[string]string{
		"HS256":  sign(jwt.SigningMethodHS256, hmacKey.RawKey, valid, []byte(secret)),
		"HS512":  sign(jwt.SigningMethodHS512, hmacKey.RawKey, valid, []byte(secret)),
		"RS256":  sign(jwt.SigningMethodRS256, rsaKey.RawKey, valid, rsaPriv),
		"PS256":  sign(jwt.SigningMethodPS256, rsaKey.RawKey, valid, rsaPriv),
		"ES256":  sign(jwt.SigningMethodES256, ecKey.RawKey, valid, ecPriv),
		"EdDSA":  sign(jwt.SigningMethodEdDSA, edKey.RawKey, valid, edPriv),
		"no exp": sign(jwt.SigningMethodHS256, hmacKey.RawKey, jwt.MapClaims{"sub": "x"}, []byte(secret)),
		// Within the 30 s leeway: clocks differ a little.
		"iat 10 s ahead":   sign(jwt.SigningMethodHS256, hmacKey.RawKey, jwt.MapClaims{"iat": now.Add(10 * time.Second).Unix(), "exp": now.Add(time.Hour).Unix()}, []byte(secret)),
		"expired 10 s ago": sign(jwt.SigningMethodHS256, hmacKey.RawKey, jwt.MapClaims{"exp": now.Add(-10 * time.Second).Unix()}, []byte(secret)),
		"fractional exp":   sign(jwt.SigningMethodHS256, hmacKey.RawKey, jwt.MapClaims{"exp": float64(now.Add(time.Hour).Unix()) + 0.5}, []byte(secret)),
		"bearer ":          "Bearer " + sign(jwt.SigningMethodHS256, hmacKey.RawKey, valid, []byte(secret)),
	}
	for name, tok := range good {
		e, err := f.r.Resolve(ctx, []byte(tok))
		if err != nil || e.DeveloperID != f.dev.ID {
			t.Errorf("%s: %v %v", name, e, err)
		}
	}
	if e, _ := f.r.Resolve(ctx, []byte(good["HS256"])); e == nil || e.Expires != valid["exp"] {
		t.Errorf("exp not carried into the identity: %+v", e)
	}

	// The public key's PEM, used as an HMAC secret: the algorithm
	// confusion attack. Refused because a public key only ever verifies
	// its own family.
	rsaPEM := []byte(pemPublic(t, &rsaPriv.PublicKey))
	noneTok, _ := jwt.NewWithClaims(jwt.SigningMethodNone, valid).SignedString(jwt.UnsafeAllowNoneSignatureType)
	bad := map[string]string{
		"expired":              sign(jwt.SigningMethodHS256, hmacKey.RawKey, jwt.MapClaims{"exp": now.Add(-time.Minute).Unix()}, []byte(secret)),
		"not yet valid":        sign(jwt.SigningMethodHS256, hmacKey.RawKey, jwt.MapClaims{"nbf": now.Add(time.Hour).Unix()}, []byte(secret)),
		"wrong secret":         sign(jwt.SigningMethodHS256, hmacKey.RawKey, valid, []byte("another-secret-of-32-characters!")),
		"alg none":             withKid(noneTok, hmacKey.RawKey),
		"HS256 with RSA PEM":   sign(jwt.SigningMethodHS256, rsaKey.RawKey, valid, rsaPEM),
		"RS256 on an HMAC key": sign(jwt.SigningMethodRS256, hmacKey.RawKey, valid, rsaPriv),
		"ES256 on an RSA key":  sign(jwt.SigningMethodES256, rsaKey.RawKey, valid, ecPriv),
		"no kid":               sign(jwt.SigningMethodHS256, "", valid, []byte(secret)),
		"unknown kid":          sign(jwt.SigningMethodHS256, "nope", valid, []byte(secret)),
		"kid of a non-jwt key": sign(jwt.SigningMethodHS256, tokenKey.RawKey, valid, []byte(secret)),
		"garbage in three":     "a.b.c",
		"iat in the future":    sign(jwt.SigningMethodHS256, hmacKey.RawKey, jwt.MapClaims{"iat": now.Add(time.Hour).Unix(), "exp": now.Add(2 * time.Hour).Unix()}, []byte(secret)),
		"EXP as a string":      sign(jwt.SigningMethodHS256, hmacKey.RawKey, jwt.MapClaims{"EXP": "99999999999999"}, []byte(secret)),
		"Iat in the future":    sign(jwt.SigningMethodHS256, hmacKey.RawKey, jwt.MapClaims{"Iat": now.Add(time.Hour).Unix(), "exp": now.Add(2 * time.Hour).Unix()}, []byte(secret)),
		"exp as a string":      sign(jwt.SigningMethodHS256, hmacKey.RawKey, jwt.MapClaims{"exp": fmt.Sprint(now.Add(time.Hour).Unix())}, []byte(secret)),
		"nbf as a string":      sign(jwt.SigningMethodHS256, hmacKey.RawKey, jwt.MapClaims{"nbf": "0", "exp": now.Add(time.Hour).Unix()}, []byte(secret)),
		"exp 1e30":             sign(jwt.SigningMethodHS256, hmacKey.RawKey, jwt.MapClaims{"exp": 1e30}, []byte(secret)),
		"exp negative":         sign(jwt.SigningMethodHS256, hmacKey.RawKey, jwt.MapClaims{"exp": -1}, []byte(secret)),
		"unknown crit":         signWithHeader(t, hmacKey.RawKey, map[string]any{"crit": []string{"x-ext"}, "x-ext": 1}, valid, []byte(secret)),
		"expired past leeway":  sign(jwt.SigningMethodHS256, hmacKey.RawKey, jwt.MapClaims{"exp": now.Add(-time.Minute).Unix()}, []byte(secret)),
		"truncated":            good["HS256"][:len(good["HS256"])-5],
		"signature of another": good["HS256"][:len(good["HS256"])-10] + good["RS256"][len(good["RS256"])-10:],
	}
	for name, tok := range bad {
		if _, err := f.r.Resolve(ctx, []byte(tok)); !errors.Is(err, sidecar.ErrUnknown) {
			t.Errorf("%s: %v, want ErrUnknown", name, err)
		}
	}
}

// withKid rewrites a token's header to carry kid (for alg:none tokens,
// which golang-jwt will not sign with a kid through the normal path).
func withKid(token, kid string) string {
	parts := splitDots(token)
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT","kid":"` + kid + `"}`))
	return hdr + "." + parts[1] + "."
}

func splitDots(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func pemPublic(t testing.TB, pub any) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func TestCacheHitAllocatesNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.issue(t, &keylens.KeyRequest{ForPlan: "pol-token"})
	cred := []byte(a.RawKey)
	if _, err := f.r.Resolve(ctx, cred); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() { _, _ = f.r.Resolve(ctx, cred) }); n != 0 {
		t.Errorf("a cache hit allocates %.1f times", n)
	}
}

func FuzzResolve(f *testing.F) {
	fx := newFixture(f)
	a := fx.issue(f, &keylens.KeyRequest{ForPlan: "pol-token"})
	b := fx.issue(f, &keylens.KeyRequest{ForPlan: "pol-basic"})
	for _, s := range []string{a.RawKey, "Bearer " + a.RawKey, "Basic " + base64.StdEncoding.EncodeToString([]byte(b.RawKey+":"+b.Password)),
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig", "Basic ", "a.b.c", "ey"} {
		f.Add([]byte(s))
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, cred []byte) {
		e, err := fx.r.Resolve(ctx, cred)
		// A Basic username guessed at too often is refused without a
		// check: the fuzzer guesses, so it meets that refusal.
		var guessing *sidecar.GuessingError
		if err != nil && !errors.Is(err, sidecar.ErrUnknown) && !errors.As(err, &guessing) {
			t.Fatalf("%q: %v", cred, err)
		}
		if err == nil && e.DeveloperID != fx.dev.ID {
			t.Fatalf("%q resolved to a stranger: %+v", cred, e.Identity())
		}
	})
}

// A key change leaves the developer's other cached keys alone; a developer
// change drops them all.
func TestApplyInvalidatesOnlyWhatChanged(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.issue(t, &keylens.KeyRequest{ForPlan: "pol-token"})
	b := f.issue(t, &keylens.KeyRequest{ForPlan: "pol-token"})
	for _, k := range []string{a.RawKey, b.RawKey} {
		if _, err := f.r.Resolve(ctx, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	f.r.Apply(keylens.Change{Kind: keylens.ChangeKeyRevoked, DeveloperID: f.dev.ID, KeyHash: a.KeyHash})
	if n := f.r.Len(); n != 1 {
		t.Errorf("after a key change %d entries cached, want 1 (the other key)", n)
	}
	f.r.Apply(keylens.Change{Kind: keylens.ChangeDeveloper, DeveloperID: f.dev.ID})
	if n := f.r.Len(); n != 0 {
		t.Errorf("after a developer change %d entries cached, want 0", n)
	}
}

// A wrong Basic password is remembered as unknown, so that repeating the
// guess costs no bcrypt comparison: a developer change (any edit) keeps
// that memory; a new key, which may be what the credential names, drops it.
func TestGuessesStayCachedAcrossDeveloperChanges(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.issue(t, &keylens.KeyRequest{ForPlan: "pol-basic"})
	// A negative TTL no slow run outlasts: the default 2 s passed between
	// two resolves under the race detector on a loaded machine.
	f.r = sidecar.NewResolver(f.db, sidecar.ResolverOptions{NegativeTTL: time.Hour})
	var checks atomic.Int64
	sidecar.SetPasswordCheck(f.r, func(hash, pw string) bool { checks.Add(1); return keylens.CheckPassword(hash, pw) })
	guess := []byte("Basic " + base64.StdEncoding.EncodeToString([]byte(a.RawKey+":guess")))
	resolve := func() {
		t.Helper()
		if _, err := f.r.Resolve(ctx, guess); !errors.Is(err, sidecar.ErrUnknown) {
			t.Fatalf("guess: %v", err)
		}
	}
	resolve()
	resolve()
	f.r.Apply(keylens.Change{Kind: keylens.ChangeDeveloper, DeveloperID: f.dev.ID})
	resolve()
	if n := checks.Load(); n != 1 {
		t.Errorf("a guess repeated twice, across a developer change, cost %d password checks, want 1", n)
	}
	f.r.Apply(keylens.Change{Kind: keylens.ChangeKeyAdded, DeveloperID: f.dev.ID, KeyHash: "ffffffffffffffff"})
	resolve()
	if n := checks.Load(); n != 2 {
		t.Errorf("after a new key the guess cost %d checks in all, want 2", n)
	}
}

// signWithHeader signs claims with HS256 under kid and extra header members.
func signWithHeader(t *testing.T, kid string, header map[string]any, claims jwt.MapClaims, key []byte) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["kid"] = kid
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAPIKeyWithTwoDots: a custom API key shaped like a.b.c is an API key,
// not a malformed JWT.
func TestAPIKeyWithTwoDots(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	d := &keylens.Developer{Email: "dots@example.com", Keys: map[string][]string{"my.custom.key": {"pol-token"}}}
	if err := f.db.CreateDeveloper(ctx, d); err != nil {
		t.Fatal(err)
	}
	for _, cred := range []string{"my.custom.key", "Bearer my.custom.key"} {
		if e, err := f.r.Resolve(ctx, []byte(cred)); err != nil || e.DeveloperID != d.ID {
			t.Errorf("%s: %v, %v", cred, e, err)
		}
	}
}

// TestRotatedKeyEndsInTheCache: during the grace both keys resolve, each
// to its own hash; the old key's cached entry stops at the grace end by
// itself, even when the store (here with its clock held back) would
// still answer it.
func TestRotatedKeyEndsInTheCache(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.issue(t, &keylens.KeyRequest{ForPlan: "pol-token"})
	if _, err := f.r.Resolve(ctx, []byte(a.RawKey)); err != nil { // cached without an end
		t.Fatal(err)
	}
	last, _ := f.db.LastChange(ctx)
	rot, err := f.db.RotateKey(ctx, f.dev.ID, a.KeyHash, keylens.KeyRotation{Grace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	changes, _, _ := f.db.ChangesSince(ctx, last, 10)
	for _, c := range changes {
		f.r.Apply(c)
	}
	held := rot.OldKeyExpires.Add(-time.Hour)
	f.db.Now = func() time.Time { return held }
	oldE, err := f.r.Resolve(ctx, []byte(a.RawKey))
	if err != nil || oldE.KeyID != a.KeyHash || oldE.Expires != rot.OldKeyExpires.Unix() {
		t.Fatalf("old key during the grace: %v; want its hash and end %d", err, rot.OldKeyExpires.Unix())
	}
	newE, err := f.r.Resolve(ctx, []byte(rot.RawKey))
	if err != nil || newE.KeyID != rot.KeyHash || newE.DeveloperID != oldE.DeveloperID || newE.Expires != 0 {
		t.Fatalf("new key: %v", err)
	}
	for {
		_, err := f.r.Resolve(ctx, []byte(a.RawKey))
		now := time.Now()
		if err == nil {
			if now.After(rot.OldKeyExpires.Add(time.Second)) {
				t.Fatalf("the old key still resolves at %v, a second after its end %v", now, rot.OldKeyExpires)
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if !errors.Is(err, sidecar.ErrUnknown) {
			t.Fatal(err)
		}
		if now.Before(rot.OldKeyExpires) {
			t.Fatalf("refused at %v, before the end %v", now, rot.OldKeyExpires)
		}
		break
	}
	if _, err := f.r.Resolve(ctx, []byte(rot.RawKey)); err != nil {
		t.Errorf("the new key after the old one's end: %v", err)
	}
}

// TestRotatedJWTKeyBothVerify: a jwt key rotated with new material: during
// the grace, tokens naming the old key id verify with the old secret and
// those naming the new id with the new one, never crosswise.
func TestRotatedJWTKeyBothVerify(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	oldSecret, newSecret := "an-hmac-secret-of-32-characters!", "another-hmac-secret-of-32-bytes!"
	a := f.issue(t, &keylens.KeyRequest{ForPlan: "pol-jwt", JWTSecret: oldSecret})
	rot, err := f.db.RotateKey(ctx, f.dev.ID, a.KeyHash, keylens.KeyRotation{Grace: time.Hour, JWTSecret: newSecret})
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{"sub": "ada", "exp": time.Now().Add(time.Minute).Unix()}
	for _, c := range []struct {
		kid, secret, hash string
	}{{a.RawKey, oldSecret, a.KeyHash}, {rot.RawKey, newSecret, rot.KeyHash}} {
		e, err := f.r.Resolve(ctx, []byte("Bearer "+signWithHeader(t, c.kid, nil, claims, []byte(c.secret))))
		if err != nil || e.KeyID != c.hash {
			t.Errorf("kid %s: %v", c.hash, err)
		}
	}
	for _, c := range []struct{ kid, secret string }{{a.RawKey, newSecret}, {rot.RawKey, oldSecret}} {
		if _, err := f.r.Resolve(ctx, []byte("Bearer "+signWithHeader(t, c.kid, nil, claims, []byte(c.secret)))); !errors.Is(err, sidecar.ErrUnknown) {
			t.Errorf("a token signed with the other key's secret: %v", err)
		}
	}
}
