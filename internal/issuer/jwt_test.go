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
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
)

var (
	testRSAKey, _ = rsa.GenerateKey(rand.Reader, 2048)
	testP256, _   = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	testP384, _   = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	testP521, _   = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	_, testEd, _  = ed25519.GenerateKey(rand.Reader)
)

func pemOf(t *testing.T, blockType string, der []byte) string {
	t.Helper()
	return string(pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}))
}

func pkcs8(t *testing.T, key any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf(t, "PRIVATE KEY", der)
}

var (
	keyRef = v1alpha1.SecretKeySelector{Name: "app", Key: "private-key"}
	// jtis counts the UUIDs handed out for jti claims.
	jtis int
)

func signWith(t *testing.T, s *v1alpha1.SignedJWT, secrets map[v1alpha1.SecretKeySelector]string, now time.Time) (string, error) {
	t.Helper()
	r := &valueResolver{secrets: secrets, now: now, parameters: map[string]any{"client": "client-from-parameter"},
		newUUID: func() string { jtis++; return "uuid-" + strings.Repeat("x", jtis) }}
	return r.signJWT(s)
}

func verify(t *testing.T, signed string, pub crypto.PublicKey) (jwt.MapClaims, map[string]any) {
	t.Helper()
	claims := jwt.MapClaims{}
	tok, err := jwt.NewParser(jwt.WithoutClaimsValidation()).ParseWithClaims(signed, claims, func(*jwt.Token) (any, error) { return pub, nil })
	if err != nil || !tok.Valid {
		t.Fatalf("the signature does not verify: %v", err)
	}
	return claims, tok.Header
}

func TestSignedJWTEveryAlgorithmAndKeyForm(t *testing.T) {
	ecSEC1 := func(k *ecdsa.PrivateKey) string {
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pemOf(t, "EC PRIVATE KEY", der)
	}
	cases := []struct {
		alg v1alpha1.JWTAlgorithm
		pem string
		pub crypto.PublicKey
	}{
		{"RS256", pemOf(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(testRSAKey)), &testRSAKey.PublicKey},
		{"RS384", pkcs8(t, testRSAKey), &testRSAKey.PublicKey},
		{"RS512", pkcs8(t, testRSAKey), &testRSAKey.PublicKey},
		{"PS256", pkcs8(t, testRSAKey), &testRSAKey.PublicKey},
		{"PS384", pemOf(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(testRSAKey)), &testRSAKey.PublicKey},
		{"PS512", pkcs8(t, testRSAKey), &testRSAKey.PublicKey},
		{"ES256", ecSEC1(testP256), &testP256.PublicKey},
		{"ES384", pkcs8(t, testP384), &testP384.PublicKey},
		{"ES512", ecSEC1(testP521), &testP521.PublicKey},
		{"EdDSA", pkcs8(t, testEd), testEd.Public()},
	}
	now := time.Unix(1_800_000_000, 0)
	for _, c := range cases {
		t.Run(string(c.alg), func(t *testing.T) {
			s := &v1alpha1.SignedJWT{PrivateKey: v1alpha1.JWTSecretValue{SecretKeyRef: keyRef}, Algorithm: c.alg,
				Issuer: &v1alpha1.JWTValue{Value: ptr("12345")}}
			signed, err := signWith(t, s, map[v1alpha1.SecretKeySelector]string{keyRef: c.pem}, now)
			if err != nil {
				t.Fatal(err)
			}
			claims, header := verify(t, signed, c.pub)
			if header["alg"] != string(c.alg) || claims["iss"] != "12345" {
				t.Fatalf("header %v claims %v", header, claims)
			}
			if exp, _ := claims.GetExpirationTime(); !exp.Equal(now.Add(DefaultJWTLifetime)) {
				t.Fatalf("exp %v, want %v", exp, now.Add(DefaultJWTLifetime))
			}
		})
	}
}

func TestSignedJWTClaimsAndHeaders(t *testing.T) {
	certTemplate := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "client"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(4_000_000_000, 0)}
	certDER, err := x509.CreateCertificate(rand.Reader, certTemplate, certTemplate, &testRSAKey.PublicKey, testRSAKey)
	if err != nil {
		t.Fatal(err)
	}
	certRef := v1alpha1.SecretKeySelector{Name: "app", Key: "tls.crt"}
	keyFile := v1alpha1.SecretKeySelector{Name: "sa", Key: "key.json"}
	doc, _ := json.Marshal(map[string]string{"private_key": pkcs8(t, testRSAKey), "client_email": "robot@project.iam.gserviceaccount.com"})
	secrets := map[v1alpha1.SecretKeySelector]string{keyRef: pkcs8(t, testRSAKey), certRef: pemOf(t, "CERTIFICATE", certDER), keyFile: string(doc)}
	now := time.Unix(1_800_000_000, 0)
	s := &v1alpha1.SignedJWT{
		PrivateKey:  v1alpha1.JWTSecretValue{SecretKeyRef: keyFile, JSONField: "private_key"},
		Algorithm:   "PS256",
		KeyID:       &v1alpha1.JWTValue{Value: ptr("kid-1")},
		Certificate: &v1alpha1.JWTSecretValue{SecretKeyRef: certRef},
		Issuer:      &v1alpha1.JWTValue{SecretKeyRef: &keyFile, JSONField: "client_email"},
		Subject:     &v1alpha1.JWTValue{Parameter: "client"},
		Audience:    []string{"https://login.example.com/tenant/", "https://login.example.com/tenant/token"},
		Lifetime:    &v1alpha1.Duration{Duration: 20 * time.Minute},
		MaxLifetime: &v1alpha1.Duration{Duration: 10 * time.Minute},
		Backdate:    &v1alpha1.Duration{Duration: time.Minute},
		NotBefore:   true,
		Claims:      []v1alpha1.JWTClaim{{Name: "scope", JWTValue: v1alpha1.JWTValue{Value: ptr("a b")}}},
	}
	first, err := signWith(t, s, secrets, now)
	if err != nil {
		t.Fatal(err)
	}
	claims, header := verify(t, first, &testRSAKey.PublicKey)
	sum := sha256.Sum256(certDER)
	if header["kid"] != "kid-1" || header["x5t#S256"] != base64.RawURLEncoding.EncodeToString(sum[:]) {
		t.Errorf("headers %v", header)
	}
	if claims["iss"] != "robot@project.iam.gserviceaccount.com" || claims["sub"] != "client-from-parameter" || claims["scope"] != "a b" {
		t.Errorf("claims %v", claims)
	}
	if aud, _ := claims.GetAudience(); len(aud) != 2 {
		t.Errorf("aud %v", claims["aud"])
	}
	iat, _ := claims.GetIssuedAt()
	exp, _ := claims.GetExpirationTime()
	nbf, _ := claims.GetNotBefore()
	if !iat.Equal(now.Add(-time.Minute)) || !nbf.Equal(iat.Time) || exp.Sub(iat.Time) != 10*time.Minute {
		t.Errorf("iat %v nbf %v exp %v: want iat backdated a minute, nbf = iat, lifetime capped at maxLifetime", iat, nbf, exp)
	}
	second, _ := signWith(t, s, secrets, now)
	c2, _ := verify(t, second, &testRSAKey.PublicKey)
	if c2["jti"] == nil || c2["jti"] == claims["jti"] {
		t.Errorf("jti %v then %v: want a fresh one per call", claims["jti"], c2["jti"])
	}
	s.Audience = s.Audience[:1]
	one, _ := signWith(t, s, secrets, now)
	c3, _ := verify(t, one, &testRSAKey.PublicKey)
	if _, isString := c3["aud"].(string); !isString {
		t.Errorf("a single audience is sent as %T, want a string", c3["aud"])
	}
}

func TestSignedJWTRefusesUnusableKeys(t *testing.T) {
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	encrypted := "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n"
	legacy := "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00000000000000000000000000000000\n\nAAAA\n-----END RSA PRIVATE KEY-----\n"
	rsaPEM := pkcs8(t, testRSAKey)
	cases := []struct {
		name, pem string
		alg       v1alpha1.JWTAlgorithm
		want      string
	}{
		{"encrypted PKCS#8", encrypted, "RS256", "encrypted"},
		{"encrypted legacy PEM", legacy, "RS256", "encrypted"},
		{"not PEM", "CANARY-NOT-A-KEY", "RS256", "no PEM block"},
		{"a certificate", pemOf(t, "CERTIFICATE", []byte("x")), "RS256", "not a private key"},
		{"RSA key for ES256", rsaPEM, "ES256", "needs an ECDSA P-256 key, but the key is an RSA key"},
		{"P-384 key for ES256", pkcs8(t, testP384), "ES256", "needs an ECDSA P-256 key"},
		{"Ed25519 key for RS256", pkcs8(t, testEd), "RS256", "needs an RSA key"},
		{"a 1024-bit RSA key", pkcs8(t, weak), "RS256", "2048 to 4096 are accepted"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &v1alpha1.SignedJWT{PrivateKey: v1alpha1.JWTSecretValue{SecretKeyRef: keyRef}, Algorithm: c.alg}
			_, err := signWith(t, s, map[v1alpha1.SecretKeySelector]string{keyRef: c.pem}, time.Now())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if strings.Contains(err.Error(), "CANARY") || strings.Contains(err.Error(), "BEGIN") {
				t.Fatalf("the error quotes the key: %v", err)
			}
		})
	}
}

func TestSignedJWTRefusesHugeRSAKeys(t *testing.T) {
	huge := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 8191), E: 65537}}
	if _, err := signingMethod("RS256", huge); err == nil || !strings.Contains(err.Error(), "the RSA key has 8192 bits; 2048 to 4096") {
		t.Fatalf("an 8192-bit key: %v, want refused", err)
	}
	if _, err := signingMethod("RS256", testRSAKey); err != nil {
		t.Fatalf("a 2048-bit key: %v", err)
	}
}

// BenchmarkSignJWT measures one signature per key kind tokenmint accepts, the
// CPU every tenant's signed JWTs share (go test -bench SignJWT ./internal/issuer/).
func BenchmarkSignJWT(b *testing.B) {
	rsa4096, err := rsa.GenerateKey(rand.Reader, 4096)
	if err != nil {
		b.Fatal(err)
	}
	for _, k := range []struct {
		name string
		alg  v1alpha1.JWTAlgorithm
		key  any
	}{{"RS256-2048", "RS256", testRSAKey}, {"RS256-4096", "RS256", rsa4096}, {"ES256", "ES256", testP256}, {"EdDSA", "EdDSA", testEd}} {
		der, err := x509.MarshalPKCS8PrivateKey(k.key)
		if err != nil {
			b.Fatal(err)
		}
		ref := v1alpha1.SecretKeySelector{Name: "k", Key: "k"}
		r := &valueResolver{secrets: map[v1alpha1.SecretKeySelector]string{ref: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))},
			now: time.Unix(1_700_000_000, 0), newUUID: func() string { return "jti" }}
		s := &v1alpha1.SignedJWT{PrivateKey: v1alpha1.JWTSecretValue{SecretKeyRef: ref}, Algorithm: k.alg}
		b.Run(k.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := r.signJWT(s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
