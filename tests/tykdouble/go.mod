// A test double of the few Tyk gateway packages the keylens plugin uses,
// with their real import paths and signatures and the semantics Tyk
// documents. Only the plugin's tests use it, through go.work in this
// directory; the plugin's go.mod never names it. It holds no Tyk source.
module github.com/TykTechnologies/tyk

go 1.22

require github.com/TykTechnologies/murmur3 v0.0.0-20230310161213-aad17efd5632
