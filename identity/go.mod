// identity is what keylens shares with gateways: the identity and header
// contract, the sidecar client and change feed, the credential cache, the
// request clock and the hit wire format (packages identity, identity/cache,
// identity/clock and identity/hits), which the keylens sidecar and the Tyk
// plugin are both built on. It is its own module so that the Tyk plugin can
// depend on it alone: a plugin shares its dependencies with the gateway, so
// it must bring as few as possible (the standard library and golang-jwt).
module github.com/keylens/keylens/identity

go 1.22

require github.com/golang-jwt/jwt/v5 v5.2.2
