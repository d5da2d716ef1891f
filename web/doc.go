// Package web is keylens's two server-rendered apps over one site kit.
//
// The kit, site_*.go, is what both apps share and neither owns: the site
// type and SiteConfig (site.go), the layout, rendering, security headers
// (a strict Content-Security-Policy on every response) and error pages
// (site_render.go), server-side sessions and per-session CSRF tokens
// (site_session.go), sign-in forms and failure limits (site_signin.go), the
// show-once store for issued credentials, key rows, the usage chart and the
// template functions.
//
// The admin console, console_*.go, serves the Tyk Classic Portal's admin
// screens under /admin/ on the admin listener: NewConsole(ConsoleConfig),
// then Handler. The developer portal, portal_*.go, serves developers'
// self-service at the root of its own listener: NewPortal(PortalConfig),
// then Handler. Each config embeds the SiteConfig both take and adds the
// app's own services; each app fills in a site (prefix, menu, cookies,
// whose sessions count) and registers its routes on it.
//
// Pages are html/template, embedded, with one stylesheet and a small script
// for conveniences (copy buttons); every action is a plain form POST that
// works without JavaScript. Handlers are thin: they read a form, call the
// same keylens domain services the REST API calls, and render.
package web
