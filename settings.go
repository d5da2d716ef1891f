package keylens

import "context"

// Names of portal settings kept in the store.
const (
	SettingAdminKeyHash = "admin_key_sha256" // hex SHA-256 of the admin key; the key itself is never stored
	SettingOrgID        = "org_id"           // the portal's org id, written into developers and keys
)

// SettingsService keeps the portal's own small settings.
type SettingsService interface {
	// Setting returns the value of name; ENOTFOUND if it was never set.
	Setting(ctx context.Context, name string) (string, error)
	// InitSetting sets name to value unless it is set already, and returns
	// the value in effect. Safe when several processes race to initialise.
	InitSetting(ctx context.Context, name, value string) (string, error)
	// PutSetting sets name to value.
	PutSetting(ctx context.Context, name, value string) error
}
