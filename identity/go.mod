// identity is its own module so that the Tyk plugin can depend on it alone:
// a plugin shares its dependencies with the gateway, so it must bring as
// few as possible (the standard library and golang-jwt).
module github.com/keylens/keylens/identity

go 1.22

require github.com/golang-jwt/jwt/v5 v5.2.2
