// Package web is keylens's admin console: the Tyk Classic Portal's admin
// screens for developers, their keys and usage, key requests, the catalogue
// and configuration, admins and the audit trail, served under /admin/ on the
// admin listener.
//
// Pages are html/template, embedded, with one stylesheet and a small script
// for conveniences (copy buttons); every action is a plain form POST that
// works without JavaScript. Handlers are thin: they read a form, call the
// same keylens domain services the REST API calls, and render. Sessions are
// server-side (session.go), every form carries a CSRF token tied to its
// session, and every response carries a strict Content-Security-Policy.
package web
