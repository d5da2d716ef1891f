package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/keylens/keylens"
)

const settingPortalConfig = "portal_config"

// Catalogue returns the stored catalogue, or an empty one for the portal's
// org when none was stored.
func (db *DB) Catalogue(ctx context.Context) (*keylens.Catalogue, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	return loadCatalogue(ctx, tx)
}

func loadCatalogue(ctx context.Context, tx *Tx) (*keylens.Catalogue, error) {
	var c keylens.Catalogue
	var apis string
	err := tx.QueryRowContext(ctx, `SELECT id, org_id, apis FROM catalogue LIMIT 1`).Scan(&c.ID, &c.OrgID, &apis)
	if errors.Is(err, sql.ErrNoRows) {
		var org string
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE((SELECT value FROM settings WHERE name = ?), '')`, keylens.SettingOrgID).Scan(&org); err != nil {
			return nil, err
		}
		return &keylens.Catalogue{OrgID: org, APIs: []keylens.CatalogueEntry{}}, nil
	} else if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(apis), &c.APIs); err != nil {
		return nil, err
	}
	c.Normalize()
	return &c, nil
}

// PutCatalogue replaces the catalogue, keeping its id (one is assigned the
// first time) and filling org_id with the portal's org when empty.
func (db *DB) PutCatalogue(ctx context.Context, c *keylens.Catalogue) error {
	c.Normalize()
	if err := c.Validate(); err != nil {
		return err
	}
	return db.write(ctx, func(tx *Tx) error {
		cur, err := loadCatalogue(ctx, tx)
		if err != nil {
			return err
		}
		if cur.ID != "" {
			c.ID = cur.ID
		} else if c.ID == "" {
			c.ID = keylens.NewObjectID(tx.now)
		}
		if c.OrgID == "" {
			if c.OrgID, err = orgID(ctx, tx); err != nil {
				return err
			}
		}
		apis, err := json.Marshal(c.APIs)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM catalogue`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO catalogue (id, org_id, apis) VALUES (?, ?, ?)`, c.ID, c.OrgID, string(apis)); err != nil {
			return err
		}
		if err := recordAudit(ctx, tx, keylens.AuditCatalogueUpdated, keylens.ObjectCatalogue, c.ID, "", keylens.CatalogueChanges(cur, c)); err != nil {
			return err
		}
		return nil
	})
}

// PortalConfig returns the stored configuration, or the defaults.
func (db *DB) PortalConfig(ctx context.Context) (*keylens.PortalConfig, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	return loadPortalConfig(ctx, tx)
}

func loadPortalConfig(ctx context.Context, tx *Tx) (*keylens.PortalConfig, error) {
	var raw string
	err := tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, settingPortalConfig).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		var org string
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE((SELECT value FROM settings WHERE name = ?), '')`, keylens.SettingOrgID).Scan(&org); err != nil {
			return nil, err
		}
		return &keylens.PortalConfig{OrgID: org}, nil
	} else if err != nil {
		return nil, err
	}
	var p keylens.PortalConfig
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// PutPortalConfig replaces the configuration.
func (db *DB) PutPortalConfig(ctx context.Context, p *keylens.PortalConfig) error {
	return db.write(ctx, func(tx *Tx) error {
		cur, err := loadPortalConfig(ctx, tx)
		if err != nil {
			return err
		}
		// The id is the store's: whatever a client sends is replaced.
		p.ID = cur.ID
		if p.ID == "" {
			p.ID = keylens.NewObjectID(tx.now)
		}
		if p.OrgID == "" {
			if p.OrgID, err = orgID(ctx, tx); err != nil {
				return err
			}
		}
		b, err := json.Marshal(p)
		if err != nil {
			return err
		}
		if len(b) > 256<<10 {
			return keylens.Errorf(keylens.EINVALID, "The portal configuration is limited to 256 KiB")
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
			settingPortalConfig, string(b)); err != nil {
			return err
		}
		if err := recordAudit(ctx, tx, keylens.AuditConfigUpdated, keylens.ObjectConfiguration, p.ID, "", keylens.ConfigChanges(cur, p)); err != nil {
			return err
		}
		return nil
	})
}
