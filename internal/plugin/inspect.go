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
	"context"
	"fmt"
	"io"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/secret"
)

// TokenView describes a token without showing it: its size and, for a JWT,
// its algorithm and times (read without verifying the signature).
type TokenView struct {
	Bytes        int     `json:"bytes"`
	JWT          bool    `json:"jwt"`
	JWTAlgorithm string  `json:"jwtAlgorithm,omitempty"`
	JWTIssuedAt  *Moment `json:"jwtIssuedAt,omitempty"`
	JWTExpiresAt *Moment `json:"jwtExpiresAt,omitempty"`
}

// describeToken reads what can be shown of a token: never the token.
func describeToken(token string, now time.Time) *TokenView {
	v := &TokenView{Bytes: len(token)}
	parsed, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if err != nil {
		return v
	}
	v.JWT = true
	if alg, ok := parsed.Header["alg"].(string); ok {
		v.JWTAlgorithm = alg
	}
	if exp, err := parsed.Claims.GetExpirationTime(); err == nil && exp != nil {
		v.JWTExpiresAt = moment(&exp.Time, now)
	}
	if iat, err := parsed.Claims.GetIssuedAt(); err == nil && iat != nil {
		v.JWTIssuedAt = moment(&iat.Time, now)
	}
	return v
}

// String is "1234 bytes, a JWT (RS256) expiring ...", or "1234 bytes, not a JWT".
func (v *TokenView) String() string {
	if v == nil {
		return "-"
	}
	if !v.JWT {
		return byteCount(v.Bytes) + ", not a JWT"
	}
	s := fmt.Sprintf("%s, a JWT (%s)", byteCount(v.Bytes), orDash(v.JWTAlgorithm))
	if v.JWTExpiresAt != nil {
		s += " expiring " + v.JWTExpiresAt.String()
	} else {
		s += " without exp"
	}
	return s
}

type inspectOptions struct {
	*Options
	key    string
	output string
}

func newInspectCommand(o *Options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inspect",
		Short: "Look at what tokenmint wrote, without showing any value",
	}
	i := &inspectOptions{Options: o}
	secretCmd := &cobra.Command{
		Use:   "secret NAME",
		Short: "Show a token Secret's keys, sizes, fingerprint and the token's JWT expiry; never a value",
		Example: `  kubectl tokenmint inspect secret cable-transactions-token -n billing
  kubectl tokenmint inspect secret my-token --key access_token -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := outputFormat(i.output); err != nil {
				return err
			}
			return i.run(cmd.Context(), args[0])
		},
	}
	secretCmd.Flags().StringVar(&i.key, "key", "", "the key holding the token (default: the owning AccessToken's spec.secret.key, else token)")
	secretCmd.Flags().StringVarP(&i.output, "output", "o", "", "json or yaml; a readable report when left out")
	cmd.AddCommand(secretCmd)
	return cmd
}

// InspectView is what inspect secret shows.
type InspectView struct {
	SecretView `json:",inline"`
	// AccessToken is the owning AccessToken's status fingerprint, when readable.
	AccessTokenFingerprint string `json:"accessTokenFingerprint,omitempty"`
}

func (i *inspectOptions) run(ctx context.Context, name string) error {
	c, err := i.Client()
	if err != nil {
		return err
	}
	ns, err := i.Namespace()
	if err != nil {
		return err
	}
	s := &corev1.Secret{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, s); err != nil {
		return err
	}
	now := i.now()
	v := &InspectView{SecretView: SecretView{Namespace: ns, Name: name, TokenKey: i.key}}
	var owner *tokensv1alpha1.AccessToken
	if ref := metav1.GetControllerOf(s); ref != nil && ref.Kind == "AccessToken" {
		at := &tokensv1alpha1.AccessToken{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: ref.Name}, at); err == nil && at.UID == ref.UID {
			owner = at
		}
	}
	if v.TokenKey == "" {
		v.TokenKey = "token"
		if owner != nil {
			v.TokenKey = secret.Key(owner)
		}
	}
	describeSecret(&v.SecretView, s, now)
	if owner != nil && owner.Status.TokenFingerprint != "" {
		v.AccessTokenFingerprint = owner.Status.TokenFingerprint
		if v.Fingerprint != "" {
			matches := v.Fingerprint == owner.Status.TokenFingerprint
			v.FingerprintMatches = &matches
		}
	}
	if i.output != "" {
		return printStructured(i.Out, i.output, v)
	}
	printInspect(i.Out, v)
	return nil
}

func printInspect(out io.Writer, v *InspectView) {
	fmt.Fprintf(out, "Secret %s/%s\n", v.Namespace, v.Name)
	t := newTable(out, "")
	t.row("  ", "Type:", orDash(v.Type))
	t.row("  ", "Owned by:", orDash(v.OwnedBy))
	fp := orDash(v.Fingerprint)
	if v.FingerprintMatches != nil {
		if *v.FingerprintMatches {
			fp += " (matches the AccessToken's status)"
		} else {
			fp += " (the AccessToken's status holds " + v.AccessTokenFingerprint + ")"
		}
	}
	t.row("  ", "Fingerprint:", fp)
	t.row("  ", "Issued (annotation):", v.IssuedAt.String())
	t.row("  ", "Expires (annotation):", v.ExpiresAt.String())
	token := "no such key"
	if v.Token != nil {
		token = v.Token.String()
	}
	t.row("  ", fmt.Sprintf("Token (key %q):", v.TokenKey), token)
	t.flush()
	fmt.Fprintln(out, "  Keys (values are never shown):")
	kt := newTable(out, "    ", "KEY", "SIZE")
	for _, k := range v.Keys {
		kt.row("    ", k.Key, byteCount(k.Bytes))
	}
	kt.flush()
}
