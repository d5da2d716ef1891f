package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"github.com/valyala/fasthttp"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/analytics"
	"github.com/keylens/keylens/guard"
	"github.com/keylens/keylens/identity"
	"github.com/keylens/keylens/identity/hits"
	"github.com/keylens/keylens/mailer"
	"github.com/keylens/keylens/rest"
	"github.com/keylens/keylens/sidecar"
	"github.com/keylens/keylens/sqlstore"
	"github.com/keylens/keylens/tykanalytics"
	"github.com/keylens/keylens/tykgateway"
	"github.com/keylens/keylens/web"
)

// Config is everything `keylens serve` and `keylens sidecar` are told.
type Config struct {
	Store       string
	Portal      string // keylens sidecar --portal: read through a portal's admin API instead
	AdminAddr   string
	SidecarAddr string
	AdminKey    string
	OrgID       string // keylens serve: the portal's org, as the gateway's
	// PublicURL is where browsers reach the admin listener; an https
	// URL marks the console's cookies Secure.
	PublicURL string
	// ConsoleGravatar shows developers' Gravatar images in the console.
	ConsoleGravatar bool
	// PortalAddr is the developer portal's listener ("" for none);
	// PortalURL where browsers reach it (links in emails; https marks its
	// cookies Secure).
	PortalAddr string
	PortalURL  string
	// SMTPURL sends the portal's emails (smtp:// or smtps://); without
	// it they are written to the log. MailFrom is their sender.
	SMTPURL   string
	MailFrom  string
	KeyHash   string
	LogLevel  string
	LogFormat string
	ReadyFile string
	// SecretsKeyFile names a file holding the key that seals secrets at
	// rest; KEYLENS_SECRETS_KEY may carry the key itself instead.
	SecretsKeyFile string
	secretsKey     []byte

	// Sidecar.
	CacheSize        int
	JWTLeeway        time.Duration
	CacheTTL         time.Duration
	NegativeCacheTTL time.Duration
	IntrospectSecret string
	KeyHeader        string
	MaxHeaderBytes   int
	Assertions       bool
	AssertionKey     string
	AssertionTTL     time.Duration
	Headers          identity.HeaderNames
	OAuthTokenTTL    time.Duration

	// Central JWT verification: one source of keys, and what a token
	// must say.
	JWTJWKSURL       string
	JWTJWKSRefresh   time.Duration
	JWTHMACSecret    string
	JWTPublicKeyFile string
	JWTIssuer        string
	JWTAudience      string
	JWTIdentityClaim string
	jwtPublicKey     any

	// Passwords and sign-ins.
	BcryptCost             int
	BcryptConcurrency      int
	LoginMaxFailures       int
	LoginClientMaxFailures int
	LoginFailureWindow     time.Duration

	// Analytics.
	HitsSecret     string
	HitsMaxPending int
	MetricsMaxKeys int

	// Tyk analytics from Redis.
	TykRedis        string
	TykAnalyticsKey string
	TykConsumerID   string
	TykChunkSize    int
	TykPollInterval time.Duration

	// Tyk gateway provisioning.
	TykGateway        string
	TykSecret         string
	TykInactivePolicy string
}

// minAdminKeyLength keeps a guessable admin key from being configured.
const minAdminKeyLength = 16

// Main is the serve and sidecar commands: ParseFlags, Run, Wait, Close.
type Main struct {
	Config Config
	// SidecarOnly runs the sidecar without the portal API (keylens sidecar).
	SidecarOnly bool

	stdout, stderr io.Writer
	logger         *slog.Logger
	db             *sqlstore.DB
	backend        backend // what the sidecar reads: db, or a portal client
	committer      *analytics.Committer
	registry       *prometheus.Registry
	tyk            *tykanalytics.Consumer
	tykRedis       *redis.Client
	outbox         *tykgateway.Outbox
	revoker        keylens.TokenRevoker // nil: keylens's own tokens (rest's default)
	outboxDone     chan struct{}
	servers        []*http.Server
	portal         *web.Portal
	urls           map[string]string // listener → its URL, for the ready file
	sidecar        *fasthttp.Server
	cancel         context.CancelFunc
	serveErrs      chan error
}

// NewMain returns a Main writing to stdout and stderr.
func NewMain(stdout, stderr io.Writer) *Main {
	return &Main{stdout: stdout, stderr: stderr, serveErrs: make(chan error, 4), urls: map[string]string{}}
}

var errHelp = errors.New("help requested")

// ParseFlags reads the configuration: defaults, then KEYLENS_* environment
// variables, then flags. It reports every problem at once.
func (m *Main) ParseFlags(args []string, getenv func(string) string) error {
	c := &m.Config
	name := "keylens serve"
	if m.SidecarOnly {
		name = "keylens sidecar"
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(m.stderr)
	fs.StringVar(&c.Store, "store", "sqlite:./data/keylens.db", "store: sqlite:PATH (embedded; directory created) or postgres://URL")
	if !m.SidecarOnly {
		fs.StringVar(&c.AdminAddr, "admin-addr", "127.0.0.1:3000", "address of the portal REST API")
		fs.StringVar(&c.AdminKey, "admin-key", "", "admin key clients send in Authorization; when unset, one is generated on first run and printed once")
		fs.StringVar(&c.OrgID, "org-id", "", "the portal's org id: set it to the Tyk gateway's org, which the keys keylens generates embed and its policies live in; when unset, the one generated on first run")
		fs.StringVar(&c.PublicURL, "public-url", "", "the URL browsers reach the admin listener at (e.g. https://keylens.example.com behind a TLS proxy); https marks the console's cookies Secure")
		fs.StringVar(&c.PortalAddr, "portal-addr", "127.0.0.1:3001", "address of the developer portal (sign up, keys, usage, profile, password reset); empty: no portal. It faces developers: put it, not the admin listener, behind your public TLS proxy")
		fs.StringVar(&c.PortalURL, "portal-url", "", "the URL browsers reach the developer portal at (e.g. https://developers.example.com behind a TLS proxy): the links in its emails start with it, and https marks its cookies Secure; default http://<portal-addr>")
		fs.StringVar(&c.SMTPURL, "smtp-url", "", "send the portal's emails through this server: smtp://user:pass@host:port (STARTTLS when offered) or smtps://… (TLS from the start); unset: emails are written to the log (development only: a reset link in the log works)")
		fs.StringVar(&c.MailFrom, "mail-from", "", "the sender address of the portal's emails (needed with --smtp-url)")
		fs.BoolVar(&c.ConsoleGravatar, "console-gravatar", true, "show developers' Gravatar images in the console (the browser then asks www.gravatar.com for a digest of each viewed developer's email); false shows initials only")
	} else {
		fs.StringVar(&c.Portal, "portal", "", "read keys, developers and changes from the keylens portal at this URL (with --admin-key) instead of from --store")
		fs.StringVar(&c.AdminKey, "admin-key", "", "with --portal: the portal's admin key")
	}
	fs.StringVar(&c.SidecarAddr, "sidecar-addr", "127.0.0.1:8181", "address of the sidecar (lookup, introspection, forward-auth)")
	fs.IntVar(&c.CacheSize, "cache-size", 100000, "credentials the sidecar caches")
	fs.DurationVar(&c.CacheTTL, "cache-ttl", 10*time.Minute, "longest a found identity is cached; the change feed invalidates it as changes commit, so this only bounds staleness if the feed is lost")
	fs.DurationVar(&c.NegativeCacheTTL, "negative-cache-ttl", 2*time.Second, "how long an unknown credential is cached")
	fs.StringVar(&c.IntrospectSecret, "introspect-secret", "", "when set, /introspect callers must send Authorization: Bearer <secret>")
	fs.StringVar(&c.KeyHeader, "key-header", "Authorization", "request header that carries the key")
	fs.DurationVar(&c.JWTLeeway, "jwt-leeway", sidecar.DefaultJWTLeeway, "clock skew tolerated on a JWT's exp, nbf and iat (0 for none)")
	fs.BoolVar(&c.Assertions, "assertions", false, "add X-Developer-Assertion, a signed JWT of the identity, and serve /.well-known/jwks.json")
	fs.StringVar(&c.AssertionKey, "assertion-key", "", "Ed25519 private key (PKCS #8 PEM) for assertions; generated at start when unset")
	fs.DurationVar(&c.AssertionTTL, "assertion-ttl", time.Minute, "lifetime of an assertion")
	fs.StringVar(&c.JWTJWKSURL, "jwt-jwks-url", "", "verify JWTs centrally against the identity provider's JWKS at this http(s) URL; a verified JWT resolves to the key whose id is its --jwt-identity-claim, and jwt key requests without a secret may be approved")
	fs.DurationVar(&c.JWTJWKSRefresh, "jwt-jwks-refresh", sidecar.DefaultJWKSMinRefresh, "with --jwt-jwks-url: the JWKS is fetched again this often, and on a token with an unknown kid at most once per this")
	fs.StringVar(&c.JWTHMACSecret, "jwt-hmac-secret", "", "verify JWTs centrally with this HMAC secret (HS256/384/512; at least 32 bytes) instead of a JWKS")
	fs.StringVar(&c.JWTPublicKeyFile, "jwt-public-key", "", "verify JWTs centrally with the RSA, ECDSA or Ed25519 public key (PEM: PUBLIC KEY or CERTIFICATE) in this file instead of a JWKS")
	fs.StringVar(&c.JWTIssuer, "jwt-issuer", "", "with central JWT: the iss a token must carry")
	fs.StringVar(&c.JWTAudience, "jwt-audience", "", "with central JWT: a value a token's aud must hold")
	fs.StringVar(&c.JWTIdentityClaim, "jwt-identity-claim", "sub", "with central JWT: the claim holding the key id (Tyk's jwt_identity_base_field)")
	fs.DurationVar(&c.OAuthTokenTTL, "oauth-token-ttl", keylens.DefaultTokenTTL, "lifetime of an OAuth access token from the sidecar's POST /oauth/token (1s to 8760h)")
	d := identity.DefaultHeaderNames
	fs.StringVar(&c.Headers.DeveloperID, "header-developer-id", d.DeveloperID, "upstream header: developer id")
	fs.StringVar(&c.Headers.Email, "header-email", d.Email, "upstream header: developer email")
	fs.StringVar(&c.Headers.KeyID, "header-key-id", d.KeyID, "upstream header: key hash")
	fs.StringVar(&c.Headers.Policies, "header-policies", d.Policies, "upstream header: comma-separated policies")
	fs.StringVar(&c.Headers.FieldPrefix, "header-field-prefix", d.FieldPrefix, "upstream header prefix: developer custom fields")
	fs.StringVar(&c.Headers.KeyRequestFieldPrefix, "header-key-request-field-prefix", d.KeyRequestFieldPrefix, "upstream header prefix: key request fields")
	fs.StringVar(&c.Headers.Assertion, "header-assertion", d.Assertion, "upstream header: signed assertion")
	fs.StringVar(&c.Headers.Truncated, "header-fields-truncated", d.Truncated, "upstream header: \"true\" when custom fields were left out to stay within --max-identity-header-bytes")
	fs.IntVar(&c.MaxHeaderBytes, "max-identity-header-bytes", identity.DefaultMaxHeaderBytes, "size limit of the identity headers of one request; custom fields beyond it are left out (and counted)")
	fs.IntVar(&c.BcryptCost, "bcrypt-cost", keylens.DefaultBcryptCost, "bcrypt cost of stored passwords; a successful check rehashes one of another cost")
	fs.IntVar(&c.BcryptConcurrency, "bcrypt-concurrency", max(1, runtime.GOMAXPROCS(0)/2), "Basic password checks the sidecar runs at once; more answer 429 with Retry-After, so that guessing cannot starve valid keys of CPU")
	fs.IntVar(&c.LoginMaxFailures, "login-max-failures", 10, "failed sign-ins (verify_credentials) of one account within --login-failure-window before it is refused with 429 (0: no limit)")
	fs.IntVar(&c.LoginClientMaxFailures, "login-client-max-failures", 50, "failed sign-ins from one client address within --login-failure-window before it is refused with 429 (0: no limit)")
	fs.DurationVar(&c.LoginFailureWindow, "login-failure-window", 15*time.Minute, "the window of the sign-in failure limits")
	fs.StringVar(&c.HitsSecret, "hits-secret", "", "when set, POST /hits and GET /changes callers (the Tyk plugin) must send Authorization: Bearer <secret>")
	fs.IntVar(&c.HitsMaxPending, "hits-max-pending", analytics.DefaultMaxQueuedRows, "series (key, API, hour, status) received and not yet committed; POST /hits answers 503 with Retry-After beyond it")
	fs.IntVar(&c.MetricsMaxKeys, "metrics-max-keys", analytics.DefaultMaxKeys, "keys with their own hit and error series on /metrics; the least recently hit go first")
	fs.StringVar(&c.TykRedis, "tyk-redis", "", "consume the Tyk gateway's analytics records from this Redis: redis://[:password@]host:port/db (rediss:// for TLS)")
	fs.StringVar(&c.TykAnalyticsKey, "tyk-analytics-key", tykanalytics.DefaultAnalyticsKey, "with --tyk-redis: the gateway's analytics list; its _0 ... _9 variants are consumed too")
	fs.StringVar(&c.TykConsumerID, "tyk-consumer-id", "", "with --tyk-redis: this process's name among the consumers of the lists (its processing list); default: the host name and a digest of the store and list")
	fs.IntVar(&c.TykChunkSize, "tyk-chunk-size", tykanalytics.DefaultChunkSize, "with --tyk-redis: records taken and committed at once (1 to 5000)")
	fs.DurationVar(&c.TykPollInterval, "tyk-poll-interval", tykanalytics.DefaultPollInterval, "with --tyk-redis: how long to wait when every list is empty (at most 10s: the gateway expires unread records after 60 s)")
	if !m.SidecarOnly {
		fs.StringVar(&c.TykGateway, "tyk-gateway", "", "provision keys in the Tyk gateway at this URL (its /tyk/ REST API): approvals create the credential there first, and later changes follow")
		fs.StringVar(&c.TykSecret, "tyk-secret", "", "with --tyk-gateway: the gateway's secret (X-Tyk-Authorization); better set as KEYLENS_TYK_SECRET")
		fs.StringVar(&c.TykInactivePolicy, "tyk-inactive-policy", "", "with --tyk-gateway: a gateway policy with is_inactive: true that replaces a deactivated developer's policies (Tyk ignores a key's own is_inactive when it has policies)")
	}
	fs.StringVar(&c.KeyHash, "key-hash-algorithm", keylens.DefaultHashAlgorithm, "algorithm named in generated keys, as the gateway's hash_key_function: murmur32, murmur64, murmur128 or sha256")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "text or json")
	fs.StringVar(&c.SecretsKeyFile, "secrets-key-file", "", "file holding a 32-byte key (64 hex characters, base64 or raw) that seals JWT HMAC and OAuth client secrets at rest with AES-256-GCM; or set KEYLENS_SECRETS_KEY to the key itself")
	fs.StringVar(&c.ReadyFile, "ready-file", "", `once every listener listens, write {"admin":URL,"console":URL,"portal":URL,"sidecar":URL} to this file (replaced atomically, removed at shutdown): a readiness signal for supervisors and tests`)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s [flags]\n\nEvery flag can also be set as KEYLENS_<NAME> (e.g. KEYLENS_STORE); flags win.\n\n", name)
		fs.PrintDefaults()
	}

	var problems []error
	fs.VisitAll(func(f *flag.Flag) {
		name := envName(f.Name)
		if v := getenv(name); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				problems = append(problems, fmt.Errorf("%s: %w", name, err))
			}
		}
	})
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return err
	}
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " ")))
	}
	if c.Portal != "" {
		storeSet := getenv(envName("store")) != ""
		fs.Visit(func(f *flag.Flag) { storeSet = storeSet || f.Name == "store" })
		if storeSet {
			problems = append(problems, errors.New("--portal and --store: give one"))
		}
	}
	problems = append(problems, c.Validate(m.SidecarOnly)...)
	if c.JWTPublicKeyFile != "" {
		if b, err := os.ReadFile(c.JWTPublicKeyFile); err != nil {
			problems = append(problems, fmt.Errorf("--jwt-public-key: %w", err))
		} else if c.jwtPublicKey, err = keylens.ParsePublicKeyPEM(string(b)); err != nil {
			problems = append(problems, fmt.Errorf("--jwt-public-key %s: %s", c.JWTPublicKeyFile, keylens.ErrorMessage(err)))
		}
	}
	key, err := loadSecretsKey(c.SecretsKeyFile, getenv("KEYLENS_SECRETS_KEY"), "--secrets-key-file", "KEYLENS_SECRETS_KEY")
	if err != nil {
		problems = append(problems, err)
	}
	c.secretsKey = key
	if key != nil && c.Portal != "" {
		problems = append(problems, errors.New("--secrets-key-file and KEYLENS_SECRETS_KEY are for --store: a --portal sidecar reads secrets through the portal"))
	}
	return errors.Join(problems...)
}

// loadSecretsKey reads a secrets key from a file or from the environment
// (nil when neither is set); both set is a mistake.
func loadSecretsKey(file, env, fileFlag, envName string) ([]byte, error) {
	switch {
	case file != "" && env != "":
		return nil, fmt.Errorf("%s and %s: give one", fileFlag, envName)
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fileFlag, err)
		}
		s := string(b)
		if len(b) != 32 {
			s = strings.TrimSpace(s)
		}
		key, err := sqlstore.ParseSecretsKey(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fileFlag, err)
		}
		return key, nil
	case env != "":
		key, err := sqlstore.ParseSecretsKey(env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", envName, err)
		}
		return key, nil
	}
	return nil, nil
}

// redactStore hides a PostgreSQL URL's password from the logs.
func redactStore(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && sqlstore.IsPostgres(dsn) {
		return u.Redacted()
	}
	return dsn
}

// envName maps a flag name to its environment variable: admin-key → KEYLENS_ADMIN_KEY.
func envName(flagName string) string {
	return "KEYLENS_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Validate returns every problem with c; sidecarOnly skips the admin API.
func (c *Config) Validate(sidecarOnly bool) []error {
	var problems []error
	switch {
	case c.Portal != "":
		if _, err := rest.NewClient(c.Portal, c.AdminKey); err != nil {
			problems = append(problems, fmt.Errorf("--portal: %w", err))
		}
		if c.AdminKey == "" {
			problems = append(problems, errors.New("--portal needs --admin-key, the portal's admin key"))
		}
	case strings.HasPrefix(c.Store, "sqlite:"):
		if err := sqlstore.ValidateSQLitePath(strings.TrimPrefix(c.Store, "sqlite:")); err != nil {
			problems = append(problems, fmt.Errorf("--store: %w", err))
		}
	case sqlstore.IsPostgres(c.Store):
		if u, err := url.Parse(c.Store); err != nil || u.Host == "" {
			problems = append(problems, errors.New("--store: a PostgreSQL URL needs a host: postgres://user:password@host:5432/db"))
		}
	default:
		problems = append(problems, fmt.Errorf("--store %q: want sqlite:PATH or postgres://URL", c.Store))
	}
	if sidecarOnly && c.Portal == "" && c.AdminKey != "" {
		problems = append(problems, errors.New("--admin-key is only used with --portal"))
	}
	addrs := []struct{ flag, addr string }{{"--sidecar-addr", c.SidecarAddr}}
	if !sidecarOnly {
		addrs = append(addrs, struct{ flag, addr string }{"--admin-addr", c.AdminAddr})
		if c.PortalAddr != "" {
			addrs = append(addrs, struct{ flag, addr string }{"--portal-addr", c.PortalAddr})
		}
	}
	for _, a := range addrs {
		if err := validateAddr(a.addr); err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", a.flag, err))
		}
	}
	if c.CacheSize < 1 {
		problems = append(problems, errors.New("--cache-size must be at least 1"))
	}
	if c.HitsMaxPending < hits.MaxPerRequest || c.MetricsMaxKeys < 1 {
		problems = append(problems, fmt.Errorf("--hits-max-pending must be at least %d (one POST /hits) and --metrics-max-keys at least 1", hits.MaxPerRequest))
	}
	if c.HitsSecret == "" && validateAddr(c.SidecarAddr) == nil && !isLoopback(c.SidecarAddr) {
		problems = append(problems, fmt.Errorf("--sidecar-addr %s is reachable from other hosts, so POST /hits needs a secret: set --hits-secret (or KEYLENS_HITS_SECRET) and give it to the plugin as hits_secret, or listen on 127.0.0.1", c.SidecarAddr))
	}
	if err := keylens.SetBcryptCost(c.BcryptCost); err != nil {
		problems = append(problems, fmt.Errorf("--bcrypt-cost: %s", keylens.ErrorMessage(err)))
	}
	if c.MaxHeaderBytes < 1024 || c.MaxHeaderBytes > 1<<20 {
		problems = append(problems, errors.New("--max-identity-header-bytes must be 1024 to 1048576"))
	}
	if c.BcryptConcurrency < 1 || c.LoginMaxFailures < 0 || c.LoginClientMaxFailures < 0 || c.LoginFailureWindow <= 0 {
		problems = append(problems, errors.New("--bcrypt-concurrency must be at least 1, the --login-*-failures limits 0 or more, --login-failure-window positive"))
	}
	if c.JWTLeeway < 0 || c.JWTLeeway > 10*time.Minute {
		problems = append(problems, errors.New("--jwt-leeway must be 0 to 10m"))
	}
	sources := 0
	for _, set := range []bool{c.JWTJWKSURL != "", c.JWTHMACSecret != "", c.JWTPublicKeyFile != ""} {
		if set {
			sources++
		}
	}
	switch {
	case sources > 1:
		problems = append(problems, errors.New("--jwt-jwks-url, --jwt-hmac-secret and --jwt-public-key: give one"))
	case sources == 0 && (c.JWTIssuer != "" || c.JWTAudience != "" || c.JWTIdentityClaim != "sub"):
		problems = append(problems, errors.New("--jwt-issuer, --jwt-audience and --jwt-identity-claim verify central JWTs: give --jwt-jwks-url, --jwt-hmac-secret or --jwt-public-key"))
	}
	if u, err := url.Parse(c.JWTJWKSURL); c.JWTJWKSURL != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
		problems = append(problems, fmt.Errorf("--jwt-jwks-url %q is not an http:// or https:// URL", c.JWTJWKSURL))
	}
	if c.JWTHMACSecret != "" && len(c.JWTHMACSecret) < keylens.MinHMACSecret {
		problems = append(problems, fmt.Errorf("--jwt-hmac-secret must be at least %d bytes", keylens.MinHMACSecret))
	}
	if c.JWTIdentityClaim == "" || c.JWTJWKSRefresh < time.Second {
		problems = append(problems, errors.New("--jwt-identity-claim must name a claim and --jwt-jwks-refresh be at least 1s"))
	}
	if c.OAuthTokenTTL < time.Second || c.OAuthTokenTTL > 8760*time.Hour {
		problems = append(problems, errors.New("--oauth-token-ttl must be 1s to 8760h"))
	}
	if c.CacheTTL <= 0 || c.NegativeCacheTTL <= 0 || c.AssertionTTL <= 0 {
		problems = append(problems, errors.New("--cache-ttl, --negative-cache-ttl and --assertion-ttl must be positive"))
	}
	if c.KeyHeader == "" || strings.ContainsAny(c.KeyHeader, " :\r\n") {
		problems = append(problems, fmt.Errorf("--key-header %q is not a header name", c.KeyHeader))
	}
	for flagName, h := range map[string]string{"--header-developer-id": c.Headers.DeveloperID, "--header-email": c.Headers.Email,
		"--header-key-id": c.Headers.KeyID, "--header-policies": c.Headers.Policies, "--header-field-prefix": c.Headers.FieldPrefix,
		"--header-key-request-field-prefix": c.Headers.KeyRequestFieldPrefix, "--header-assertion": c.Headers.Assertion,
		"--header-fields-truncated": c.Headers.Truncated} {
		if h != "" && identity.HeaderToken(h) != strings.Trim(h, "-") {
			problems = append(problems, fmt.Errorf("%s %q: header names take letters, digits and '-'", flagName, h))
		}
	}
	if c.OrgID != "" {
		if err := validateOrgID(c.OrgID); err != nil {
			problems = append(problems, fmt.Errorf("--org-id: %w", err))
		}
	}
	if c.AssertionKey != "" && !c.Assertions {
		problems = append(problems, errors.New("--assertion-key is set but --assertions is off"))
	}
	if !sidecarOnly && c.AdminAddr == c.SidecarAddr && !strings.HasSuffix(c.AdminAddr, ":0") {
		problems = append(problems, fmt.Errorf("--admin-addr and --sidecar-addr are both %s", c.AdminAddr))
	}
	if !sidecarOnly && c.PortalAddr != "" && !strings.HasSuffix(c.PortalAddr, ":0") && (c.PortalAddr == c.AdminAddr || c.PortalAddr == c.SidecarAddr) {
		problems = append(problems, fmt.Errorf("--portal-addr %s is the address of another listener", c.PortalAddr))
	}
	if c.PortalURL != "" {
		if u, err := url.Parse(c.PortalURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			problems = append(problems, fmt.Errorf("--portal-url %q: want http(s)://host[:port], without a path (the portal is served at the root)", c.PortalURL))
		}
	}
	if c.SMTPURL != "" {
		if _, err := mailer.NewSMTP(c.SMTPURL, c.MailFrom); err != nil {
			problems = append(problems, err)
		}
		if !sidecarOnly && c.PortalAddr != "" && c.PortalURL == "" && validateAddr(c.PortalAddr) == nil && !isLoopback(c.PortalAddr) {
			problems = append(problems, fmt.Errorf("--portal-addr %s is reachable from other hosts and emails are sent: set --portal-url to the URL developers reach the portal at, which the links in emails start with", c.PortalAddr))
		}
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			problems = append(problems, fmt.Errorf("--public-url %q: want an absolute http or https URL without credentials", c.PublicURL))
		}
	}
	if c.AdminKey != "" && len(c.AdminKey) < minAdminKeyLength {
		problems = append(problems, fmt.Errorf("--admin-key: must be at least %d characters", minAdminKeyLength))
	}
	if strings.ContainsAny(c.AdminKey, " \t\r\n") {
		problems = append(problems, errors.New("--admin-key: must not contain white space"))
	}
	problems = append(problems, c.validateTyk()...)
	if c.TykGateway != "" {
		if _, err := tykgateway.New(c.TykGateway, c.TykSecret); err != nil {
			problems = append(problems, fmt.Errorf("--tyk-gateway/--tyk-secret: %w", err))
		}
	} else if c.TykSecret != "" || c.TykInactivePolicy != "" {
		problems = append(problems, errors.New("--tyk-secret and --tyk-inactive-policy are only used with --tyk-gateway"))
	}
	if !keylens.ValidHashAlgorithm(c.KeyHash) {
		problems = append(problems, fmt.Errorf("--key-hash-algorithm %q: want murmur32, murmur64, murmur128 or sha256", c.KeyHash))
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		problems = append(problems, fmt.Errorf("--log-level: %w", err))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		problems = append(problems, fmt.Errorf("--log-format %q: want text or json", c.LogFormat))
	}
	return problems
}

// validateTyk returns every problem with the Tyk analytics settings.
func (c *Config) validateTyk() []error {
	var problems []error
	if c.TykRedis == "" {
		if c.TykAnalyticsKey != tykanalytics.DefaultAnalyticsKey || c.TykConsumerID != "" {
			problems = append(problems, errors.New("--tyk-analytics-key and --tyk-consumer-id are only used with --tyk-redis"))
		}
		return problems
	}
	if _, err := redis.ParseURL(c.TykRedis); err != nil {
		problems = append(problems, fmt.Errorf("--tyk-redis: want redis://[:password@]host:port/db or rediss://…: %s", redactedError(err, c.TykRedis)))
	}
	if c.TykAnalyticsKey == "" || strings.ContainsAny(c.TykAnalyticsKey, " \t\r\n") {
		problems = append(problems, fmt.Errorf("--tyk-analytics-key %q: a Redis key without white space", c.TykAnalyticsKey))
	}
	if c.TykConsumerID != "" && !tykanalytics.ValidConsumerID(c.TykConsumerID) {
		problems = append(problems, fmt.Errorf("--tyk-consumer-id %q: 1 to 128 letters, digits, '.', '_' or '-'", c.TykConsumerID))
	}
	if c.TykChunkSize < 1 || c.TykChunkSize > tykanalytics.MaxChunkSize {
		problems = append(problems, fmt.Errorf("--tyk-chunk-size %d: want 1 to %d", c.TykChunkSize, tykanalytics.MaxChunkSize))
	}
	if c.TykPollInterval <= 0 || c.TykPollInterval > 10*time.Second {
		problems = append(problems, fmt.Errorf("--tyk-poll-interval %v: want more than 0 and at most 10s", c.TykPollInterval))
	}
	return problems
}

// redactedError keeps a URL's password out of an error about it.
func redactedError(err error, rawURL string) string {
	u, perr := url.Parse(rawURL)
	if perr != nil {
		return "not a URL" // the parser's message quotes it, password and all
	}
	msg := err.Error()
	if u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
	}
	return msg
}

// tykConsumerID is the configured consumer id, or one made of the host
// name and a digest of the store (or portal) and the list, stable across
// restarts of the same deployment.
func (c *Config) tykConsumerID() string {
	if c.TykConsumerID != "" {
		return c.TykConsumerID
	}
	host, _ := os.Hostname()
	where := c.Store
	if c.Portal != "" {
		where = c.Portal
	}
	sum := sha256.Sum256([]byte(where + "\x00" + c.TykAnalyticsKey))
	return tykanalytics.ConsumerIDFrom(host) + "-" + hex.EncodeToString(sum[:4])
}

// validateOrgID accepts any org id a key can embed: Tyk's are 24 hex
// characters, but any non-empty id without '"', '\\' or control characters
// goes into a key's JSON as it is.
func validateOrgID(org string) error {
	if len(org) > 256 {
		return errors.New("at most 256 characters")
	}
	for _, r := range org {
		if r < 0x20 || r == 0x7f || r == '"' || r == '\\' || r == utf8.RuneError {
			return fmt.Errorf("%q: no quotes, backslashes or control characters", org)
		}
	}
	return nil
}

func validateAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port must be 0 to 65535", addr)
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(s))
	return l, err
}

// Run opens the store, settles the admin key and starts both listeners. It
// returns once they listen; a listener that fails later is reported by Wait.
func (m *Main) Run(ctx context.Context) error {
	level, _ := parseLevel(m.Config.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if m.Config.LogFormat == "json" {
		m.logger = slog.New(slog.NewJSONHandler(m.stderr, opts))
	} else {
		m.logger = slog.New(slog.NewTextHandler(m.stderr, opts))
	}

	if m.Config.Portal != "" {
		// Validate has checked the URL.
		m.backend, _ = rest.NewClient(m.Config.Portal, m.Config.AdminKey)
		m.logger.Info("reading from the portal", "portal", m.Config.Portal)
	} else {
		db, err := sqlstore.Open(ctx, m.Config.Store)
		if err != nil {
			return fmt.Errorf("open store: %w", err)
		}
		m.db, m.backend = db, db
		db.KeyHashAlgorithm = m.Config.KeyHash
		db.CentralJWT = m.Config.centralJWT()
		if m.Config.secretsKey != nil {
			if err := db.UseSecretsKey(m.Config.secretsKey); err != nil {
				return err
			}
		}
		if err := db.CheckSecrets(ctx); err != nil {
			return fmt.Errorf("secrets at rest: %w", err)
		}
		// A key set on a store that held secrets in the clear seals them
		// now, so that none stays readable in the file.
		if n, err := db.SealCleartext(ctx); err != nil {
			return fmt.Errorf("secrets at rest: sealing those stored in the clear: %w", err)
		} else if n > 0 {
			m.logger.Info("sealed secrets stored in the clear before the secrets key was set", "secrets", n)
		}
		m.logger.Info("store open", "store", redactStore(m.Config.Store))
	}
	db := m.db

	// The sidecar's background work (following the change feed, pruning)
	// stops with Close, not with the signal context: requests in flight
	// still need it while the listeners drain.
	bg, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	if err := m.startSidecar(bg); err != nil {
		return err
	}
	if err := m.startTyk(ctx); err != nil {
		return err
	}
	if m.SidecarOnly {
		return m.ready()
	}

	keyHash, err := m.adminKeyHash(ctx)
	if err != nil {
		return err
	}
	if err := m.settleOrgID(ctx); err != nil {
		return err
	}
	if err := m.startProvisioning(ctx, bg); err != nil {
		return err
	}
	// One limiter pair for every sign-in: a client guessing at the console
	// and at verify_credentials is counted once.
	signIn := rest.SignInLimits{PerAccount: guard.New(m.Config.LoginMaxFailures, m.Config.LoginFailureWindow),
		PerClient: guard.New(m.Config.LoginClientMaxFailures, m.Config.LoginFailureWindow)}
	api, err := rest.NewServer(rest.Config{
		Developers:   db,
		Catalogue:    db,
		Keys:         db,
		Changes:      db,
		Credentials:  db,
		Hits:         db,
		Tokens:       db,
		TokenAdmin:   db,
		Revoker:      m.revoker,
		HitWriter:    m.committer,
		AdminKeyHash: keyHash,
		Health:       func(r *http.Request) error { return db.Ping(r.Context()) },
		SignInLimits: signIn,
		Logger:       m.logger,
	})
	if err != nil {
		return err
	}
	console, err := web.New(web.Config{
		Developers: db, Catalogue: db, Keys: db, Hits: db, Admins: db, Sessions: db, Audit: db,
		AdminKeyHash: keyHash,
		Secure:       strings.HasPrefix(m.Config.PublicURL, "https://"),
		PublicHost:   publicHost(m.Config.PublicURL),
		Gravatar:     m.Config.ConsoleGravatar,
		PerAccount:   signIn.PerAccount, PerClient: signIn.PerClient,
		Logger: m.logger,
	})
	if err != nil {
		return err
	}
	admin := http.NewServeMux()
	admin.Handle(web.Prefix, console.Handler())
	admin.Handle("/", api.Handler())
	if err := m.listen("admin API", m.Config.AdminAddr, admin, api.Shutdown); err != nil {
		return err
	}
	m.urls["admin"] = "http://" + m.servers[len(m.servers)-1].Addr
	m.urls["console"] = m.urls["admin"] + web.Prefix
	if m.Config.PublicURL != "" {
		m.urls["console"] = strings.TrimSuffix(m.Config.PublicURL, "/") + web.Prefix
	}
	m.logger.Info("admin console", "url", m.urls["console"])
	if err := m.startPortal(db, signIn); err != nil {
		return err
	}
	go m.pruneChanges(bg)
	return m.ready()
}

// ready writes the ready file, when configured: the URL of every listener,
// written to a temporary file and renamed, so that a reader never sees half.
func (m *Main) ready() error {
	if m.Config.ReadyFile == "" {
		return nil
	}
	b, err := json.Marshal(m.urls)
	if err != nil {
		return err
	}
	tmp := m.Config.ReadyFile + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("--ready-file: %w", err)
	}
	if err := os.Rename(tmp, m.Config.ReadyFile); err != nil {
		return fmt.Errorf("--ready-file: %w", err)
	}
	return nil
}

// backend is what the sidecar reads: a store, or a portal's admin API.
type backend interface {
	sidecar.Store
	sidecar.Feed
	keylens.TokenService
	analytics.Store
	Ping(context.Context) error
}

var (
	_ backend = (*sqlstore.DB)(nil)
	_ backend = (*rest.Client)(nil)
)

// startSidecar builds the resolver over the store, follows the change feed
// and serves the sidecar.
func (m *Main) startSidecar(bg context.Context) error {
	c := m.Config
	reg := prometheus.NewRegistry()
	m.registry = reg
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	leeway := c.JWTLeeway
	if leeway == 0 {
		leeway = -1 // none; the resolver's zero is its default
	}
	res := sidecar.NewResolver(m.backend, sidecar.ResolverOptions{
		Size: c.CacheSize, TTL: c.CacheTTL, NegativeTTL: c.NegativeCacheTTL, JWTLeeway: leeway, BcryptConcurrency: c.BcryptConcurrency, MaxHeaderBytes: c.MaxHeaderBytes,
		Headers: c.Headers, Logger: m.logger, Metrics: sidecar.NewMetrics(reg),
	})
	if c.centralJWT() {
		if err := res.UseCentralJWT(sidecar.CentralJWT{JWKSURL: c.JWTJWKSURL, HMACSecret: []byte(c.JWTHMACSecret),
			PublicKey: c.jwtPublicKey, Issuer: c.JWTIssuer, Audience: c.JWTAudience, IdentityClaim: c.JWTIdentityClaim,
			MinRefresh: c.JWTJWKSRefresh}); err != nil {
			return fmt.Errorf("central JWT: %w", err)
		}
		if c.JWTJWKSURL != "" {
			go m.refreshJWKS(bg, res)
		}
	}
	m.committer = analytics.NewCommitter(m.backend, analytics.CommitterOptions{MaxQueuedRows: c.HitsMaxPending,
		Logger: m.logger, Metrics: analytics.NewMetrics(reg, c.MetricsMaxKeys)})
	cfg := sidecar.Config{Resolver: res, KeyHeader: c.KeyHeader, IntrospectSecret: c.IntrospectSecret,
		Gatherer: reg, Logger: m.logger, Hits: m.committer, HitsSecret: c.HitsSecret, Feed: m.backend,
		Tokens: m.backend, TokenTTL: c.OAuthTokenTTL}
	if c.Assertions {
		signer, err := sidecar.LoadSigner(c.AssertionKey, c.AssertionTTL)
		if err != nil {
			return fmt.Errorf("--assertion-key: %w", err)
		}
		cfg.Signer = signer
	}
	cfg.Healthy = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := m.backend.Ping(ctx); err != nil {
			if keylens.ErrorCode(err) == keylens.EFULL {
				return errors.New(keylens.ErrorMessage(err))
			}
			if c.Portal != "" {
				return fmt.Errorf("portal unreachable: %w", err)
			}
			return fmt.Errorf("store unreachable: %w", err)
		}
		if !res.FeedHealthy(35 * time.Second) {
			return errors.New("change feed not followed: revocations may arrive late")
		}
		return nil
	}
	go res.Follow(bg, m.backend)

	srv, err := sidecar.NewServer(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.SidecarAddr)
	if err != nil {
		return fmt.Errorf("sidecar: %w", err)
	}
	m.sidecar = srv.NewFastHTTPServer()
	m.urls["sidecar"] = "http://" + ln.Addr().String()
	m.logger.Info("sidecar listening", "addr", ln.Addr().String(), "url", "http://"+ln.Addr().String(),
		"assertions", c.Assertions, "cache_size", c.CacheSize)
	go func() {
		if err := m.sidecar.Serve(ln); err != nil {
			m.logger.Error("sidecar stopped", "err", err)
			m.serveErrs <- err
		}
	}()
	return nil
}

// startTyk consumes the gateway's analytics records from Redis into the
// committer, when --tyk-redis is set. An unreachable Redis is not fatal:
// the consumer retries, and the metrics say so.
func (m *Main) startTyk(ctx context.Context) error {
	c := m.Config
	if c.TykRedis == "" {
		return nil
	}
	opt, err := redis.ParseURL(c.TykRedis) // validated
	if err != nil {
		return fmt.Errorf("--tyk-redis: %s", redactedError(err, c.TykRedis))
	}
	opt.ClientName = "keylens"
	opt.Protocol = 2           // any Redis a gateway runs on
	opt.DisableIdentity = true // no CLIENT SETINFO, which older servers refuse
	opt.PoolSize = 4           // one consumer, and the length sampler
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	redis.SetLogger(redisLogger{m.logger})
	m.tykRedis = redis.NewClient(opt)
	consumer, err := tykanalytics.New(tykanalytics.Options{
		Redis: m.tykRedis, AnalyticsKey: c.TykAnalyticsKey, ConsumerID: c.tykConsumerID(),
		ChunkSize: c.TykChunkSize, PollInterval: c.TykPollInterval,
		Store: m.committer, Logger: m.logger, Metrics: tykanalytics.NewMetrics(m.registry),
	})
	if err != nil {
		return err
	}
	m.tyk = consumer
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	redacted := c.TykRedis
	if u, err := url.Parse(c.TykRedis); err == nil {
		redacted = u.Redacted()
	}
	if err := m.tykRedis.Ping(pctx).Err(); err != nil {
		m.logger.Warn("the Tyk gateway's Redis does not answer yet; retrying", "redis", redacted, "err", err)
	} else {
		m.logger.Info("Tyk gateway's Redis reached", "redis", redacted)
	}
	consumer.Start()
	return nil
}

// redisLogger sends go-redis's own messages to the log.
type redisLogger struct{ l *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.l.Warn("redis client: " + fmt.Sprintf(format, v...))
}

// centralJWT reports whether JWTs are verified centrally.
func (c *Config) centralJWT() bool {
	return c.JWTJWKSURL != "" || c.JWTHMACSecret != "" || c.JWTPublicKeyFile != ""
}

// refreshJWKS fetches the identity provider's JWKS at start and every
// --jwt-jwks-refresh until ctx ends; a failure keeps the keys in use.
func (m *Main) refreshJWKS(ctx context.Context, res *sidecar.Resolver) {
	t := time.NewTicker(m.Config.JWTJWKSRefresh)
	defer t.Stop()
	for {
		if err := res.RefreshJWKS(ctx); err != nil && ctx.Err() == nil {
			m.logger.Warn("fetching the JWKS failed; the keys fetched before stay in use", "url", m.Config.JWTJWKSURL, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// changeRetention is how long the change feed remembers; a sidecar away for
// longer is told to drop its cache and start afresh.
const changeRetention = 24 * time.Hour

// startProvisioning connects the store to the Tyk gateway, when
// --tyk-gateway is set: approvals create their credential there, and an
// outbox applies later changes. A refused secret is a configuration
// error; an unreachable gateway is not fatal (approvals fail with 502 and
// changes wait until it answers).
func (m *Main) startProvisioning(ctx, bg context.Context) error {
	c := m.Config
	if c.TykGateway == "" {
		return nil
	}
	client, err := tykgateway.New(c.TykGateway, c.TykSecret) // validated
	if err != nil {
		return usageError{err}
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	pols, err := client.Policies(pctx)
	switch status := tykgateway.StatusOf(err); {
	case status == http.StatusForbidden || status == http.StatusUnauthorized:
		return usageError{fmt.Errorf("--tyk-gateway %s refused --tyk-secret (KEYLENS_TYK_SECRET): %w", client.URL(), err)}
	case err != nil:
		m.logger.Warn("the Tyk gateway does not answer yet: approvals fail with 502 and changes wait until it does", "gateway", client.URL(), "err", err)
	default:
		m.logger.Info("Tyk gateway reached: keys are provisioned there", "gateway", client.URL(), "policies", len(pols))
		m.warnMissingPolicies(ctx, pols)
	}
	if c.TykInactivePolicy == "" {
		m.logger.Warn("--tyk-inactive-policy is not set: a deactivated developer's keys get is_inactive, which Tyk ignores for keys with policies (all portal keys): they keep working at the gateway until revoked")
	}
	m.db.Provisioner = &tykgateway.Provisioner{Client: client, InactivePolicy: c.TykInactivePolicy, Logger: m.logger}
	// The gateway issues OAuth tokens to the clients it holds (and the
	// sidecars may issue keylens's own): the seed's revocations go to both.
	m.revoker = tykgateway.Revoker{Local: keylens.LocalRevoker{Store: m.db}, Gateway: client, Clients: m.db}
	m.outbox = &tykgateway.Outbox{Store: m.db, Client: client, InactivePolicy: c.TykInactivePolicy, Logger: m.logger,
		Metrics: tykgateway.NewMetrics(m.registry)}
	if err := m.outbox.Start(ctx); err != nil {
		return fmt.Errorf("tyk gateway outbox: %w", err)
	}
	m.outboxDone = make(chan struct{})
	go func() {
		defer close(m.outboxDone)
		// One outbox per store: two would interleave their writes to
		// the gateway (an older session written after a newer one).
		m.db.Exclusive(bg, sqlstore.LockTykOutbox, m.outbox.Run)
	}()
	return nil
}

// warnMissingPolicies logs catalogue policies the gateway lacks.
func (m *Main) warnMissingPolicies(ctx context.Context, pols []tykgateway.Policy) {
	cat, err := m.db.Catalogue(ctx)
	if err != nil {
		return
	}
	have := map[string]bool{}
	for _, p := range pols {
		have[p.PolicyID()] = true
	}
	for _, e := range cat.APIs {
		if !have[e.PolicyID] {
			m.logger.Warn("a catalogue policy is not in the Tyk gateway: its keys will not work there (keylens tyk sync lists them)", "policy", e.PolicyID)
		}
	}
	if p := m.Config.TykInactivePolicy; p != "" && !have[p] {
		m.logger.Warn("--tyk-inactive-policy is not in the Tyk gateway: deactivating a developer will fail there", "policy", p)
	}
}

// usageError is a configuration the world refuses (a gateway secret):
// exit code 2, as for a bad flag.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// pruneBefore is how far the change feed may be pruned: changeRetention,
// but never past a change the Tyk gateway has not been given yet.
func (m *Main) pruneBefore(ctx context.Context) (time.Time, error) {
	before := time.Now().Add(-changeRetention)
	if m.outbox == nil {
		return before, nil
	}
	pending, _, err := m.db.ChangesSince(ctx, m.outbox.Position(), 1)
	if err != nil {
		return before, err
	}
	if len(pending) > 0 && pending[0].Time.Before(before) {
		before = pending[0].Time
	}
	return before, nil
}

// pruneChanges trims the change feed, applied hit batches and expired
// OAuth tokens hourly until ctx ends.
func (m *Main) pruneChanges(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		before, err := m.pruneBefore(ctx)
		if err != nil && ctx.Err() == nil {
			m.logger.Warn("pruning the change feed failed", "err", err)
		} else if n, err := m.db.PruneChanges(ctx, before); err != nil && ctx.Err() == nil {
			m.logger.Warn("pruning the change feed failed", "err", err)
		} else if n > 0 {
			m.logger.Debug("pruned the change feed", "removed", n)
		}
		if err := m.db.PruneHitBatches(ctx, time.Now().Add(-changeRetention)); err != nil && ctx.Err() == nil {
			m.logger.Warn("pruning applied hit batches failed", "err", err)
		}
		if n, err := m.db.PruneTokens(ctx, time.Now()); err != nil && ctx.Err() == nil {
			m.logger.Warn("pruning expired OAuth tokens failed", "err", err)
		} else if n > 0 {
			m.logger.Debug("pruned expired OAuth tokens", "removed", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// adminKeyHash settles which admin key is in effect: the configured one, or
// the one whose hash the store holds, or a new one, generated, stored as a
// hash and printed this once.
func (m *Main) adminKeyHash(ctx context.Context) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	if m.Config.AdminKey != "" {
		return sha256.Sum256([]byte(m.Config.AdminKey)), nil
	}
	var raw [24]byte
	_, _ = rand.Read(raw[:])
	key := hex.EncodeToString(raw[:])
	newHash := sha256.Sum256([]byte(key))
	stored, err := m.db.InitSetting(ctx, keylens.SettingAdminKeyHash, hex.EncodeToString(newHash[:]))
	if err != nil {
		return sum, fmt.Errorf("admin key: %w", err)
	}
	if stored == hex.EncodeToString(newHash[:]) {
		fmt.Fprintf(m.stdout, "\nkeylens generated an admin key. It is shown only this once; the store keeps only its hash.\n\n"+
			"    export KEYLENS_ADMIN_KEY=%s\n\nSend it as the Authorization header of portal API calls, and sign in to the admin console with it.\n\n", key)
	} else {
		m.logger.Info("using the admin key whose hash is in the store (set --admin-key or KEYLENS_ADMIN_KEY to use another)")
	}
	b, err := hex.DecodeString(stored)
	if err != nil || len(b) != sha256.Size {
		return sum, fmt.Errorf("admin key hash in the store is corrupt")
	}
	copy(sum[:], b)
	return sum, nil
}

// settleOrgID makes --org-id the portal's org: developers created from now
// on belong to it, and the keys keylens generates for them embed it.
// Developers already stored keep theirs.
func (m *Main) settleOrgID(ctx context.Context) error {
	org := m.Config.OrgID
	if org == "" {
		return nil
	}
	prev, err := m.db.Setting(ctx, keylens.SettingOrgID)
	if err != nil && keylens.ErrorCode(err) != keylens.ENOTFOUND {
		return fmt.Errorf("org id: %w", err)
	}
	if prev == org {
		return nil
	}
	if err := m.db.PutSetting(ctx, keylens.SettingOrgID, org); err != nil {
		return fmt.Errorf("org id: %w", err)
	}
	if prev != "" {
		m.logger.Warn("the portal's org changes: developers created from now on, and their keys, carry the new org; developers already stored keep theirs",
			"from", prev, "to", org)
	} else {
		m.logger.Info("the portal's org", "org_id", org)
	}
	return nil
}

// startPortal serves the developer portal on its own listener, unless
// --portal-addr is empty. Its sessions live in the store with the
// console's, and its sign-ins count in the same limiters.
func (m *Main) startPortal(db *sqlstore.DB, signIn rest.SignInLimits) error {
	if m.Config.PortalAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", m.Config.PortalAddr)
	if err != nil {
		return fmt.Errorf("developer portal: %w", err)
	}
	portalURL := strings.TrimSuffix(m.Config.PortalURL, "/")
	if portalURL == "" {
		portalURL = "http://" + ln.Addr().String()
	}
	send, err := mailer.New(m.Config.SMTPURL, m.Config.MailFrom, m.logger)
	if err != nil {
		ln.Close()
		return err
	}
	if m.Config.SMTPURL == "" {
		m.logger.Warn("no --smtp-url: the developer portal's emails (password reset links) are written to this log, not sent")
	}
	if m.Config.secretsKey == nil {
		m.logger.Warn("no --secrets-key-file: credentials approved for portal requests wait in the store in the clear until their developer's next visit shows them")
	}
	revoker := m.revoker
	if revoker == nil {
		revoker = keylens.LocalRevoker{Store: db}
	}
	m.portal, err = web.NewPortal(web.PortalSetup{
		Developers: db, Catalogue: db, Keys: db, Hits: db, Sessions: db, Accounts: db,
		Mailer: send, URL: portalURL, Revoker: revoker, CentralJWT: m.Config.centralJWT(),
		PerAccount: signIn.PerAccount, PerClient: signIn.PerClient,
		Logger: m.logger,
	})
	if err != nil {
		ln.Close()
		return err
	}
	m.serve("developer portal", ln, m.portal.Handler(), nil)
	m.urls["portal"] = portalURL
	return nil
}

// listen binds addr now, so a taken port fails start-up, and serves h;
// onShutdown, when set, runs as shutdown begins.
func (m *Main) listen(name, addr string, h http.Handler, onShutdown func()) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	m.serve(name, ln, h, onShutdown)
	return nil
}

// serve serves h on ln until Close.
func (m *Main) serve(name string, ln net.Listener, h http.Handler, onShutdown func()) {
	srv := &http.Server{
		Addr:              ln.Addr().String(),
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(m.logger.Handler(), slog.LevelWarn),
	}
	if onShutdown != nil {
		srv.RegisterOnShutdown(onShutdown)
	}
	m.servers = append(m.servers, srv)
	m.logger.Info(name+" listening", "addr", ln.Addr().String(), "url", "http://"+ln.Addr().String())
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.logger.Error(name+" stopped", "err", err)
			m.serveErrs <- err
		}
	}()
}

// Wait blocks until ctx ends (a signal) or a listener fails.
func (m *Main) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		m.logger.Info("shutting down")
		return nil
	case err := <-m.serveErrs:
		return err
	}
}

// Shutdown budgets. Hits have their own, so that a slow admin client
// cannot use up the time acknowledged hits need to be committed.
const (
	adminShutdownBudget = 10 * time.Second
	hitsShutdownBudget  = 30 * time.Second
)

// Close shuts down in the order that loses no acknowledged hit: the Tyk
// analytics consumer stops taking chunks and finishes the one in hand; new
// hits are refused (503, the writer keeps them) while the batches taken are
// committed and their requests answered; meanwhile the admin API finishes
// its requests in flight, on a budget of its own. Then the store closes.
// An admin client still sending after its budget is cut off and logged:
// that is not a failed shutdown.
func (m *Main) Close() error {
	if m.Config.ReadyFile != "" {
		_ = os.Remove(m.Config.ReadyFile) // no longer ready
	}
	var wg sync.WaitGroup
	var hitErrs []error
	wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), hitsShutdownBudget)
		defer cancel()
		if m.tyk != nil {
			// Takes no more chunks; the one in hand is committed and
			// deleted, or left whole for the next start.
			if err := m.tyk.Close(ctx); err != nil {
				m.logger.Warn("Tyk analytics", "err", err)
			}
		}
		if m.tykRedis != nil {
			_ = m.tykRedis.Close()
		}
		if m.committer != nil {
			// Refuses new batches at once; returns when the queue is
			// committed.
			if err := m.committer.Close(ctx); err != nil {
				hitErrs = append(hitErrs, err)
			}
		}
		if m.sidecar != nil {
			if err := m.sidecar.ShutdownWithContext(ctx); err != nil {
				hitErrs = append(hitErrs, fmt.Errorf("sidecar: %w", err))
			}
		}
	})
	for _, srv := range m.servers {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), adminShutdownBudget)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				m.logger.Warn("admin requests still running at shutdown were cut off", "err", err)
				srv.Close()
			}
		})
	}
	wg.Wait()
	if m.portal != nil {
		m.portal.Wait() // emails being sent (each on a deadline of its own)
	}
	errs := hitErrs
	if m.cancel != nil {
		m.cancel()
	}
	if m.outboxDone != nil {
		<-m.outboxDone // it uses the store
	}
	if m.db != nil {
		errs = append(errs, m.db.Close())
	}
	if m.logger != nil {
		if err := errors.Join(errs...); err != nil {
			m.logger.Error("shutdown", "err", err)
		}
		m.logger.Info("stopped")
	}
	return errors.Join(errs...)
}

// publicHost is the host[:port] of --public-url ("" when unset).
func publicHost(publicURL string) string {
	if u, err := url.Parse(publicURL); err == nil {
		return u.Host
	}
	return ""
}

// isLoopback reports whether a listen address (host:port, validated) is
// reachable from this host only.
func isLoopback(addr string) bool {
	host, _, _ := net.SplitHostPort(addr)
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func indent(err error) string {
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		lines[i] = "  - " + l
	}
	return strings.Join(lines, "\n")
}
