module github.com/keylens/keylens/plugin

go 1.22

require github.com/keylens/keylens/identity v0.0.0-00010101000000-000000000000

require github.com/golang-jwt/jwt/v5 v5.2.2 // indirect

// identity is built from this repository; the Dockerfile's plugin stage
// copies it next to the plugin source.
replace github.com/keylens/keylens/identity => ../identity
