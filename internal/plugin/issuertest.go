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

package plugin

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/issuer"
	"github.com/tokenmint/tokenmint/internal/secret"
)

// Bounds the manager applies too.
const (
	// maxCredentialBytes is the largest credential value read, as the manager.
	maxCredentialBytes = 16 << 10
	// maxTimeout is the longest call, whatever an issuer says, as the manager.
	maxTimeout = 60 * time.Second
)

// TestView is what test shows: the request and, with --send, its result.
type TestView struct {
	Issuer string `json:"issuer"`
	// CredentialsNamespace is where the issuer's credential Secrets were read.
	CredentialsNamespace string                  `json:"credentialsNamespace"`
	Request              *issuer.RenderedRequest `json:"request"`
	Result               *ResultView             `json:"result,omitempty"`
	Error                *ErrorView              `json:"error,omitempty"`
}

// ResultView is the answer of one real call, mapped as the manager maps it;
// the token and the refresh token are described, never shown.
type ResultView struct {
	IssuedAt     *Moment           `json:"issuedAt"`
	ExpiresAt    *Moment           `json:"expiresAt,omitempty"`
	Token        *TokenView        `json:"token"`
	RefreshToken *RefreshTokenView `json:"refreshToken,omitempty"`
	TokenID      string            `json:"tokenID,omitempty"`
	Fields       map[string]string `json:"fields,omitempty"`
	// Revocation says what became of the token: "revoked", "not revoked: ..."
	// or "the issuer cannot revoke".
	Revocation string `json:"revocation"`
}

// RefreshTokenView describes a refresh token without showing it.
type RefreshTokenView struct {
	Bytes     int     `json:"bytes"`
	ExpiresAt *Moment `json:"expiresAt,omitempty"`
}

// ErrorView is a failed call, as the manager would report it.
type ErrorView struct {
	Class      string `json:"class"`
	StatusCode int    `json:"statusCode,omitempty"`
	Message    string `json:"message"`
}

type testOptions struct {
	*Options
	cluster                  bool
	params                   []string
	send                     bool
	allowPrivateDestinations bool
	revoke                   bool
	accessToken              string
	credentialsNamespace     string
	output                   string
}

func newTestCommand(o *Options) *cobra.Command {
	t := &testOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "test ISSUER | --accesstoken NAME",
		Short: "Show the request an issuer sends, credentials masked; with --send, make one real call",
		Long: `test builds the request the TokenIssuer ISSUER (of the namespace) or, with --cluster, the
ClusterTokenIssuer ISSUER would send (or, with --accesstoken, the issuer of that AccessToken of the
namespace, with its parameters), and prints it with every credential masked: Secret values, signed JWTs,
ServiceAccount tokens and Basic credentials show where they come from, never what they are. Credentials are
read from the Secrets the issuer names, in its Secrets namespace (the TokenIssuer's own; for a
ClusterTokenIssuer the manager's credentials namespace), with your own permissions.

With --send it makes one real call, through the same HTTP client the manager uses (TLS 1.2+, the issuer's
caBundle and client certificate, its timeout, redirects to the same host only and, for a TokenIssuer, the
guard against private destinations), and prints the result as the manager would map it: expiry, copied
fields, token id, and the token and refresh token described by their length (and, for a JWT, its expiry).
Nothing is written to the cluster. The token obtained is not kept: when the issuer has a revoke request it is
revoked at once (unless --revoke=false), otherwise it stays valid until it expires.`,
		Example: `  kubectl tokenmint test paisr-invoicing -n billing --param scopes='["invoices.read"]'
  kubectl tokenmint test cable-transactions --cluster --param lifetimeSeconds=600 --send
  kubectl tokenmint test oauth2-client-credentials --cluster --send -o json
  kubectl tokenmint test --accesstoken orders-reader -n billing --send`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := outputFormat(t.output); err != nil {
				return err
			}
			if (len(args) == 1) == (t.accessToken != "") {
				return errors.New("name an issuer, or an AccessToken with --accesstoken, not both")
			}
			if t.accessToken != "" && t.cluster {
				return errors.New("--cluster names an issuer; with --accesstoken the AccessToken's issuerRef says which")
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			return t.run(cmd.Context(), name)
		},
	}
	cmd.Flags().StringVar(&t.accessToken, "accesstoken", "",
		"test the issuer of this AccessToken of the namespace, with its parameters (--param overrides them)")
	cmd.Flags().BoolVar(&t.cluster, "cluster", false, "ISSUER is a ClusterTokenIssuer")
	cmd.Flags().StringArrayVar(&t.params, "param", nil,
		"a parameter as name=value, repeatable; a value that is JSON (600, true, [\"a\",\"b\"]) is sent as that JSON, anything else as a string")
	cmd.Flags().BoolVar(&t.send, "send", false, "make one real call and show its mapped result")
	cmd.Flags().BoolVar(&t.allowPrivateDestinations, "allow-private-destinations", false,
		"let a TokenIssuer's call reach loopback and private addresses, as the manager's flag of that name does")
	cmd.Flags().BoolVar(&t.revoke, "revoke", true, "with --send, revoke the token obtained when the issuer has a revoke request")
	cmd.Flags().StringVar(&t.credentialsNamespace, "credentials-namespace", "",
		"where ClusterTokenIssuers' credential Secrets are (default: the manager Deployment's --credentials-namespace, else "+defaultCredentials+")")
	cmd.Flags().StringVarP(&t.output, "output", "o", "", "json or yaml; a readable report when left out")
	return cmd
}

// ParseParams turns name=value pairs into an AccessToken's parameters: a
// value that is valid JSON is taken as that JSON, anything else as a string.
func ParseParams(pairs []string) (map[string]apiextensionsv1.JSON, error) {
	out := map[string]apiextensionsv1.JSON{}
	for _, pair := range pairs {
		name, value, ok := strings.Cut(pair, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("--param %q: write it as name=value", pair)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("--param %s is given twice", name)
		}
		raw := []byte(value)
		if !json.Valid(raw) {
			raw, _ = json.Marshal(value)
		}
		out[name] = apiextensionsv1.JSON{Raw: raw}
	}
	return out, nil
}

func (t *testOptions) run(ctx context.Context, name string) error {
	params, err := ParseParams(t.params)
	if err != nil {
		return err
	}
	c, err := t.Client()
	if err != nil {
		return err
	}
	if t.accessToken != "" {
		if name, params, err = t.fromAccessToken(ctx, c, params); err != nil {
			return err
		}
	}
	spec, kind, secretsNS, err := t.issuerSpec(ctx, c, name)
	if err != nil {
		return err
	}
	view := &TestView{Issuer: kind + "/" + name, CredentialsNamespace: secretsNS}
	if err := issuer.Validate(spec); err != nil {
		return fmt.Errorf("%s is not usable: %w", view.Issuer, err)
	}
	operatorNS, _ := installation(ctx, c)
	secrets, err := readCredentials(ctx, c, spec, secretsNS, operatorNS)
	if err != nil {
		return err
	}
	engine := &issuer.Engine{}
	call := issuer.Call{Spec: spec, Parameters: params, Secrets: secrets}
	if call.NamespaceLabels, err = t.namespaceLabels(ctx, c, spec); err != nil {
		return err
	}
	if view.Request, err = engine.Render(call); err != nil {
		return fmt.Errorf("building the request of %s: %w", view.Issuer, err)
	}
	var failed error
	var obtained []string
	if t.send {
		obtained, failed = t.sendOnce(ctx, engine, call, kind, view)
	}
	// Everything shown is masked already; as a last guard, the whole output
	// is cleared of every credential read and every token obtained.
	var out bytes.Buffer
	if t.output != "" {
		if err := printStructured(&out, t.output, view); err != nil {
			return err
		}
	} else {
		printTest(&out, view)
	}
	credentials := obtained
	for _, v := range secrets {
		credentials = append(credentials, v)
	}
	if _, err := io.WriteString(t.Out, issuer.Redact(out.String(), credentials...)); err != nil {
		return err
	}
	return failed
}

// fromAccessToken takes the issuer and the parameters of the AccessToken
// --accesstoken names; params given with --param replace its own.
func (t *testOptions) fromAccessToken(ctx context.Context, c client.Client, params map[string]apiextensionsv1.JSON) (string, map[string]apiextensionsv1.JSON, error) {
	ns, err := t.Namespace()
	if err != nil {
		return "", nil, err
	}
	at := &tokensv1alpha1.AccessToken{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: t.accessToken}, at); err != nil {
		return "", nil, explain(err)
	}
	t.cluster = at.Spec.IssuerRef.Kind == tokensv1alpha1.ClusterTokenIssuerKind
	merged := map[string]apiextensionsv1.JSON{}
	for k, v := range at.Spec.Parameters {
		merged[k] = v
	}
	for k, v := range params {
		merged[k] = v
	}
	return at.Spec.IssuerRef.Name, merged, nil
}

// namespaceLabels reads the labels of the namespace the request is for (the
// current one, or the AccessToken's) that the issuer binds parameters to
// (fromNamespaceLabel), as the manager would; none when it binds none.
func (t *testOptions) namespaceLabels(ctx context.Context, c client.Client, spec *tokensv1alpha1.IssuerSpec) (map[string]string, error) {
	keys := issuer.NamespaceLabelKeys(spec)
	if len(keys) == 0 {
		return nil, nil
	}
	ns, err := t.Namespace()
	if err != nil {
		return nil, err
	}
	n := &corev1.Namespace{}
	if err := c.Get(ctx, types.NamespacedName{Name: ns}, n); err != nil {
		return nil, fmt.Errorf("the issuer binds parameters to labels %q of the namespace asking; reading namespace %s: %w", keys, ns, explain(err))
	}
	out := map[string]string{}
	for _, k := range keys {
		if v, ok := n.Labels[k]; ok {
			out[k] = v
		}
	}
	return out, nil
}

// issuerSpec reads the issuer and says where its credentials are.
func (t *testOptions) issuerSpec(ctx context.Context, c client.Client, name string) (*tokensv1alpha1.IssuerSpec, string, string, error) {
	if t.cluster {
		cti := &tokensv1alpha1.ClusterTokenIssuer{}
		if err := c.Get(ctx, types.NamespacedName{Name: name}, cti); err != nil {
			return nil, "", "", explain(err)
		}
		ns := t.credentialsNamespace
		if ns == "" {
			_, ns = installation(ctx, c)
		}
		return &cti.Spec.IssuerSpec, string(tokensv1alpha1.ClusterTokenIssuerKind), ns, nil
	}
	ns, err := t.Namespace()
	if err != nil {
		return nil, "", "", err
	}
	ti := &tokensv1alpha1.TokenIssuer{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, ti); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, "", "", fmt.Errorf("%w (for a ClusterTokenIssuer add --cluster)", err)
		}
		return nil, "", "", explain(err)
	}
	return &ti.Spec, string(tokensv1alpha1.TokenIssuerKind), ns, nil
}

// readCredentials reads every Secret key the issuer names, in namespace, as
// the manager does: tokenmint's own Secrets (the fingerprint key and the state
// Secrets of operatorNS, and any Secret labelled as state) are never read as
// credentials, and values are bounded.
func readCredentials(ctx context.Context, c client.Client, spec *tokensv1alpha1.IssuerSpec, namespace, operatorNS string) (map[tokensv1alpha1.SecretKeySelector]string, error) {
	out := map[tokensv1alpha1.SecretKeySelector]string{}
	read := map[string]*corev1.Secret{}
	for _, ref := range issuer.SecretRefs(spec) {
		s, ok := read[ref.Name]
		if !ok {
			own := fmt.Errorf("the Secret %s/%s is tokenmint's own and can never be read as a credential", namespace, ref.Name)
			if namespace == operatorNS && (ref.Name == fingerprintKeySecret || strings.HasPrefix(ref.Name, secret.StatePrefix)) {
				return nil, own
			}
			s = &corev1.Secret{}
			if err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: ref.Name}, s); err != nil {
				return nil, fmt.Errorf("reading credential Secret %s/%s: %s", namespace, ref.Name, reasonOf(err))
			}
			if s.Labels[tokensv1alpha1.LabelManagedBy] == tokensv1alpha1.ManagedByValue && s.Labels[secret.LabelComponent] == secret.ComponentState {
				return nil, own
			}
			read[ref.Name] = s
		}
		v, ok := s.Data[ref.Key]
		if !ok {
			return nil, fmt.Errorf("credential Secret %s/%s has no key %q", namespace, ref.Name, ref.Key)
		}
		if len(v) > maxCredentialBytes {
			return nil, fmt.Errorf("credential Secret %s/%s key %q holds %d bytes, more than the %d tokenmint reads",
				namespace, ref.Name, ref.Key, len(v), maxCredentialBytes)
		}
		out[ref] = string(v)
	}
	return out, nil
}

// sendOnce makes the one real call and fills view with its mapped result or
// its error. It returns the credentials it obtained (the token and refresh
// token), never to be shown; the error returned only makes the exit code
// non-zero.
func (t *testOptions) sendOnce(ctx context.Context, engine *issuer.Engine, call issuer.Call, kind string, view *TestView) ([]string, error) {
	spec := call.Spec
	if len(issuer.ServiceAccountTokenSources(spec)) > 0 {
		return nil, errors.New("--send is not available for issuers with serviceAccountToken values: their tokens are requested by the manager for the AccessToken's namespace")
	}
	cfg := issuer.TransportConfig{
		CABundle:                 spec.CABundle,
		Timeout:                  issuer.DefaultTimeout,
		GuardPrivateDestinations: kind == string(tokensv1alpha1.TokenIssuerKind) && !t.allowPrivateDestinations,
	}
	if spec.Timeout != nil && spec.Timeout.Duration > 0 {
		cfg.Timeout = min(spec.Timeout.Duration, maxTimeout)
	}
	if cc := spec.ClientCertificate; cc != nil {
		pair, err := tls.X509KeyPair(
			[]byte(call.Secrets[tokensv1alpha1.SecretKeySelector{Name: cc.SecretName, Key: corev1.TLSCertKey}]),
			[]byte(call.Secrets[tokensv1alpha1.SecretKeySelector{Name: cc.SecretName, Key: corev1.TLSPrivateKeyKey}]))
		if err != nil {
			return nil, errors.New("the client certificate Secret does not hold a usable certificate and key (tls.crt, tls.key)")
		}
		cfg.ClientCertificate = &pair
	}
	httpClient, err := issuer.NewHTTPClient(cfg)
	if err != nil {
		return nil, err
	}
	defer httpClient.CloseIdleConnections()
	call.HTTPClient = httpClient
	token, err := engine.Issue(ctx, call)
	if err != nil {
		var ie *issuer.Error
		if !errors.As(err, &ie) {
			ie = &issuer.Error{Class: issuer.ClassRetryable, Message: "the call failed"}
		}
		view.Error = &ErrorView{Class: ie.Class.String(), StatusCode: ie.StatusCode, Message: ie.Error()}
		return nil, fmt.Errorf("the call failed (%s)", ie.Class)
	}
	now := t.now()
	r := &ResultView{
		IssuedAt:  moment(&token.IssuedAt, now),
		ExpiresAt: moment(token.ExpiresAt, now),
		Token:     describeToken(token.Value, now),
		TokenID:   token.ID,
	}
	if token.RefreshToken != "" {
		r.RefreshToken = &RefreshTokenView{Bytes: len(token.RefreshToken), ExpiresAt: moment(token.RefreshTokenExpiresAt, now)}
	}
	obtained := append([]string{token.Value, token.RefreshToken}, secretFields(spec, token.Fields)...)
	if len(token.Fields) > 0 {
		// Copied fields are what the Secret pods mount holds beside the token;
		// should an issuer copy the token or a credential the endpoint echoes,
		// it is hidden all the same, and a field marked secret is not shown.
		hidden := slices.Clone(obtained)
		for _, v := range call.Secrets {
			hidden = append(hidden, v)
		}
		r.Fields = fieldsView(spec, token.Fields, hidden)
	}
	view.Result = r
	switch {
	case spec.Revoke == nil:
		r.Revocation = "the issuer cannot revoke: the token stays valid until it expires"
	case !t.revoke:
		r.Revocation = "not revoked (--revoke=false): the token stays valid until it expires"
	default:
		if err := engine.Revoke(ctx, call, token.Value, token.ID); err != nil {
			// The engine's errors hold no credential.
			r.Revocation = "not revoked: " + err.Error()
		} else {
			r.Revocation = "revoked"
		}
	}
	return obtained, nil
}

func printTest(out io.Writer, v *TestView) {
	fmt.Fprintf(out, "%s: the request (credentials from namespace %s, masked)\n\n", v.Issuer, v.CredentialsNamespace)
	r := v.Request
	fmt.Fprintf(out, "%s %s\n", r.Method, oneLine(r.URL))
	for _, h := range r.Headers {
		fmt.Fprintf(out, "%s: %s\n", h.Name, oneLine(h.Value))
	}
	if r.Body != "" {
		fmt.Fprintln(out)
		var pretty bytes.Buffer
		if json.Indent(&pretty, []byte(r.Body), "", "  ") == nil {
			fmt.Fprintln(out, pretty.String())
		} else {
			fmt.Fprintln(out, r.Body)
		}
	}
	switch {
	case v.Error != nil:
		fmt.Fprintf(out, "\nThe call failed: %s (%s)\n", oneLine(v.Error.Message), v.Error.Class)
	case v.Result != nil:
		res := v.Result
		fmt.Fprintln(out, "\nThe call succeeded; the result as tokenmint maps it (nothing was written to the cluster):")
		t := newTable(out, "")
		t.row("  ", "Issued:", res.IssuedAt.String())
		expires := "not given (the AccessToken's maxAge decides)"
		if res.ExpiresAt != nil {
			expires = res.ExpiresAt.String()
		}
		t.row("  ", "Expires:", expires)
		t.row("  ", "Token:", res.Token.String()+" (value not shown)")
		if res.RefreshToken != nil {
			refresh := byteCount(res.RefreshToken.Bytes)
			if res.RefreshToken.ExpiresAt != nil {
				refresh += ", expiring " + res.RefreshToken.ExpiresAt.String()
			}
			t.row("  ", "Refresh token:", refresh+" (value not shown)")
		}
		t.row("  ", "Token id:", orDash(res.TokenID))
		t.row("  ", "Afterwards:", res.Revocation)
		t.flush()
		if len(res.Fields) > 0 {
			fmt.Fprintln(out, "  Copied fields (written beside the token):")
			keys := make([]string, 0, len(res.Fields))
			for k := range res.Fields {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			ft := newTable(out, "    ", "KEY", "VALUE")
			for _, k := range keys {
				ft.row("    ", k, res.Fields[k])
			}
			ft.flush()
		}
	}
}
