package sidecar

// SetPasswordCheck replaces the resolver's bcrypt comparison, so that a
// test can hold a password-check slot.
func SetPasswordCheck(r *Resolver, check func(hash, password string) bool) { r.checkPassword = check }
