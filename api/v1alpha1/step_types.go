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

package v1alpha1

// StepValueToken names a step's token in a step credential.
const StepValueToken = "Token"

// IssuerStep is one call made before the issuer's request: its token (and
// the fields its response copies) are values for later steps and the request,
// through a credential with a step source. A step's result is never written
// anywhere; it is kept in the operator's memory and reused while it is valid.
// +kubebuilder:validation:XValidation:rule="has(self.request.url)",message="steps[].request.url is required"
// +kubebuilder:validation:XValidation:rule="!has(self.response.refreshToken) && !has(self.response.tokenID)",message="a step's token is neither refreshed nor revoked: refreshToken and tokenID have no meaning in a step"
type IssuerStep struct {
	// name of the step, by which credentials refer to its result.
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=63
	// +required
	Name string `json:"name"`

	// request is the step's call. It may use every value source, credentials
	// with a step source naming earlier steps included.
	// +required
	Request RequestSpec `json:"request"`

	// response says where the step's token, its expiry and copied fields are.
	// Copied fields are values for later steps (credential step.value), never
	// written into the Secret.
	// +required
	Response ResponseSpec `json:"response"`
}

// StepSource is the result of an earlier step used as a credential.
type StepSource struct {
	// name of the step.
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=63
	// +required
	Name string `json:"name"`

	// value is Token (the step's token, the default) or the key of one of the
	// step's response.copy fields.
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Value string `json:"value,omitempty"`
}
