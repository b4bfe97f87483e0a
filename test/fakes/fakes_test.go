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

package fakes

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	clocktesting "k8s.io/utils/clock/testing"
)

var fakeNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// exchange is one request to a fake and what its answer must hold.
type exchange struct {
	name   string
	method string
	path   string
	header map[string]string
	body   string

	status int
	want   map[string]any // top-level fields that must be equal
	absent []string       // top-level fields that must not be there
}

// run sends each exchange in order to h and checks the answers.
func run(t *testing.T, h http.Handler, exchanges []exchange) {
	t.Helper()
	for _, x := range exchanges {
		t.Run(x.name, func(t *testing.T) {
			status, body, _ := send(h, x)
			if status != x.status {
				t.Errorf("status = %d, want %d (body %v)", status, x.status, body)
			}
			for key, want := range x.want {
				if got := fmt.Sprint(body[key]); got != fmt.Sprint(want) {
					t.Errorf("%s = %s, want %v", key, got, want)
				}
			}
			for _, key := range x.absent {
				if _, present := body[key]; present {
					t.Errorf("%s must not be in the answer: %v", key, body)
				}
			}
		})
	}
}

func send(h http.Handler, x exchange) (int, map[string]any, http.Header) {
	method := x.method
	if method == "" {
		method = http.MethodPost
	}
	req := httptest.NewRequest(method, x.path, strings.NewReader(x.body))
	for k, v := range x.header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var body map[string]any
	decoder := json.NewDecoder(rec.Body)
	decoder.UseNumber()
	_ = decoder.Decode(&body)
	return rec.Code, body, rec.Header()
}

func jsonHeaders(extra ...string) map[string]string {
	h := map[string]string{"Content-Type": "application/json"}
	for i := 0; i+1 < len(extra); i += 2 {
		h[extra[i]] = extra[i+1]
	}
	return h
}

func TestTransactionAPI(t *testing.T) {
	fake := NewTransactionAPI("auth-token")
	fake.Clock = clocktesting.NewFakeClock(fakeNow)
	good := `{"expiry_seconds": 3600, "scopes": {"organization_id": "org_9f8b7c6d5e4a3b2c1d0e", "scopes": ["transactions:write"]}}`
	withExpiry := func(v string) string { return strings.Replace(good, "3600", v, 1) }
	bearer := jsonHeaders("Authorization", "Bearer auth-token")
	run(t, fake, []exchange{
		{name: "no bearer", path: TransactionAPIPath, header: jsonHeaders(), body: good, status: 401},
		{name: "wrong bearer", path: TransactionAPIPath, header: jsonHeaders("Authorization", "Bearer nope"), body: good, status: 401},
		{name: "too short", path: TransactionAPIPath, header: bearer, body: withExpiry("299"), status: 400},
		{name: "too long", path: TransactionAPIPath, header: bearer, body: withExpiry("86401"), status: 400},
		{name: "as a string", path: TransactionAPIPath, header: bearer, body: withExpiry(`"3600"`), status: 400},
		{name: "no scopes", path: TransactionAPIPath, header: bearer, body: `{"expiry_seconds": 3600}`, status: 400},
		{name: "malformed", path: TransactionAPIPath, header: bearer, body: `{"expiry_seconds": 3600`, status: 400},
		{name: "not JSON", path: TransactionAPIPath, header: map[string]string{"Authorization": "Bearer auth-token"}, body: good, status: 400},
		{name: "other organization", path: TransactionAPIPath, header: bearer, body: strings.Replace(good, "org_9f", "org_00", 1), status: 401},
		{name: "lower bound", path: TransactionAPIPath, header: bearer, body: withExpiry("300"), status: 200,
			want: map[string]any{"expiry": fakeNow.Add(300 * time.Second).Unix()}},
		{name: "issued", path: TransactionAPIPath, header: bearer, body: good, status: 200, want: map[string]any{
			"expiry": fakeNow.Add(time.Hour).Unix(), "organization_id": "org_9f8b7c6d5e4a3b2c1d0e",
			"organization_name": "Cable Financial Services", "scopes": "map[organization_id:org_9f8b7c6d5e4a3b2c1d0e scopes:[transactions:write]]",
		}},
	})
	issued := fake.Issued()
	if len(issued) != 2 || fake.CallsBy(OutcomeIssued) != 2 || fake.CallsBy(OutcomeRejected) != 6 || fake.CallsBy(OutcomeUnauthorized) != 3 {
		t.Fatalf("issued %d, counts %v", len(issued), fake.byOut)
	}
	// An access token cannot mint another one, as the page says.
	status, body, _ := send(fake, exchange{path: TransactionAPIPath, header: jsonHeaders("Authorization", "Bearer "+issued[0].Value), body: good})
	if status != 401 || !strings.Contains(fmt.Sprint(body["message"]), "access token cannot be used") {
		t.Errorf("an access token as bearer: %d %v", status, body)
	}
	fake.SetLifetime(30 * time.Second)
	if _, body, _ := send(fake, exchange{path: TransactionAPIPath, header: bearer, body: good}); fmt.Sprint(body["expiry"]) != fmt.Sprint(fakeNow.Add(30*time.Second).Unix()) {
		t.Errorf("Lifetime does not shorten the token: %v", body)
	}
}

func TestInvoicingAPI(t *testing.T) {
	fake := NewInvoicingAPI("api-key")
	bearer := jsonHeaders("Authorization", "Bearer api-key")
	body := func(description string) string {
		return `{"description": "` + description + `", "scopes": ["invoices.read"]}`
	}
	run(t, fake, []exchange{
		{name: "no bearer", path: InvoicingAPIPath, header: jsonHeaders(), body: body("Postman"), status: 401,
			want: map[string]any{"success": false, "message": "Unauthorized"}},
		{name: "too short", path: InvoicingAPIPath, header: bearer, body: body("abc"), status: 400, want: map[string]any{"success": false}},
		{name: "bad characters", path: InvoicingAPIPath, header: bearer, body: body("my-token!"), status: 400},
		{name: "too long", path: InvoicingAPIPath, header: bearer, body: body(strings.Repeat("a", 49)), status: 400},
		{name: "no description", path: InvoicingAPIPath, header: bearer, body: `{"scopes": []}`, status: 400},
		{name: "scopes not a list", path: InvoicingAPIPath, header: bearer, body: `{"description": "Postman", "scopes": "x"}`, status: 400},
		{name: "created", path: InvoicingAPIPath, header: bearer, body: body("Billing (prod) 2"), status: 200,
			want: map[string]any{"success": true}, absent: []string{"expiry", "expires_in"}},
	})
	issued := fake.Issued()
	if len(issued) != 1 || !strings.HasPrefix(issued[0].ID, "tkn_") || !fake.Valid(issued[0].Value) {
		t.Fatalf("issued %v", issued)
	}
	run(t, fake, []exchange{
		{name: "revoke without bearer", method: http.MethodDelete, path: InvoicingAPIPath + "/" + issued[0].ID, status: 401},
		{name: "revoke", method: http.MethodDelete, path: InvoicingAPIPath + "/" + issued[0].ID, header: bearer, status: 200, want: map[string]any{"success": true}},
		{name: "revoke again", method: http.MethodDelete, path: InvoicingAPIPath + "/" + issued[0].ID, header: bearer, status: 404},
	})
	if fake.Valid(issued[0].Value) {
		t.Error("a revoked token is still valid")
	}
}

func TestAuthenticationService(t *testing.T) {
	fake := NewAuthenticationService("admin", "pw")
	clock := clocktesting.NewFakeClock(fakeNow)
	fake.Clock = clock
	body := func(txn string, drop string) string {
		fields := map[string]string{"client_txn_id": txn, "client_app_id": "HEDMORAL_OPS", "username": "admin", "password": "pw"}
		delete(fields, drop)
		b, _ := json.Marshal(fields)
		return string(b)
	}
	const txn1, txn2 = "6f1c1b56-8d1e-4c3e-9a0e-0b7d7c9f0a11", "6f1c1b56-8d1e-4c3e-9a0e-0b7d7c9f0a12"
	var exchanges []exchange
	for _, field := range authenticationFields {
		exchanges = append(exchanges, exchange{name: "missing " + field, path: AuthenticationServicePath, header: jsonHeaders(),
			body: body(txn1, field), status: 400, want: map[string]any{
				"error_code": "missing_input", "error_description": "Value for element {" + field + "} is required"}})
	}
	exchanges = append(exchanges,
		exchange{name: "not a UUID", path: AuthenticationServicePath, header: jsonHeaders(), body: body("42", ""), status: 400,
			want: map[string]any{"error_code": "invalid_input"}},
		exchange{name: "wrong version", path: AuthenticationServicePath, header: jsonHeaders("CA_com_apiVersion", "2.0"), body: body(txn1, ""), status: 400},
		exchange{name: "issued", path: AuthenticationServicePath, header: jsonHeaders("CA_com_apiVersion", "1.0"), body: body(txn1, ""), status: 200},
		exchange{name: "repeated client_txn_id", path: AuthenticationServicePath, header: jsonHeaders(), body: body(txn1, ""), status: 400,
			want: map[string]any{"error_code": "invalid_input"}},
		exchange{name: "wrong password", path: AuthenticationServicePath, header: jsonHeaders(),
			body: strings.Replace(body(txn2, ""), `"pw"`, `"nope"`, 1), status: 401, want: map[string]any{"error_code": "invalid_credentials"}},
	)
	run(t, fake, exchanges)

	issued := fake.Issued()
	if len(issued) != 1 {
		t.Fatalf("issued %d tokens, want 1", len(issued))
	}
	claims := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(issued[0].Value, claims, func(*jwt.Token) (any, error) { return fake.SigningKey, nil },
		jwt.WithTimeFunc(clock.Now), jwt.WithValidMethods([]string{"HS256"})); err != nil {
		t.Fatalf("the token is not a valid HS256 JWT: %v", err)
	}
	if exp, _ := claims.GetExpirationTime(); exp == nil || !exp.Equal(fakeNow.Add(time.Hour)) {
		t.Errorf("exp = %v, want an hour from now", exp)
	}
	clock.Step(time.Hour)
	if fake.Valid(issued[0].Value) {
		t.Error("an expired token is still valid")
	}
}

func TestBankingAPI(t *testing.T) {
	fake := NewBankingAPI("key", "secret", "user", "pw")
	fake.Lifetime = 10 * time.Minute
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("key:secret"))
	headers := func(drop string, extra ...string) map[string]string {
		h := map[string]string{"Authorization": basic, "User-Agent": "MyApp/1.0", "di_tid": "123e4567-e89b-12d3-a456-426655440000",
			"Content-Type": "application/x-www-form-urlencoded"}
		delete(h, drop)
		for i := 0; i+1 < len(extra); i += 2 {
			h[extra[i]] = extra[i+1]
		}
		return h
	}
	const password = "grant_type=password&username=user&password=pw"
	run(t, fake, []exchange{
		{name: "no basic", path: BankingAPIPath, header: headers("Authorization"), body: password, status: 401, want: map[string]any{
			"statusMessage": "Unauthorized",
			"errorInfo":     "map[errorCode:invalid_client errorMessage:Invalid consumer key or secret errorType:USER_ERROR]",
		}},
		{name: "wrong secret", path: BankingAPIPath, header: headers("", "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("key:nope"))), body: password, status: 401},
		{name: "no user-agent format", path: BankingAPIPath, header: headers("", "User-Agent", "tokenmint"), body: password, status: 400},
		{name: "no di_tid", path: BankingAPIPath, header: headers("di_tid"), body: password, status: 400},
		{name: "braced di_tid", path: BankingAPIPath, header: headers("", "di_tid", "{123e4567-e89b-12d3-a456-426655440000}"), body: password, status: 400},
		{name: "JSON body", path: BankingAPIPath, header: headers("", "Content-Type", "application/json"),
			body: `{"grant_type":"password","username":"user","password":"pw"}`, status: 400},
		{name: "wrong password", path: BankingAPIPath, header: headers(""), body: "grant_type=password&username=user&password=x", status: 401},
		{name: "unknown grant", path: BankingAPIPath, header: headers(""), body: "grant_type=client_credentials", status: 400},
		{name: "password grant", path: BankingAPIPath, header: headers(""), body: password, status: 200,
			want: map[string]any{"expires_in": "600", "refresh_token_expires_in": "86400", "di_fiid": "DI1234", "di_ficustomer": "100200300"}},
	})
	first := fake.Issued()[0]
	_, body, _ := send(fake, exchange{path: BankingAPIPath, header: headers(""), body: password})
	if _, isString := body["expires_in"].(string); !isString {
		t.Errorf("expires_in must be a string, as the page shows: %#v", body["expires_in"])
	}
	refresh := "grant_type=refresh_token&refresh_token=" + first.RefreshToken
	run(t, fake, []exchange{
		{name: "refresh", path: BankingAPIPath, header: headers(""), body: refresh, status: 200},
		{name: "refresh token reused", path: BankingAPIPath, header: headers(""), body: refresh, status: 400},
	})
	if fake.CallsBy(OutcomeRefreshed) != 1 || fake.CallsBy(OutcomeIssued) != 2 {
		t.Errorf("counts %v", fake.byOut)
	}
}

func TestOAuth2Server(t *testing.T) {
	fake := NewOAuth2Server("client", "secret")
	fake.Users["alice"] = "pw"
	fake.Scopes = []string{"read", "write"}
	basic := map[string]string{"Content-Type": "application/x-www-form-urlencoded",
		"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("client:secret"))}
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	run(t, fake, []exchange{
		{name: "client credentials with Basic", path: OAuth2TokenPath, header: basic, body: "grant_type=client_credentials&scope=read", status: 200,
			want: map[string]any{"token_type": "Bearer", "expires_in": 3600, "scope": "read"}, absent: []string{"refresh_token"}},
		{name: "client credentials in the body", path: OAuth2TokenPath, header: form, body: "grant_type=client_credentials&client_id=client&client_secret=secret", status: 200},
		{name: "both methods", path: OAuth2TokenPath, header: basic, body: "grant_type=client_credentials&client_id=client&client_secret=secret", status: 400,
			want: map[string]any{"error": "invalid_request"}},
		{name: "wrong secret", path: OAuth2TokenPath, header: form, body: "grant_type=client_credentials&client_id=client&client_secret=x", status: 401,
			want: map[string]any{"error": "invalid_client"}},
		{name: "no client", path: OAuth2TokenPath, header: form, body: "grant_type=client_credentials", status: 401},
		{name: "bad scope", path: OAuth2TokenPath, header: basic, body: "grant_type=client_credentials&scope=admin", status: 400, want: map[string]any{"error": "invalid_scope"}},
		{name: "no grant", path: OAuth2TokenPath, header: basic, body: "scope=read", status: 400, want: map[string]any{"error": "invalid_request"}},
		{name: "unknown grant", path: OAuth2TokenPath, header: basic, body: "grant_type=implicit", status: 400, want: map[string]any{"error": "unsupported_grant_type"}},
		{name: "wrong user password", path: OAuth2TokenPath, header: basic, body: "grant_type=password&username=alice&password=x", status: 400, want: map[string]any{"error": "invalid_grant"}},
		{name: "JSON body", path: OAuth2TokenPath, header: map[string]string{"Content-Type": "application/json"}, body: "{}", status: 400},
		{name: "password", path: OAuth2TokenPath, header: basic, body: "grant_type=password&username=alice&password=pw", status: 200},
	})
	status, _, header := send(fake, exchange{path: OAuth2TokenPath, body: "grant_type=client_credentials", header: map[string]string{
		"Content-Type": "application/x-www-form-urlencoded", "Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("client:x"))}})
	if status != 401 || header.Get("WWW-Authenticate") == "" {
		t.Errorf("a failed Basic attempt must answer 401 with WWW-Authenticate (RFC 6749 5.2): %d %v", status, header)
	}
	issued := fake.Issued()
	withRefresh := issued[len(issued)-1]
	refresh := "grant_type=refresh_token&refresh_token=" + withRefresh.RefreshToken
	run(t, fake, []exchange{
		{name: "refresh", path: OAuth2TokenPath, header: basic, body: refresh, status: 200},
		{name: "refresh reused", path: OAuth2TokenPath, header: basic, body: refresh, status: 400, want: map[string]any{"error": "invalid_grant"}},
		{name: "revoke", path: OAuth2RevokePath, header: basic, body: "token=" + issued[0].Value, status: 200},
		{name: "revoke unknown", path: OAuth2RevokePath, header: basic, body: "token=nope", status: 200},
	})
	if fake.Valid(issued[0].Value) || !fake.Valid(issued[1].Value) {
		t.Error("revocation hit the wrong token")
	}
}

func TestFaults(t *testing.T) {
	fake := NewOAuth2Server("client", "secret")
	ok := exchange{path: OAuth2TokenPath, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
		body: "grant_type=client_credentials&client_id=client&client_secret=secret"}
	fake.FailNext(2, Fault{Status: 429, Header: http.Header{"Retry-After": {"7"}}, Body: `{"error":"slow_down"}`})
	for i, want := range []int{429, 429, 200} {
		status, body, header := send(fake, ok)
		if status != want {
			t.Errorf("call %d: status %d, want %d", i, status, want)
		}
		if want == 429 && (header.Get("Retry-After") != "7" || body["error"] != "slow_down") {
			t.Errorf("call %d: fault headers %v body %v", i, header, body)
		}
	}
	if fake.Calls() != 3 || fake.CallsBy(OutcomeFault) != 2 || fake.CallsBy(OutcomeIssued) != 1 || len(fake.Issued()) != 1 {
		t.Errorf("calls %d, by outcome %v, issued %d", fake.Calls(), fake.byOut, len(fake.Issued()))
	}

	fake.SetFaultHook(func(r *http.Request) *Fault {
		if r.Header.Get("X-Break") != "" {
			return &Fault{Status: 503}
		}
		return nil
	})
	broken := ok
	broken.header = map[string]string{"Content-Type": "application/x-www-form-urlencoded", "X-Break": "1"}
	if status, _, _ := send(fake, broken); status != 503 {
		t.Errorf("hook: status %d, want 503", status)
	}
	if status, _, _ := send(fake, ok); status != 200 {
		t.Errorf("after hook: status %d, want 200", status)
	}
}

// TestHangFault checks a hanging answer ends when the client gives up.
func TestHangFault(t *testing.T) {
	fake := NewInvoicingAPI("key")
	srv := Start(t, fake)
	fake.FailNext(1, Fault{Hang: true})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+InvoicingAPIPath, strings.NewReader(`{}`))
	if resp, err := srv.Client().Do(req); err == nil {
		_ = resp.Body.Close()
		t.Fatal("a hanging fault answered")
	}
	if !strings.HasPrefix(srv.Listener.Addr().String(), "127.0.0.1:") {
		t.Errorf("the fake listens on %s, want 127.0.0.1", srv.Listener.Addr())
	}
	if fake.CallsBy(OutcomeFault) != 1 {
		t.Errorf("faults = %d, want 1", fake.CallsBy(OutcomeFault))
	}
}

// TestListenNeverReusesAPort checks that a fake started after another was
// closed never gets its port: a client still calling the closed fake's URL
// must fail to connect, not reach the new fake.
func TestListenNeverReusesAPort(t *testing.T) {
	seen := map[string]bool{}
	for range 300 {
		srv := Start(t, NewInvoicingAPI("key"))
		addr := srv.Listener.Addr().String()
		if seen[addr] {
			t.Fatalf("%s was handed out twice", addr)
		}
		seen[addr] = true
		srv.Close()
	}
}
