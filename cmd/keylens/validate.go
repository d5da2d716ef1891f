package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/identity"
	"github.com/keylens/keylens/identity/hits"
	"github.com/keylens/keylens/mailer"
	"github.com/keylens/keylens/rest"
	"github.com/keylens/keylens/sqlstore"
	"github.com/keylens/keylens/tykanalytics"
	"github.com/keylens/keylens/tykgateway"
)

// Validate returns every problem with c, of every area at once;
// sidecarOnly skips the admin API's areas. Each area reports all of its
// own problems: none stops at the first.
func (c *Config) Validate(sidecarOnly bool) []error {
	var problems []error
	for _, area := range []func(sidecarOnly bool) []error{
		c.validateStore,     // --store or --portal
		c.validateListeners, // the listeners' addresses, and who may reach /hits
		c.validateHits,      // hit analytics and /metrics
		c.validateSignIn,    // passwords and sign-in limits
		c.validateSidecar,   // the sidecar's caches, headers and tokens
		c.validateJWT,       // central JWT verification
		c.validateAdmin,     // the admin API and console: org, public URL, admin key
		c.validatePortal,    // the developer portal: its URL, emails
		c.validateTykAnalytics,
		c.validateTykGateway,
		c.validateLogging, // and the key hash algorithm
	} {
		problems = append(problems, area(sidecarOnly)...)
	}
	return problems
}

// validateStore: where keys are read from, a store or a portal.
func (c *Config) validateStore(sidecarOnly bool) []error {
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
	return problems
}

// validateListeners: every listener's address, no two the same, and a
// secret for POST /hits on a sidecar reachable from other hosts.
func (c *Config) validateListeners(sidecarOnly bool) []error {
	var problems []error
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
	if c.HitsAndChangesSecret == "" && validateAddr(c.SidecarAddr) == nil && !isLoopback(c.SidecarAddr) {
		problems = append(problems, fmt.Errorf("--sidecar-addr %s is reachable from other hosts, so POST /hits needs a secret: set --hits-secret (or KEYLENS_HITS_SECRET) and give it to the plugin as hits_secret, or listen on 127.0.0.1", c.SidecarAddr))
	}
	if !sidecarOnly && c.AdminAddr == c.SidecarAddr && !strings.HasSuffix(c.AdminAddr, ":0") {
		problems = append(problems, fmt.Errorf("--admin-addr and --sidecar-addr are both %s", c.AdminAddr))
	}
	if !sidecarOnly && c.PortalAddr != "" && !strings.HasSuffix(c.PortalAddr, ":0") && (c.PortalAddr == c.AdminAddr || c.PortalAddr == c.SidecarAddr) {
		problems = append(problems, fmt.Errorf("--portal-addr %s is the address of another listener", c.PortalAddr))
	}
	return problems
}

// validateHits: room for the hits received and not yet committed, for
// those committed and not yet folded, and for the keys with series of
// their own on /metrics.
func (c *Config) validateHits(bool) []error {
	if c.HitsMaxPending < hits.MaxPerRequest || c.HitsMaxUnfolded < hits.MaxPerRequest || c.MetricsMaxKeys < 1 {
		return []error{fmt.Errorf("--hits-max-pending and --hits-max-unfolded must be at least %d (one POST /hits) and --metrics-max-keys at least 1", hits.MaxPerRequest)}
	}
	return nil
}

// validateSignIn: password hashing and the sign-in failure limits.
// Note: a valid --bcrypt-cost is put in effect here (keylens.SetBcryptCost).
func (c *Config) validateSignIn(bool) []error {
	var problems []error
	if err := keylens.SetBcryptCost(c.BcryptCost); err != nil {
		problems = append(problems, fmt.Errorf("--bcrypt-cost: %s", keylens.ErrorMessage(err)))
	}
	if c.BcryptConcurrency < 1 || c.LoginMaxFailures < 0 || c.LoginClientMaxFailures < 0 || c.LoginAccountMaxFailures < 0 ||
		c.BasicMaxFailures < 0 || c.LoginFailureWindow <= 0 || c.BasicFailureWindow <= 0 {
		problems = append(problems, errors.New("--bcrypt-concurrency must be at least 1, the --login-*-failures and --basic-max-failures limits 0 or more, --login-failure-window and --basic-failure-window positive"))
	}
	return problems
}

// validateSidecar: the sidecar's cache, the headers it reads and writes,
// its assertions and OAuth tokens.
func (c *Config) validateSidecar(bool) []error {
	var problems []error
	if c.CacheSize < 1 {
		problems = append(problems, errors.New("--cache-size must be at least 1"))
	}
	if c.MaxHeaderBytes < 1024 || c.MaxHeaderBytes > 1<<20 {
		problems = append(problems, errors.New("--max-identity-header-bytes must be 1024 to 1048576"))
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
	if c.AssertionKey != "" && !c.Assertions {
		problems = append(problems, errors.New("--assertion-key is set but --assertions is off"))
	}
	return problems
}

// validateJWT: JWT leeway, and central verification: one source of keys,
// and the claims a token must carry.
func (c *Config) validateJWT(bool) []error {
	var problems []error
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
	return problems
}

// validateAdmin: the portal's org, the console's public URL and the admin
// key (also a --portal sidecar's).
func (c *Config) validateAdmin(bool) []error {
	var problems []error
	if c.OrgID != "" {
		if err := validateOrgID(c.OrgID); err != nil {
			problems = append(problems, fmt.Errorf("--org-id: %w", err))
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
	if c.MaxRotationGrace < 0 || c.MaxRotationGrace > maxRotationGrace {
		problems = append(problems, fmt.Errorf("--max-rotation-grace %s: want 0s (a rotated key stops at once) to %s", c.MaxRotationGrace, maxRotationGrace))
	}
	return problems
}

// maxRotationGrace bounds --max-rotation-grace: a year.
const maxRotationGrace = 8760 * time.Hour

// validatePortal: the developer portal's URL and its emails.
func (c *Config) validatePortal(sidecarOnly bool) []error {
	var problems []error
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
	return problems
}

// validateTykGateway: provisioning keys in the Tyk gateway.
func (c *Config) validateTykGateway(bool) []error {
	if c.TykGateway != "" {
		if _, err := tykgateway.New(c.TykGateway, c.TykSecret); err != nil {
			return []error{fmt.Errorf("--tyk-gateway/--tyk-secret: %w", err)}
		}
	} else if c.TykSecret != "" || c.TykInactivePolicy != "" {
		return []error{errors.New("--tyk-secret and --tyk-inactive-policy are only used with --tyk-gateway")}
	}
	return nil
}

// validateLogging: the log's level and format, and the hash algorithm
// generated keys name.
func (c *Config) validateLogging(bool) []error {
	var problems []error
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

// validateTykAnalytics returns every problem with the Tyk analytics
// settings (consuming the gateway's records from Redis).
func (c *Config) validateTykAnalytics(bool) []error {
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
