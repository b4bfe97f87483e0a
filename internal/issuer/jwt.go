/*
Copyright 2026 The tokenmint Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package issuer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
)

// Defaults and bounds of signed JWTs.
const (
	// DefaultJWTLifetime is exp minus the moment of signing when lifetime is unset.
	DefaultJWTLifetime = 5 * time.Minute
	// MaxJWTLifetime is the longest lifetime tokenmint signs.
	MaxJWTLifetime = time.Hour
	// maxJWTBackdate is the most iat may be set in the past.
	maxJWTBackdate = 5 * time.Minute
	// maxRSABits bounds the RSA keys tokenmint signs with. Signing is CPU every
	// tenant shares: a 4096-bit signature (key parsing included) costs about
	// 6.4 ms on one core here, six times a 2048-bit one, and RSA signing grows
	// with the cube of the size (BenchmarkSignJWT). GitHub, Google, Entra ID and
	// Okta keys are 2048 to 4096 bits.
	maxRSABits = 4096
)

// reservedClaims are set by the SignedJWT fields, never by claims.
var reservedClaims = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti"}

// signJWT signs s at the resolver's now. The result is a credential: the
// caller registers it with the redactor.
func (r *valueResolver) signJWT(s *v1alpha1.SignedJWT) (string, error) {
	keyPEM, err := r.secretValue(s.PrivateKey.SecretKeyRef, s.PrivateKey.JSONField)
	if err != nil {
		return "", fmt.Errorf("signedJWT.privateKey: %w", err)
	}
	key, err := ParsePrivateKey([]byte(keyPEM))
	if err != nil {
		return "", fmt.Errorf("signedJWT.privateKey: %w", err)
	}
	method, err := signingMethod(s.Algorithm, key)
	if err != nil {
		return "", fmt.Errorf("signedJWT: %w", err)
	}
	lifetime, backdate := jwtTiming(s)
	r.timed = true
	iat := r.now.Add(-backdate)
	claims := jwt.MapClaims{
		"iat": iat.Unix(),
		"exp": iat.Add(lifetime).Unix(),
	}
	if s.NotBefore {
		claims["nbf"] = iat.Unix()
	}
	if !s.OmitJTI {
		claims["jti"] = r.newUUID()
	}
	for name, v := range map[string]*v1alpha1.JWTValue{"iss": s.Issuer, "sub": s.Subject} {
		if v == nil {
			continue
		}
		text, err := r.jwtValue(v, key)
		if err != nil {
			return "", fmt.Errorf("signedJWT %s: %w", name, err)
		}
		claims[name] = text
	}
	switch len(s.Audience) {
	case 0:
	case 1:
		claims["aud"] = s.Audience[0]
	default:
		claims["aud"] = slices.Clone(s.Audience)
	}
	for _, c := range s.Claims {
		if slices.Contains(reservedClaims, c.Name) {
			return "", fmt.Errorf("signedJWT claims: %s is set by its own field", c.Name)
		}
		text, err := r.jwtValue(&c.JWTValue, key)
		if err != nil {
			return "", fmt.Errorf("signedJWT claim %s: %w", c.Name, err)
		}
		claims[c.Name] = text
	}
	token := jwt.NewWithClaims(method, claims)
	if s.KeyID != nil {
		kid, err := r.jwtValue(s.KeyID, key)
		if err != nil {
			return "", fmt.Errorf("signedJWT keyID: %w", err)
		}
		token.Header["kid"] = kid
	}
	if s.Certificate != nil {
		certPEM, err := r.secretValue(s.Certificate.SecretKeyRef, s.Certificate.JSONField)
		if err != nil {
			return "", fmt.Errorf("signedJWT.certificate: %w", err)
		}
		thumbprint, err := certificateThumbprint([]byte(certPEM), key, r.now)
		if err != nil {
			return "", fmt.Errorf("signedJWT.certificate: %w", err)
		}
		token.Header["x5t#S256"] = thumbprint
	}
	signed, err := token.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("signing the JWT failed: %w", err)
	}
	return signed, nil
}

func jwtTiming(s *v1alpha1.SignedJWT) (lifetime, backdate time.Duration) {
	lifetime = DefaultJWTLifetime
	if s.Lifetime != nil && s.Lifetime.Duration > 0 {
		lifetime = min(s.Lifetime.Duration, MaxJWTLifetime)
	}
	if s.MaxLifetime != nil && s.MaxLifetime.Duration > 0 {
		lifetime = min(lifetime, s.MaxLifetime.Duration)
	}
	if s.Backdate != nil && s.Backdate.Duration > 0 {
		backdate = min(s.Backdate.Duration, maxJWTBackdate)
	}
	return lifetime, backdate
}

// jwtValue resolves a text value of a JWT signed with key.
func (r *valueResolver) jwtValue(v *v1alpha1.JWTValue, key crypto.Signer) (string, error) {
	var text string
	var err error
	switch {
	case v.Value != nil:
		text = *v.Value
	case v.SecretKeyRef != nil:
		text, err = r.secretValue(*v.SecretKeyRef, v.JSONField)
	case v.Parameter != "":
		p, ok := r.parameters[v.Parameter]
		if !ok {
			return "", fmt.Errorf("parameter %q has no value", v.Parameter)
		}
		text, err = scalarText(p)
	case v.KeyFingerprint != "":
		text, err = KeyFingerprint(key.Public())
	default:
		return "", errors.New("exactly one of value, secretKeyRef, parameter or keyFingerprint must be set")
	}
	return v.Prefix + text, err
}

// KeyFingerprint is "SHA256:" and the base64 of the SHA-256 of the PKIX DER
// form of a public key (Snowflake's RSA_PUBLIC_KEY_FP).
func KeyFingerprint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("the public key cannot be encoded: %w", err)
	}
	sum := sha256.Sum256(der)
	return "SHA256:" + base64.StdEncoding.EncodeToString(sum[:]), nil
}

// secretValue reads a credential, or a top-level string field of the JSON
// document it holds. Errors never quote the value.
func (r *valueResolver) secretValue(ref v1alpha1.SecretKeySelector, jsonField string) (string, error) {
	raw, ok := r.secrets[ref]
	if !ok {
		return "", fmt.Errorf("no value for key %q of Secret %q", ref.Key, ref.Name)
	}
	if jsonField == "" {
		return raw, nil
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		return "", fmt.Errorf("key %q of Secret %q is not a JSON object", ref.Key, ref.Name)
	}
	field, ok := doc[jsonField].(string)
	if !ok {
		return "", fmt.Errorf("the JSON document in key %q of Secret %q has no string field %q", ref.Key, ref.Name, jsonField)
	}
	return field, nil
}

// ParsePrivateKey reads a PEM private key: PKCS#1 (RSA PRIVATE KEY), SEC 1
// (EC PRIVATE KEY) or unencrypted PKCS#8 (PRIVATE KEY). Encrypted keys, of
// either PEM form, are refused. Errors never quote the key.
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("holds no PEM block")
	}
	if block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] != "" {
		return nil, errors.New("is encrypted; tokenmint needs the key unencrypted, kept in a Secret (openssl pkcs8 -topk8 -nocrypt converts it)")
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("holds a PEM block of type %q, not a private key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("holds a %s that cannot be read", block.Type)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("holds a key of type %T, which cannot sign", key)
	}
	return signer, nil
}

// signingMethod returns the method of alg, and refuses a key it cannot use.
func signingMethod(alg v1alpha1.JWTAlgorithm, key crypto.Signer) (jwt.SigningMethod, error) {
	method := jwt.GetSigningMethod(string(alg))
	if method == nil {
		return nil, fmt.Errorf("unknown algorithm %q", alg)
	}
	mismatch := func(want string) error {
		return fmt.Errorf("algorithm %s needs %s, but the key is %s", alg, want, keyKind(key))
	}
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		k, ok := key.(*rsa.PrivateKey)
		if !ok {
			return nil, mismatch("an RSA key")
		}
		if bits := k.N.BitLen(); bits < 2048 || bits > maxRSABits {
			return nil, fmt.Errorf("the RSA key has %d bits; 2048 to %d are accepted", bits, maxRSABits)
		}
	case "ES256", "ES384", "ES512":
		curves := map[v1alpha1.JWTAlgorithm]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}
		k, ok := key.(*ecdsa.PrivateKey)
		if !ok || k.Curve != curves[alg] {
			return nil, mismatch("an ECDSA " + curves[alg].Params().Name + " key")
		}
	case "EdDSA":
		if _, ok := key.(ed25519.PrivateKey); !ok {
			return nil, mismatch("an Ed25519 key")
		}
	}
	return method, nil
}

func keyKind(key crypto.Signer) string {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return "an RSA key"
	case *ecdsa.PrivateKey:
		return "an ECDSA " + k.Curve.Params().Name + " key"
	case ed25519.PrivateKey:
		return "an Ed25519 key"
	default:
		return fmt.Sprintf("a %T", key)
	}
}

// certificateThumbprint is the x5t#S256 header of the PEM certificate: the
// base64url SHA-256 of its DER form. The certificate must be of key, and
// valid at now: a provider refuses an assertion naming an expired one.
func certificateThumbprint(data []byte, key crypto.Signer, now time.Time) (string, error) {
	cert, err := leafCertificate(data)
	if err != nil {
		return "", err
	}
	if err := CheckValidity(cert, now); err != nil {
		return "", err
	}
	if pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(key.Public()) {
		return "", errors.New("is not the certificate of the private key")
	}
	sum := sha256.Sum256(cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// sign issues the token of a self-signed issuer: the JWT of spec.signedJWT,
// signed now, which expires at its exp claim. No call is made.
func (e *Engine) sign(c Call, parameters map[string]any, red *redactor) (*Token, error) {
	now := e.clock().Now()
	// Signed on the audience's clock where one was measured; the expiry is
	// then told in local time.
	offset := c.ProviderClock.correction()
	values := &valueResolver{parameters: parameters, secrets: c.Secrets, now: now.Add(offset), newUUID: e.newUUID()}
	signed, err := values.signJWT(c.Spec.SignedJWT)
	if err != nil {
		return nil, &Error{Class: ClassInvalidConfig, Message: red.redact(err.Error())}
	}
	lifetime, backdate := jwtTiming(c.Spec.SignedJWT)
	// exp is written in whole seconds; the token expires then, not later.
	expiresAt := time.Unix(now.Add(offset).Add(-backdate).Add(lifetime).Unix(), 0).Add(-offset)
	return &Token{Value: signed, IssuedAt: now, ExpiresAt: &expiresAt}, nil
}

// leafCertificate reads the first certificate of a PEM bundle.
func leafCertificate(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("holds no PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, errors.New("holds a certificate that cannot be read")
	}
	return cert, nil
}

// CheckValidity refuses a certificate outside its validity period at now,
// saying when it ended (or begins) so that whoever renews it knows.
func CheckValidity(cert *x509.Certificate, now time.Time) error {
	switch {
	case now.After(cert.NotAfter):
		return fmt.Errorf("expired at %s; renew the certificate", cert.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(cert.NotBefore):
		return fmt.Errorf("is not valid before %s", cert.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}
