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
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
)

const (
	// EKSTokenPrefix starts every EKS token.
	EKSTokenPrefix = "k8s-aws-v1."
	// EKSClusterIDHeader is the signed header naming the cluster.
	EKSClusterIDHeader = "x-k8s-aws-id"
	// eksURLExpiry is the X-Amz-Expires of an EKS token's URL, as
	// aws-iam-authenticator writes it; EKS accepts the token for 15 minutes
	// from its X-Amz-Date whatever it says.
	eksURLExpiry = 60
	// eksTokenLifetime is how long tokenmint counts an EKS token valid: 15
	// minutes less the minute aws-iam-authenticator keeps as a margin.
	eksTokenLifetime = 14 * time.Minute
	// rdsTokenLifetime is the lifetime of an RDS IAM authentication token.
	rdsTokenLifetime = 15 * time.Minute
)

var (
	eksClusterNamePattern = regexp.MustCompile(`^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$`)
	dnsNamePattern        = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$`)
	rdsUserPattern        = regexp.MustCompile(`^[A-Za-z0-9_$@.-]{1,63}$`)
)

// MakesNoCall reports whether the issuer's token is made by tokenmint
// itself (a signed JWT, a pre-signed URL) without a call: a pre-signed URL
// whose credentials come from steps makes their calls.
func MakesNoCall(spec *v1alpha1.IssuerSpec) bool {
	return SelfSigned(spec) || (awsPresigned(spec) != nil && len(spec.Steps) == 0)
}

func awsPresigned(spec *v1alpha1.IssuerSpec) *v1alpha1.AWSPresignedURL {
	if spec == nil {
		return nil
	}
	return spec.AWSPresignedURL
}

// addAWSCredentials lists the value sources of an access key with their labels.
func addAWSCredentials(c *v1alpha1.AWSCredentials, label string, add func(*v1alpha1.ValueSource, string)) {
	add(&c.AccessKeyID, label+".accessKeyID")
	add(&c.SecretAccessKey, label+".secretAccessKey")
	if c.SessionToken != nil {
		add(c.SessionToken, label+".sessionToken")
	}
}

// presign issues the token of an awsPresignedURL issuer: a URL signed now,
// on the provider's clock where one was measured. The URL itself needs no
// call; the issuer's steps, if any, run first (each reused while valid) and
// their results sign it, such as the temporary credentials of STS
// AssumeRoleWithWebIdentity. A URL signed with temporary credentials stops
// working when they expire: the token expires at the earliest of its own
// lifetime and the steps' expiries.
func (e *Engine) presign(ctx context.Context, c Call, parameters map[string]any, red *redactor) (*Token, error) {
	if len(c.Spec.Steps) > 0 {
		if _, err := e.runSteps(ctx, &c, parameters, red); err != nil {
			return nil, err
		}
	}
	now := e.clock().Now()
	values := &valueResolver{parameters: parameters, secrets: c.Secrets, now: now.Add(c.ProviderClock.correction()),
		newUUID: e.newUUID(), spec: c.Spec, steps: c.stepResults, serviceAccountTokens: c.ServiceAccountTokens}
	token, lifetime, err := presignedToken(c.Spec.AWSPresignedURL, values, red)
	if err != nil {
		return nil, &Error{Class: ClassInvalidConfig, Message: red.redact(err.Error())}
	}
	red.add(token)
	// The provider counts the lifetime from X-Amz-Date, on its clock: in
	// local time the token expires lifetime after now.
	expiresAt := now.Add(lifetime)
	t := &Token{Value: token, IssuedAt: now, ExpiresAt: &expiresAt}
	for _, r := range c.stepResults {
		if r.expiresAt != nil && (t.NotAfter == nil || r.expiresAt.Before(*t.NotAfter)) {
			at := *r.expiresAt
			t.NotAfter = &at
		}
	}
	if t.NotAfter != nil && t.NotAfter.Before(expiresAt) {
		at := *t.NotAfter
		t.ExpiresAt = &at
	}
	return t, nil
}

// presignedToken makes the token of spec at values.now and says how long it
// is valid.
func presignedToken(spec *v1alpha1.AWSPresignedURL, values *valueResolver, red *redactor) (string, time.Duration, error) {
	creds, err := awsCredentials(&spec.AWSCredentials, values, red, "awsPresignedURL")
	if err != nil {
		return "", 0, err
	}
	switch {
	case spec.EKS != nil:
		if err := checkAWSScope(spec.Region, "sts"); err != nil {
			return "", 0, err
		}
		if !eksClusterNamePattern.MatchString(spec.EKS.ClusterName) {
			return "", 0, errors.New("awsPresignedURL.eks.clusterName is not an EKS cluster name")
		}
		host := spec.EKS.STSHost
		if host == "" {
			host = "sts." + spec.Region + ".amazonaws.com"
		}
		if len(host) > 253 || !dnsNamePattern.MatchString(host) {
			return "", 0, errors.New("awsPresignedURL.eks.stsHost is not a DNS name")
		}
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet,
			"https://"+host+"/?Action=GetCallerIdentity&Version=2011-06-15", nil)
		if err != nil {
			return "", 0, err
		}
		req.Header.Set(EKSClusterIDHeader, spec.EKS.ClusterName)
		signed, err := presignAWS(req, creds, spec.Region, "sts", values.now, eksURLExpiry, EKSClusterIDHeader)
		if err != nil {
			return "", 0, fmt.Errorf("awsPresignedURL: signing: %s", red.redact(err.Error()))
		}
		return EKSTokenPrefix + base64.RawURLEncoding.EncodeToString([]byte(signed)), eksTokenLifetime, nil
	case spec.RDS != nil:
		r := spec.RDS
		if err := checkAWSScope(spec.Region, "rds-db"); err != nil {
			return "", 0, err
		}
		if len(r.Host) > 253 || !dnsNamePattern.MatchString(r.Host) {
			return "", 0, errors.New("awsPresignedURL.rds.host is not a DNS name")
		}
		if r.Port < 1 || r.Port > 65535 {
			return "", 0, errors.New("awsPresignedURL.rds.port must be between 1 and 65535")
		}
		if !rdsUserPattern.MatchString(r.User) {
			return "", 0, errors.New("awsPresignedURL.rds.user must be 1 to 63 letters, digits and _$@.-")
		}
		target := url.URL{Scheme: "https", Host: r.Host + ":" + strconv.Itoa(int(r.Port)), Path: "/",
			RawQuery: url.Values{"Action": {"connect"}, "DBUser": {r.User}}.Encode()}
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, target.String(), nil)
		if err != nil {
			return "", 0, err
		}
		signed, err := presignAWS(req, creds, spec.Region, "rds-db", values.now, int(rdsTokenLifetime/time.Second))
		if err != nil {
			return "", 0, fmt.Errorf("awsPresignedURL: signing: %s", red.redact(err.Error()))
		}
		// The token is the URL without its scheme.
		return strings.TrimPrefix(signed, "https://"), rdsTokenLifetime, nil
	default:
		return "", 0, errors.New("awsPresignedURL: set exactly one of eks or rds")
	}
}

// validatePresigned checks an awsPresignedURL issuer: the URL needs no call,
// so everything that describes one is refused rather than ignored, and its
// access key comes from Secrets or from the issuer's steps, whose calls are
// checked as any issuer's.
func validatePresigned(spec *v1alpha1.IssuerSpec) error {
	p := spec.AWSPresignedURL
	problems := []error{CheckCredentialSecrets(spec)}
	if !reflect.DeepEqual(spec.Request, v1alpha1.RequestSpec{}) || spec.SignedJWT != nil {
		problems = append(problems, errors.New("set exactly one of request, signedJWT or awsPresignedURL"))
	}
	if !reflect.DeepEqual(spec.Response, v1alpha1.ResponseSpec{}) {
		problems = append(problems, errors.New("response has no meaning with awsPresignedURL: the token is the URL"))
	}
	if spec.Refresh != nil || spec.Revoke != nil || spec.ClientCertificate != nil || len(spec.CABundle) > 0 {
		problems = append(problems, errors.New("an issuer with awsPresignedURL makes no call of its own: refresh, revoke, clientCertificate and caBundle have no meaning"))
	}
	problems = append(problems, validateCredentials(spec)...)
	for _, r := range requests(spec) {
		if r.kind != callRequest { // the steps' calls; request is empty
			problems = append(problems, validateRequest(spec, r)...)
		}
	}
	problems = append(problems, validateSteps(spec)...)
	for _, site := range valueSites(spec) {
		if err := validateSite(spec, site); err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", site.label, err))
			continue
		}
		if !strings.HasPrefix(site.label, "awsPresignedURL.") {
			continue
		}
		if c := FindCredential(spec, site.source.Credential); c != nil && c.SecretKeyRef == nil && c.Step == nil {
			problems = append(problems, fmt.Errorf("%s: credential %q must be a secretKeyRef or an earlier step's value", site.label, c.Name))
		}
	}
	if spec.Timeout != nil && spec.Timeout.Duration <= 0 {
		problems = append(problems, fmt.Errorf("timeout must be positive, got %s", spec.Timeout.Duration))
	}
	if p.SecretAccessKey.Credential == "" {
		problems = append(problems, errors.New("awsPresignedURL.secretAccessKey must be a credential, never a literal"))
	}
	if p.SessionToken != nil && p.SessionToken.Credential == "" {
		problems = append(problems, errors.New("awsPresignedURL.sessionToken must be a credential, never a literal"))
	}
	service := "sts"
	if p.RDS != nil {
		service = "rds-db"
	}
	if err := checkAWSScope(p.Region, service); err != nil {
		problems = append(problems, fmt.Errorf("awsPresignedURL: %w", err))
	}
	if (p.EKS == nil) == (p.RDS == nil) {
		problems = append(problems, errors.New("awsPresignedURL: set exactly one of eks or rds"))
	}
	problems = append(problems, validateParameters(spec)...)
	return join(problems)
}

// validateSigV4 checks the awsSigV4 auth of a request.
func validateSigV4(s *v1alpha1.AWSSigV4) []error {
	var problems []error
	if err := checkAWSScope(s.Region, s.Service); err != nil {
		problems = append(problems, fmt.Errorf("auth.awsSigV4: %w", err))
	}
	if s.SecretAccessKey.Credential == "" {
		problems = append(problems, errors.New("auth.awsSigV4.secretAccessKey must be a credential, never a literal"))
	}
	if s.SessionToken != nil && s.SessionToken.Credential == "" {
		problems = append(problems, errors.New("auth.awsSigV4.sessionToken must be a credential, never a literal"))
	}
	return problems
}
