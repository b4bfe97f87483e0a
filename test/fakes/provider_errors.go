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
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// The failed answers of providers as their documentation shows them, to be
// served by any fake through SetFaultHook.

// AWSThrottlingXML is the answer of an AWS Query API (STS among them) that
// throttles a caller: 400 with <ErrorResponse><Error><Code>Throttling</Code>.
func AWSThrottlingXML() *Fault {
	return &Fault{
		Status: http.StatusBadRequest,
		Header: http.Header{"Content-Type": {"text/xml"}},
		Body: `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">` +
			`<Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>` +
			`<RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ErrorResponse>`,
	}
}

// AWSThrottlingJSON is the answer of an AWS JSON-protocol API that throttles
// a caller: 400 with {"__type": "ThrottlingException", "message": ...}.
func AWSThrottlingJSON() *Fault {
	return &Fault{
		Status: http.StatusBadRequest,
		Header: http.Header{"Content-Type": {"application/x-amz-json-1.1"}},
		Body:   `{"__type":"ThrottlingException","message":"Rate exceeded"}`,
	}
}

// VaultErrors is HashiCorp Vault's failed answer: status with
// {"errors": [messages...]}. A 429 (a rate limit quota) carries Retry-After,
// the seconds until the quota's interval ends, when retryAfter is set.
func VaultErrors(status int, retryAfter time.Duration, messages ...string) *Fault {
	body, _ := json.Marshal(map[string][]string{"errors": messages})
	f := &Fault{Status: status, Header: http.Header{"Content-Type": {"application/json"}}, Body: string(body)}
	if retryAfter > 0 {
		f.Header.Set("Retry-After", strconv.Itoa(int(retryAfter/time.Second)))
	}
	return f
}
