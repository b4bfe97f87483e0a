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

// AWSCredentials is an AWS access key: its id and secret, and the session
// token of temporary credentials (from STS). The secret and the session token
// come from the issuer's credentials, never from a literal.
// +kubebuilder:validation:XValidation:rule="!has(self.accessKeyID.json)",message="json literals are for JSON body fields; use value"
// +kubebuilder:validation:XValidation:rule="has(self.secretAccessKey.credential)",message="secretAccessKey must be a credential (a Secret key or an earlier step's value), never a literal"
// +kubebuilder:validation:XValidation:rule="!has(self.sessionToken) || has(self.sessionToken.credential)",message="sessionToken must be a credential (a Secret key or an earlier step's value), never a literal"
type AWSCredentials struct {
	// accessKeyID is the access key id (AKIA... for an IAM user's key,
	// ASIA... for temporary credentials).
	// +required
	AccessKeyID ValueSource `json:"accessKeyID"`

	// secretAccessKey is the secret of the access key: a credential of the
	// issuer (a Secret key, or an earlier step's copied field).
	// +required
	SecretAccessKey ValueSource `json:"secretAccessKey"`

	// sessionToken is the session token of temporary credentials, sent as
	// X-Amz-Security-Token: a credential of the issuer. Omit it for an IAM
	// user's long-term key.
	// +optional
	SessionToken *ValueSource `json:"sessionToken,omitempty"`
}

// AWSSigV4 signs a request with AWS Signature Version 4.
type AWSSigV4 struct {
	AWSCredentials `json:",inline"`

	// region of the credential scope: us-east-1, eu-west-1 ...
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^[a-z0-9]+(-[a-z0-9]+)*$`
	// +required
	Region string `json:"region"`

	// service of the credential scope, the signing name AWS documents for
	// the API: ecr, sts, codeartifact, execute-api ...
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[a-z0-9]+(-[a-z0-9]+)*$`
	// +required
	Service string `json:"service"`

	// contentSHA256Header also sends the signed payload hash as the
	// X-Amz-Content-Sha256 header, for services that require it (S3).
	// +optional
	ContentSHA256Header bool `json:"contentSHA256Header,omitempty"`

	// unsignedPayload signs UNSIGNED-PAYLOAD instead of the body's SHA-256,
	// for services that accept it (S3). The body is then not covered by the
	// signature.
	// +optional
	UnsignedPayload bool `json:"unsignedPayload,omitempty"`
}

// AWSPresignedURL makes the token a URL pre-signed with AWS Signature
// Version 4, made without a call: an EKS token or an RDS IAM authentication
// token. Exactly one of eks or rds.
// +kubebuilder:validation:XValidation:rule="has(self.eks) != has(self.rds)",message="set exactly one of eks or rds"
type AWSPresignedURL struct {
	AWSCredentials `json:",inline"`

	// region the URL is signed for: the EKS cluster's or the database's.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^[a-z0-9]+(-[a-z0-9]+)*$`
	// +required
	Region string `json:"region"`

	// eks makes a token for an EKS cluster's Kubernetes API, as
	// aws-iam-authenticator and "aws eks get-token" do: "k8s-aws-v1." and the
	// unpadded base64url of a pre-signed STS GetCallerIdentity URL (60s)
	// that signs the cluster's name. It is valid 15 minutes; tokenmint
	// counts 14.
	// +optional
	EKS *AWSEKSToken `json:"eks,omitempty"`

	// rds makes an IAM authentication token of an RDS or Aurora database
	// (the password of a database user with IAM authentication): the
	// pre-signed "connect" URL of host:port for the user, without a scheme,
	// valid 15 minutes.
	// +optional
	RDS *AWSRDSToken `json:"rds,omitempty"`
}

// AWSEKSToken names the EKS cluster a token is for.
type AWSEKSToken struct {
	// clusterName is the name of the EKS cluster, signed as the
	// x-k8s-aws-id header.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=100
	// +kubebuilder:validation:Pattern=`^[0-9A-Za-z][A-Za-z0-9_-]*$`
	// +required
	ClusterName string `json:"clusterName"`

	// stsHost is the STS endpoint the URL is signed for. Default:
	// sts.<region>.amazonaws.com (the regional endpoint).
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	STSHost string `json:"stsHost,omitempty"`
}

// AWSRDSToken names the database and user an RDS token is for.
type AWSRDSToken struct {
	// host is the database endpoint's DNS name
	// (mydb.123456789012.us-east-1.rds.amazonaws.com).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$`
	// +required
	Host string `json:"host"`

	// port the database listens on (3306 for MySQL, 5432 for PostgreSQL).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +required
	Port int32 `json:"port"`

	// user is the database user, created for IAM authentication.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_$@.-]+$`
	// +required
	User string `json:"user"`
}
