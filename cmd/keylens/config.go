package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/analytics"
	"github.com/keylens/keylens/identity"
	"github.com/keylens/keylens/sidecar"
	"github.com/keylens/keylens/sqlstore"
	"github.com/keylens/keylens/tykanalytics"
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
	BcryptCost              int
	BcryptConcurrency       int
	LoginMaxFailures        int
	LoginClientMaxFailures  int
	LoginAccountMaxFailures int
	BasicMaxFailures        int
	BasicFailureWindow      time.Duration
	LoginFailureWindow      time.Duration

	// Analytics.
	HitsAndChangesSecret string
	HitsMaxPending       int
	HitsMaxUnfolded      int64
	MetricsMaxKeys       int

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

	// MaxRotationGrace bounds the grace period of a rotated key.
	MaxRotationGrace time.Duration
}

// minAdminKeyLength keeps a guessable admin key from being configured.
const minAdminKeyLength = 16

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
		fs.DurationVar(&c.MaxRotationGrace, "max-rotation-grace", keylens.DefaultMaxRotationGrace, "the longest grace period a rotated key may keep working for beside its replacement (0s, rotated keys stop at once, to 8760h)")
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
	fs.DurationVar(&c.OAuthTokenTTL, "oauth-token-ttl", keylens.DefaultTokenTTL, "lifetime of an OAuth access token from the sidecar's POST /oauth/token (0s, rotated keys stop at once, to 8760h)")
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
	fs.IntVar(&c.BcryptConcurrency, "bcrypt-concurrency", max(1, runtime.GOMAXPROCS(0)/2), "Basic password checks the sidecar runs at once; more wait their turn briefly (the first checks of known usernames first) or answer 429 with Retry-After, so that guessing cannot starve valid keys of CPU")
	fs.IntVar(&c.BasicMaxFailures, "basic-max-failures", 10, "wrong passwords of one Basic username at the sidecar within --basic-failure-window before it is refused with 429, no password checked, until the window ends (0: no limit)")
	fs.DurationVar(&c.BasicFailureWindow, "basic-failure-window", time.Minute, "the window of --basic-max-failures, from a username's first failure")
	fs.IntVar(&c.LoginMaxFailures, "login-max-failures", 10, "failed sign-ins (verify_credentials, console, portal) of one account from one client address within --login-failure-window before that client is refused for that account with 429 (0: no limit)")
	fs.IntVar(&c.LoginClientMaxFailures, "login-client-max-failures", 50, "failed sign-ins from one client address, any accounts, within --login-failure-window before it is refused with 429 (0: no limit)")
	fs.IntVar(&c.LoginAccountMaxFailures, "login-account-max-failures", 100, "failed sign-ins of one account within --login-failure-window before the clients that failed on it are refused with 429; from the 10th, they wait between attempts (1 s, doubling, at most a minute); clients without failures on it are not refused (0: no limit)")
	fs.DurationVar(&c.LoginFailureWindow, "login-failure-window", 15*time.Minute, "the window of the sign-in failure limits")
	fs.StringVar(&c.HitsAndChangesSecret, "hits-secret", "", "secret guarding both POST /hits and GET /changes (the Tyk plugin's hits_secret): when set, callers of either must send Authorization: Bearer <secret>; required when --sidecar-addr is not a loopback address")
	fs.IntVar(&c.HitsMaxPending, "hits-max-pending", analytics.DefaultMaxQueuedRows, "series (key, API, hour, status) received and not yet committed; POST /hits answers 503 with Retry-After beyond it")
	fs.Int64Var(&c.HitsMaxUnfolded, "hits-max-unfolded", analytics.DefaultMaxBacklog, "series committed to the hit log and not yet folded into the counters; POST /hits answers 503 with Retry-After beyond it (a flood runs this far ahead; a query of a key in every log row reads all of it)")
	fs.IntVar(&c.MetricsMaxKeys, "metrics-max-keys", analytics.DefaultMaxKeys, "keys with their own hit and error series on /metrics; the least recently hit go first")
	fs.StringVar(&c.TykRedis, "tyk-redis", "", "consume the Tyk gateway's analytics records from this Redis: redis://[:password@]host:port/db (rediss:// for TLS)")
	fs.StringVar(&c.TykAnalyticsKey, "tyk-analytics-key", tykanalytics.DefaultAnalyticsKey, "with --tyk-redis: the gateway's analytics list; its _0 ... _9 variants are consumed too")
	fs.StringVar(&c.TykConsumerID, "tyk-consumer-id", "", "with --tyk-redis: this process's name among the consumers of the lists (its processing list); default: the host name and a digest of the store and list")
	fs.IntVar(&c.TykChunkSize, "tyk-chunk-size", tykanalytics.DefaultChunkSize, "with --tyk-redis: records taken and committed at once (1 to 5000)")
	fs.DurationVar(&c.TykPollInterval, "tyk-poll-interval", tykanalytics.DefaultPollInterval, "with --tyk-redis: how long to wait when every list is empty (at most 10s: the gateway expires unread records after 60 s)")
	if !m.SidecarOnly {
		fs.StringVar(&c.TykGateway, "tyk-gateway", "", "provision keys in the Tyk gateway at this URL (its /tyk/ REST API): approvals create the credential there first, and later changes follow")
		fs.StringVar(&c.TykSecret, "tyk-secret", "", "with --tyk-gateway: the gateway's secret (X-Tyk-Authorization); better set as KEYLENS_TYK_SECRET")
		fs.StringVar(&c.TykInactivePolicy, "tyk-inactive-policy", "", "with --tyk-gateway: a gateway policy with is_inactive: true that replaces a deactivated developer's policies (Tyk ignores a key's own is_inactive when it has policies); default: keylens-inactive, which keylens creates (name one when the gateway's policies come from a Dashboard)")
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
		// The flags stop at the first bad one; the environment's problems
		// found before are reported with it.
		return errors.Join(append(problems, err)...)
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

// centralJWT reports whether JWTs are verified centrally.
func (c *Config) centralJWT() bool {
	return c.JWTJWKSURL != "" || c.JWTHMACSecret != "" || c.JWTPublicKeyFile != ""
}
