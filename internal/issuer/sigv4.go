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
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/aws/smithy-go/aws-http-auth/credentials"
	"github.com/aws/smithy-go/aws-http-auth/sigv4"
	v4 "github.com/aws/smithy-go/aws-http-auth/v4"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
)

// maxAWSKeyBytes bounds an access key id, a secret access key and a session
// token (STS session tokens run to about 2 KiB; 8 KiB leaves room and stays
// far below a header limit).
const maxAWSKeyBytes = 8 << 10

// awsAccessKeyIDPattern is what an access key id looks like: it is written
// into the Authorization header and the credential scope unescaped.
var awsAccessKeyIDPattern = regexp.MustCompile(`^[A-Za-z0-9]{1,128}$`)

// awsScopePattern is a region or a service in a credential scope.
var awsScopePattern = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// sigV4SignaturePattern finds the signature of an Authorization header.
var sigV4SignaturePattern = regexp.MustCompile(`Signature=[0-9a-f]+`)

// unsignedHeaders are never signed: they are added or changed on the way
// (by Go's transport, proxies and tracing), or carry the signature itself.
// Every other header of the request is signed, as the AWS SDKs do.
var unsignedHeaders = map[string]bool{
	"authorization":     true,
	"user-agent":        true,
	"x-amzn-trace-id":   true,
	"expect":            true,
	"transfer-encoding": true,
	"connection":        true,
}

// signAllHeaders signs every header but unsignedHeaders.
type signAllHeaders struct{}

func (signAllHeaders) IsSigned(name string) bool { return !unsignedHeaders[name] }

// signedRequestKey marks the context of a signed request, so that the client
// follows no redirect with it (see sameHostRedirects).
type signedRequestKey struct{}

// withSignedRequest marks ctx as carrying a request signed for its URL.
func withSignedRequest(ctx context.Context) context.Context {
	return context.WithValue(ctx, signedRequestKey{}, true)
}

// isSignedRequest reports whether req was signed for its URL.
func isSignedRequest(req *http.Request) bool {
	signed, _ := req.Context().Value(signedRequestKey{}).(bool)
	return signed
}

// awsCredentials resolves an access key; the secret and the session token
// are registered with red before anything can fail.
func awsCredentials(spec *v1alpha1.AWSCredentials, values *valueResolver, red *redactor, label string) (credentials.Credentials, error) {
	secret, err := requiredText(values, &spec.SecretAccessKey, label+".secretAccessKey")
	red.add(secret)
	if err != nil {
		return credentials.Credentials{}, err
	}
	var session string
	if spec.SessionToken != nil {
		session, err = requiredText(values, spec.SessionToken, label+".sessionToken")
		red.add(session)
		if err != nil {
			return credentials.Credentials{}, err
		}
	}
	id, err := requiredText(values, &spec.AccessKeyID, label+".accessKeyID")
	if err != nil {
		return credentials.Credentials{}, err
	}
	switch {
	case !awsAccessKeyIDPattern.MatchString(id):
		return credentials.Credentials{}, fmt.Errorf("%s.accessKeyID is not an access key id (1 to 128 letters and digits)", label)
	case secret == "" || len(secret) > maxAWSKeyBytes:
		return credentials.Credentials{}, fmt.Errorf("%s.secretAccessKey must be 1 to %d bytes", label, maxAWSKeyBytes)
	case len(session) > maxAWSKeyBytes:
		return credentials.Credentials{}, fmt.Errorf("%s.sessionToken is longer than %d bytes", label, maxAWSKeyBytes)
	case checkHeaderValue(secret) != nil || checkHeaderValue(session) != nil:
		return credentials.Credentials{}, fmt.Errorf("%s: the secret access key or session token contains a line break or NUL", label)
	}
	return credentials.Credentials{AccessKeyID: id, SecretAccessKey: secret, SessionToken: session}, nil
}

// checkAWSScope checks a region and a service before they enter a credential
// scope.
func checkAWSScope(region, service string) error {
	if len(region) > 32 || !awsScopePattern.MatchString(region) {
		return errors.New("region must be lowercase letters, digits and dashes (us-east-1), at most 32")
	}
	if len(service) > 64 || !awsScopePattern.MatchString(service) {
		return errors.New("service must be lowercase letters, digits and dashes (ecr), at most 64")
	}
	return nil
}

// signAWSSigV4 signs req, whose headers and body are final, with AWS
// Signature Version 4 at the provider's time: it must be the last change
// to the request before it is sent. body is the request's body (nil for none).
func signAWSSigV4(req *http.Request, body []byte, spec *v1alpha1.AWSSigV4, values *valueResolver, red *redactor) error {
	creds, err := awsCredentials(&spec.AWSCredentials, values, red, "auth.awsSigV4")
	if err != nil {
		return err
	}
	if err := checkAWSScope(spec.Region, spec.Service); err != nil {
		return fmt.Errorf("auth.awsSigV4: %w", err)
	}
	var payloadHash []byte
	if spec.UnsignedPayload {
		payloadHash = v4.UnsignedPayload()
	} else {
		sum := sha256.Sum256(body)
		payloadHash = sum[:]
	}
	// AWS canonicalizes a header value by trimming it and collapsing its runs
	// of spaces; the signer only trims, so the values are sent canonical.
	for name, list := range req.Header {
		if unsignedHeaders[strings.ToLower(name)] {
			continue
		}
		for i, v := range list {
			list[i] = strings.Join(strings.Fields(v), " ")
		}
	}
	values.timed = true
	signer := sigv4.New(func(o *v4.SignerOptions) {
		o.HeaderRules = signAllHeaders{}
		o.AddPayloadHashHeader = spec.ContentSHA256Header
	})
	err = signer.SignRequest(&sigv4.SignRequestInput{
		Request:     req,
		PayloadHash: payloadHash,
		Credentials: creds,
		Service:     spec.Service,
		Region:      spec.Region,
		Time:        values.now.UTC(),
	})
	if err != nil {
		return fmt.Errorf("auth.awsSigV4: signing: %s", red.redact(err.Error()))
	}
	return nil
}

// presignAWS signs req (a GET without body) in its query string at now with
// the given expiry in seconds, and returns its URL with X-Amz-Signature last,
// as the AWS SDKs write it. signed lists the headers signed besides host.
func presignAWS(req *http.Request, creds credentials.Credentials, region, service string, now time.Time,
	expires int, signed ...string) (string, error) {
	query := req.URL.Query()
	query.Set("X-Amz-Expires", fmt.Sprint(expires))
	req.URL.RawQuery = query.Encode()
	empty := sha256.Sum256(nil)
	signer := sigv4.New(func(o *v4.SignerOptions) {
		o.HeaderRules = headerList(append([]string{"host"}, signed...))
	})
	err := signer.SignRequest(&sigv4.SignRequestInput{
		Request:       req,
		PayloadHash:   empty[:],
		Credentials:   creds,
		Service:       service,
		Region:        region,
		Time:          now.UTC(),
		SignatureType: v4.SignatureTypeQueryString,
	})
	if err != nil {
		return "", err
	}
	signature := req.URL.Query().Get("X-Amz-Signature")
	var kept []string
	for _, pair := range strings.Split(req.URL.RawQuery, "&") {
		if !strings.HasPrefix(pair, "X-Amz-Signature=") {
			kept = append(kept, pair)
		}
	}
	u := *req.URL
	u.RawQuery = strings.Join(kept, "&") + "&X-Amz-Signature=" + signature
	return u.String(), nil
}

// headerList signs the headers it names (lowercase).
type headerList []string

func (h headerList) IsSigned(name string) bool {
	for _, n := range h {
		if n == name {
			return true
		}
	}
	return false
}
