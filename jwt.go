package keylens

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
)

// ParseJWTMaterial sorts a jwt key request's verification material into an
// HMAC secret or a PEM public key (a PEM certificate yields its public
// key). Some material is required: EINVALID when there is none, for a weak
// HMAC secret, and for PEM that does not parse or holds an unsupported key.
// ParseJWTMaterialOrCentral adds the rule for requests, which may bring
// none when JWTs are verified centrally.
func ParseJWTMaterial(secret, certificate string) (hmacSecret, publicKeyPEM string, err error) {
	material := strings.TrimSpace(secret)
	if material == "" {
		material = strings.TrimSpace(certificate)
	}
	if material == "" {
		return "", "", Errorf(EINVALID, "A jwt key request needs jwt_secret (an HMAC secret or a PEM public key) or certificate")
	}
	if !strings.HasPrefix(material, "-----BEGIN") {
		// HS256 wants a key as long as its hash (RFC 7518 §3.2).
		if len(material) < MinHMACSecret {
			return "", "", Errorf(EINVALID, "An HMAC jwt_secret must be at least %d bytes", MinHMACSecret)
		}
		if strings.Count(material, material[:1]) == len(material) {
			return "", "", Errorf(EINVALID, "An HMAC jwt_secret must not be one byte repeated")
		}
		return material, "", nil
	}
	pub, err := ParsePublicKeyPEM(material)
	if err != nil {
		return "", "", err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", "", Errorf(EINVALID, "Unsupported public key")
	}
	return "", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// SealedPrefix starts every secret the store seals at rest. A client's
// secret may not start with it: it would pass for a sealed one.
const SealedPrefix = "keylens-sealed:v1:"

// LooksSealed reports whether s has the shape of a sealed secret.
func LooksSealed(s string) bool { return strings.HasPrefix(strings.TrimSpace(s), SealedPrefix) }

// MinHMACSecret is the shortest HMAC secret a JWT key accepts.
const MinHMACSecret = 32

// ParsePublicKeyPEM reads an RSA, ECDSA or Ed25519 public key from a PEM
// "PUBLIC KEY", "RSA PUBLIC KEY" or "CERTIFICATE" block.
func ParsePublicKeyPEM(s string) (any, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, Errorf(EINVALID, "The PEM in jwt_secret or certificate does not parse")
	}
	var pub any
	var err error
	switch block.Type {
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	}
	if err != nil {
		return nil, Errorf(EINVALID, "The PEM in jwt_secret or certificate does not parse")
	}
	switch pub.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		return pub, nil
	}
	return nil, Errorf(EINVALID, "Only RSA, ECDSA and Ed25519 public keys are supported")
}
