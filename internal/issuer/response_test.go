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
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
)

// signedJWT returns an HS256 JWT with claims; the engine never verifies it.
func signedJWT(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte("test-key"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func read(spec *v1alpha1.ResponseSpec, status int, body string, header ...string) (*Token, error) {
	h := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	return readToken(spec, answer{status: status, header: h, body: []byte(body)}, testNow, &redactor{})
}

func TestExpiryFormats(t *testing.T) {
	inAnHour := testNow.Add(time.Hour)
	jwtInAnHour := signedJWT(t, jwt.MapClaims{"exp": inAnHour.Unix()})
	tests := []struct {
		name   string
		expiry *v1alpha1.ExpirySpec
		body   string
		want   *time.Time // nil: no expiry
	}{
		{"none", nil, `{"access_token":"t"}`, nil},
		{"unix seconds number", &v1alpha1.ExpirySpec{Path: "expiry", Format: v1alpha1.ExpiryUnixSeconds},
			fmt.Sprintf(`{"access_token":"t","expiry":%d}`, inAnHour.Unix()), &inAnHour},
		{"unix seconds string", &v1alpha1.ExpirySpec{Path: "expiry", Format: v1alpha1.ExpiryUnixSeconds},
			fmt.Sprintf(`{"access_token":"t","expiry":"%d"}`, inAnHour.Unix()), &inAnHour},
		{"unix seconds fractional", &v1alpha1.ExpirySpec{Path: "expiry", Format: v1alpha1.ExpiryUnixSeconds},
			fmt.Sprintf(`{"access_token":"t","expiry":%d.5}`, inAnHour.Unix()), ptr(inAnHour.Add(500 * time.Millisecond))},
		{"unix milliseconds", &v1alpha1.ExpirySpec{Path: "expiry", Format: v1alpha1.ExpiryUnixMilliseconds},
			fmt.Sprintf(`{"access_token":"t","expiry":%d}`, inAnHour.UnixMilli()), &inAnHour},
		{"unix milliseconds string", &v1alpha1.ExpirySpec{Path: "expiry", Format: v1alpha1.ExpiryUnixMilliseconds},
			fmt.Sprintf(`{"access_token":"t","expiry":"%d"}`, inAnHour.UnixMilli()), &inAnHour},
		{"rfc3339", &v1alpha1.ExpirySpec{Path: "expires_at", Format: v1alpha1.ExpiryRFC3339},
			`{"access_token":"t","expires_at":"2026-03-01T14:00:00+01:00"}`, &inAnHour},
		{"relative number", &v1alpha1.ExpirySpec{Path: "expires_in", Format: v1alpha1.ExpiryRelativeSeconds},
			`{"access_token":"t","expires_in":3600}`, &inAnHour},
		{"relative string", &v1alpha1.ExpirySpec{Path: "expires_in", Format: v1alpha1.ExpiryRelativeSeconds},
			`{"access_token":"t","expires_in":"3600"}`, &inAnHour},
		{"nested path", &v1alpha1.ExpirySpec{Path: "data.0.ttl", Format: v1alpha1.ExpiryRelativeSeconds},
			`{"access_token":"t","data":[{"ttl":3600}]}`, &inAnHour},
		{"JWT of the token", &v1alpha1.ExpirySpec{Format: v1alpha1.ExpiryJWT},
			`{"access_token":"` + jwtInAnHour + `"}`, &inAnHour},
		{"JWT at a path", &v1alpha1.ExpirySpec{Path: "id_token", Format: v1alpha1.ExpiryJWT},
			`{"access_token":"t","id_token":"` + jwtInAnHour + `"}`, &inAnHour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token, err := read(&v1alpha1.ResponseSpec{Token: "access_token", Expiry: tt.expiry}, 200, tt.body)
			if err != nil {
				t.Fatalf("readToken: %v", err)
			}
			if tt.want == nil {
				if token.ExpiresAt != nil {
					t.Errorf("ExpiresAt = %v, want none", token.ExpiresAt)
				}
				return
			}
			wantTime(t, "ExpiresAt", token.ExpiresAt, *tt.want)
			if !token.IssuedAt.Equal(testNow) {
				t.Errorf("IssuedAt = %v, want %v", token.IssuedAt, testNow)
			}
		})
	}
}

func TestUnusableExpiries(t *testing.T) {
	relative := &v1alpha1.ExpirySpec{Path: "e", Format: v1alpha1.ExpiryRelativeSeconds}
	unix := &v1alpha1.ExpirySpec{Path: "e", Format: v1alpha1.ExpiryUnixSeconds}
	jwtExpiry := &v1alpha1.ExpirySpec{Format: v1alpha1.ExpiryJWT}
	tests := []struct {
		name   string
		expiry *v1alpha1.ExpirySpec
		body   string
		want   string
	}{
		{"past", unix, fmt.Sprintf(`{"t":"x","e":%d}`, testNow.Add(-time.Second).Unix()), "not in the future"},
		{"now", unix, fmt.Sprintf(`{"t":"x","e":%d}`, testNow.Unix()), "not in the future"},
		{"zero", relative, `{"t":"x","e":0}`, "out of range"},
		{"negative", relative, `{"t":"x","e":"-60"}`, "out of range"},
		{"too far", relative, `{"t":"x","e":400000000}`, "more than ten years ahead"},
		{"milliseconds read as seconds", unix, fmt.Sprintf(`{"t":"x","e":%d}`, testNow.UnixMilli()), "out of range"},
		{"huge", unix, `{"t":"x","e":1e300}`, "out of range"},
		{"not numeric", relative, `{"t":"x","e":"soon"}`, "not a number"},
		{"NaN string", relative, `{"t":"x","e":"NaN"}`, "not a number"},
		{"boolean", relative, `{"t":"x","e":true}`, "not a number"},
		{"missing", relative, `{"t":"x"}`, `no value at "e"`},
		{"null", relative, `{"t":"x","e":null}`, `no value at "e"`},
		{"bad rfc3339", &v1alpha1.ExpirySpec{Path: "e", Format: v1alpha1.ExpiryRFC3339}, `{"t":"x","e":"tomorrow"}`, "not an RFC 3339 time"},
		{"JWT without exp", jwtExpiry, `{"t":"` + signedJWT(t, jwt.MapClaims{"sub": "x"}) + `"}`, "no exp claim"},
		{"JWT exp not a number", jwtExpiry, `{"t":"` + signedJWT(t, jwt.MapClaims{"exp": "later"}) + `"}`, "exp claim is not a number"},
		{"malformed JWT", jwtExpiry, `{"t":"not.a.jwt"}`, "not a well-formed JWT"},
		{"opaque token as JWT", jwtExpiry, `{"t":"opaque"}`, "not a well-formed JWT"},
		{"expired JWT", jwtExpiry, `{"t":"` + signedJWT(t, jwt.MapClaims{"exp": testNow.Add(-time.Minute).Unix()}) + `"}`, "not in the future"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := read(&v1alpha1.ResponseSpec{Token: "t", Expiry: tt.expiry}, 200, tt.body)
			e := asError(t, err)
			if e.Class != ClassInvalidResponse || !strings.Contains(e.Error(), tt.want) {
				t.Errorf("got %v: %q, want InvalidResponse containing %q", e.Class, e.Error(), tt.want)
			}
		})
	}
}

func TestResponseFields(t *testing.T) {
	spec := &v1alpha1.ResponseSpec{
		Token:   "data.secret",
		TokenID: "data.id",
		Copy: []v1alpha1.CopyField{
			{Key: "org", Path: "organization_id"},
			{Key: "count", Path: "count"},
			{Key: "scopes", Path: "scopes"},
			{Key: "first", Path: "scopes.0"},
			{Key: "absent", Path: "not_there"},
		},
		RefreshToken: &v1alpha1.RefreshTokenSpec{Path: "refresh_token",
			Expiry: &v1alpha1.ExpirySpec{Path: "refresh_token_expires_in", Format: v1alpha1.ExpiryRelativeSeconds}},
	}
	body := `{"data":{"id":42,"secret":"s3"},"organization_id":"org_1","count":1.50,"scopes":["a","b"],` +
		`"refresh_token":"rt","refresh_token_expires_in":"86400"}`
	token, err := read(spec, 201, body)
	if err != nil {
		t.Fatal(err)
	}
	if token.Value != "s3" || token.ID != "42" || token.RefreshToken != "rt" {
		t.Errorf("token %q id %q refresh %q", token.Value, token.ID, token.RefreshToken)
	}
	wantTime(t, "RefreshTokenExpiresAt", token.RefreshTokenExpiresAt, testNow.Add(24*time.Hour))
	wantFields(t, token.Fields, map[string]string{"org": "org_1", "count": "1.50", "scopes": `["a","b"]`, "first": "a"})
}

func TestInvalidResponses(t *testing.T) {
	spec := &v1alpha1.ResponseSpec{Token: "access_token", TokenID: "id"}
	tests := []struct {
		name string
		body string
		want string
	}{
		{"not JSON", `<html>oops</html>`, "not JSON"},
		{"empty", ``, "not JSON"},
		{"trailing garbage", `{"access_token":"t","id":"1"} x`, "not JSON"},
		{"two documents", `{"access_token":"t","id":"1"}{}`, "not JSON"},
		{"no token", `{"id":"1"}`, `no token at "access_token"`},
		{"empty token", `{"access_token":"","id":"1"}`, "not a non-empty string"},
		{"token not a string", `{"access_token":{"v":1},"id":"1"}`, "not a non-empty string"},
		{"no id", `{"access_token":"t"}`, `no token id at "id"`},
		{"a list", `["access_token"]`, `no token at "access_token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := read(spec, 200, tt.body)
			e := asError(t, err)
			if e.Class != ClassInvalidResponse || !strings.Contains(e.Error(), tt.want) {
				t.Errorf("got %v: %q, want InvalidResponse containing %q", e.Class, e.Error(), tt.want)
			}
		})
	}
}

// TestErrorEnvelopes reads each provider's documented error shape.
func TestErrorEnvelopes(t *testing.T) {
	long := strings.Repeat("é", 300)
	tests := []struct {
		name      string
		errSpec   *v1alpha1.ErrorSpec
		success   *v1alpha1.SuccessSpec
		status    int
		body      string
		wantClass Class
		wantCode  string
		wantMsg   string
	}{
		{"OAuth2", &v1alpha1.ErrorSpec{Code: "error", Message: "error_description"}, nil,
			400, `{"error":"invalid_grant","error_description":"refresh token expired"}`, ClassBadRequest, "invalid_grant", "refresh token expired"},
		{"authentication service", &v1alpha1.ErrorSpec{Code: "error_code", Message: "error_description"}, nil,
			400, `{"error_code":"missing_input","error_description":"Value for element {client_txn_id} is required"}`,
			ClassBadRequest, "missing_input", "Value for element {client_txn_id} is required"},
		{"banking", &v1alpha1.ErrorSpec{Code: "errorInfo.errorCode", Message: "errorInfo.errorMessage"}, nil,
			401, `{"statusMessage":"Unauthorized","errorInfo":{"errorType":"USER_ERROR","errorCode":"invalid_client","errorMessage":"bad key"}}`,
			ClassUnauthorized, "invalid_client", "bad key"},
		{"invoicing failure with 400", &v1alpha1.ErrorSpec{Message: "message"}, &v1alpha1.SuccessSpec{Path: "success", Equals: raw("true")},
			400, `{"success":false,"message":"description is invalid"}`, ClassBadRequest, "", "description is invalid"},
		{"invoicing failure with 200", &v1alpha1.ErrorSpec{Message: "message"}, &v1alpha1.SuccessSpec{Path: "success", Equals: raw("true")},
			200, `{"success":false,"message":"quota reached"}`, ClassInvalidResponse, "", "quota reached"},
		{"success predicate without message", nil, &v1alpha1.SuccessSpec{Path: "status", Equals: raw(`"ok"`)},
			200, `{"status":"failed","access_token":"t"}`, ClassInvalidResponse, "", `response reports failure (status is not ok)`},
		{"numeric code", &v1alpha1.ErrorSpec{Code: "code", Message: "detail.text"}, nil,
			500, `{"code":5001,"detail":{"text":"line one\nline two"}}`, ClassRetryable, "5001", "line one line two"},
		{"long message shortened", &v1alpha1.ErrorSpec{Message: "message"}, nil,
			400, `{"message":"` + long + `"}`, ClassBadRequest, "", long[:196] + "..."},
		{"not JSON", &v1alpha1.ErrorSpec{Message: "message"}, nil, 502, `<html>Bad gateway</html>`, ClassRetryable, "", ""},
		{"no error spec", nil, nil, 403, `{"message":"not shown"}`, ClassUnauthorized, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := &v1alpha1.ResponseSpec{Token: "access_token", Error: tt.errSpec, Success: tt.success}
			_, err := read(spec, tt.status, tt.body)
			e := asError(t, err)
			if e.Class != tt.wantClass || e.Code != tt.wantCode || e.Message != tt.wantMsg {
				t.Errorf("got %v code %q message %q, want %v %q %q", e.Class, e.Code, e.Message, tt.wantClass, tt.wantCode, tt.wantMsg)
			}
			if tt.status != 200 && e.StatusCode != tt.status {
				t.Errorf("StatusCode = %d, want %d", e.StatusCode, tt.status)
			}
			if strings.Contains(e.Error(), "not shown") || strings.Contains(e.Error(), "Bad gateway") {
				t.Errorf("error %q copies body text the issuer did not point at", e.Error())
			}
		})
	}
}

func TestSuccessPredicateMatches(t *testing.T) {
	spec := &v1alpha1.ResponseSpec{Token: "data.secret", Success: &v1alpha1.SuccessSpec{Path: "code", Equals: raw("0")}}
	token, err := read(spec, 200, `{"code":0.0,"data":{"secret":"s"}}`)
	if err != nil || token.Value != "s" {
		t.Fatalf("got %v, %v; want the token (0.0 equals 0)", token, err)
	}
}

func TestStatusClasses(t *testing.T) {
	date := testNow.Add(90 * time.Second).Format(http.TimeFormat)
	tests := []struct {
		status     int
		header     []string
		wantClass  Class
		retryAfter time.Duration
	}{
		{401, nil, ClassUnauthorized, 0},
		{403, nil, ClassUnauthorized, 0},
		{400, nil, ClassBadRequest, 0},
		{404, nil, ClassBadRequest, 0},
		{409, nil, ClassBadRequest, 0},
		{408, nil, ClassRetryable, 0},
		{429, []string{"Retry-After", "120"}, ClassRateLimited, 2 * time.Minute},
		{429, []string{"Retry-After", date}, ClassRateLimited, 90 * time.Second},
		{429, nil, ClassRateLimited, 0},
		{500, nil, ClassRetryable, 0},
		{503, []string{"Retry-After", "30"}, ClassRetryable, 30 * time.Second},
		{302, nil, ClassInvalidResponse, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status, tt.header), func(t *testing.T) {
			_, err := read(&v1alpha1.ResponseSpec{Token: "t"}, tt.status, `{}`, tt.header...)
			e := asError(t, err)
			if e.Class != tt.wantClass || e.RetryAfter != tt.retryAfter || e.StatusCode != tt.status {
				t.Errorf("got %v retry %v status %d, want %v %v", e.Class, e.RetryAfter, e.StatusCode, tt.wantClass, tt.retryAfter)
			}
			if !strings.Contains(e.Error(), fmt.Sprint(tt.status)) {
				t.Errorf("error %q does not name the status", e.Error())
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	tests := []struct {
		value string
		want  time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-5", 0},
		{" 7 ", 7 * time.Second},
		{"99999999999999999999", 0},
		{"999999999", 24 * time.Hour},
		{testNow.Add(-time.Hour).Format(http.TimeFormat), 0},
		{testNow.Add(time.Hour).Format(http.TimeFormat), time.Hour},
		{testNow.Add(90 * 24 * time.Hour).Format(http.TimeFormat), 24 * time.Hour},
		{"soon", 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.value, testNow); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.value, got, tt.want)
		}
	}
}

func TestClassTerminal(t *testing.T) {
	terminal := map[Class]bool{ClassUnauthorized: true, ClassBadRequest: true, ClassInvalidParameters: true, ClassInvalidConfig: true}
	for class := ClassRetryable; class <= ClassInvalidConfig; class++ {
		if class.Terminal() != terminal[class] {
			t.Errorf("%v.Terminal() = %v", class, class.Terminal())
		}
		if strings.HasPrefix(class.String(), "Class(") {
			t.Errorf("class %d has no name", class)
		}
	}
}
