// A test double of the few Tyk gateway packages the keylens plugin uses,
// with their real import paths and signatures and the semantics Tyk
// documents. Only the plugin's tests use it, through go.work in this
// directory; the plugin's go.mod never names it. It holds no Tyk source.
module github.com/TykTechnologies/tyk

go 1.22

require (
	github.com/TykTechnologies/murmur3 v0.0.0-20230310161213-aad17efd5632
	// As the oldest supported release line (v5.8 LTS) links it, through
	// its dependencies; gateway/load_test.go pins each line's version.
	github.com/golang-jwt/jwt/v5 v5.2.2
)
