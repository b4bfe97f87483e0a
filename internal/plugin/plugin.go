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

// Package plugin is the kubectl tokenmint plugin: status of AccessTokens,
// renewal on request, a dry run (or one real call) of an issuer, a look at a
// token Secret without its values, and a check of the installation. It acts
// with the caller's own kubeconfig and permissions, and never prints a token,
// a credential or a Secret value.
package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

// Options are shared by every subcommand: the kubeconfig flags, the streams
// and the clock that relative times are computed from.
type Options struct {
	ConfigFlags *genericclioptions.ConfigFlags
	genericiooptions.IOStreams
	// Version is the plugin's version, stamped at build time.
	Version string
	// Now is the current time; nil is time.Now.
	Now func() time.Time

	restConfig *rest.Config
	client     client.Client
}

// NewCommand returns the root command of kubectl tokenmint.
func NewCommand(streams genericiooptions.IOStreams, version string) *cobra.Command {
	o := &Options{ConfigFlags: genericclioptions.NewConfigFlags(false), IOStreams: streams, Version: version}
	root := &cobra.Command{
		Use:   "kubectl-tokenmint",
		Short: "Inspect and operate tokenmint's AccessTokens and issuers",
		Long: `kubectl tokenmint shows how tokenmint's AccessTokens are doing, asks for renewals, shows the
request an issuer sends (and can make one real call), looks at token Secrets and checks the installation.
It never prints a token, a credential or a Secret value.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.SetIn(streams.In)
	// --cluster is test's (the issuer is a ClusterTokenIssuer); a kubeconfig
	// cluster is chosen with --context instead.
	o.ConfigFlags.ClusterName = nil
	o.ConfigFlags.AddFlags(root.PersistentFlags())
	root.AddCommand(
		newStatusCommand(o),
		newRenewCommand(o),
		newTestCommand(o),
		newInspectCommand(o),
		newCheckCommand(o),
		newVersionCommand(o),
	)
	return root
}

// Main runs the plugin with args and returns the process's exit code. An
// interrupt cancels what is in flight (a call of test --send, say).
func Main(streams genericiooptions.IOStreams, version string, args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	// controller-runtime's client logs nothing a user needs, and warns on
	// stderr when no logger was set.
	ctrllog.SetLogger(logr.Discard())
	cmd := NewCommand(streams, version)
	cmd.SetArgs(args)
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(streams.ErrOut, "error:", err)
		return 1
	}
	return 0
}

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// RESTConfig returns the client configuration the flags describe.
func (o *Options) RESTConfig() (*rest.Config, error) {
	if o.restConfig == nil {
		cfg, err := o.ConfigFlags.ToRESTConfig()
		if err != nil {
			return nil, err
		}
		o.restConfig = cfg
	}
	return o.restConfig, nil
}

// Client returns a client that reads and writes through the apiserver, with
// the caller's identity; nothing is cached.
func (o *Options) Client() (client.Client, error) {
	if o.client != nil {
		return o.client, nil
	}
	cfg, err := o.RESTConfig()
	if err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := tokensv1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	o.client = c
	return c, nil
}

// Discovery returns an uncached discovery client.
func (o *Options) Discovery() (discovery.DiscoveryInterface, error) {
	cfg, err := o.RESTConfig()
	if err != nil {
		return nil, err
	}
	return discovery.NewDiscoveryClientForConfig(cfg)
}

// Namespace is the namespace of -n, else the kubeconfig context's, else default.
func (o *Options) Namespace() (string, error) {
	ns, _, err := o.ConfigFlags.ToRawKubeConfigLoader().Namespace()
	return ns, err
}

// outputFormat checks -o: "" (a table), json or yaml.
func outputFormat(value string) error {
	switch value {
	case "", "json", "yaml":
		return nil
	}
	return fmt.Errorf("unknown output format %q: use json or yaml, or leave -o out for a table", value)
}

// printStructured writes v as JSON or YAML. Masks such as <Secret a/b> are
// written as they are, not HTML-escaped.
func printStructured(out io.Writer, format string, v any) error {
	var buf bytes.Buffer
	encoder := json.NewEncoder(&buf)
	encoder.SetEscapeHTML(false)
	encoder.SetIndent("", "  ")
	if err := encoder.Encode(v); err != nil {
		return err
	}
	data := buf.Bytes()
	if format == "yaml" {
		var err error
		if data, err = yaml.JSONToYAML(data); err != nil {
			return err
		}
	}
	_, err := out.Write(data)
	return err
}

// explain turns errors users meet often into advice.
func explain(err error) error {
	if meta.IsNoMatchError(err) {
		return fmt.Errorf("%w: tokenmint's CRDs are not installed in this cluster (kubectl tokenmint check tells more)", err)
	}
	return err
}

// errProblems is returned by commands that printed what is wrong and only
// need a non-zero exit code.
var errProblems = errors.New("problems found")

// accessTokens returns the AccessToken named in args, in ns, or, when args
// names none, the AccessTokens the list options select.
func accessTokens(ctx context.Context, c client.Client, ns string, args []string, opts ...client.ListOption) ([]tokensv1alpha1.AccessToken, error) {
	if len(args) == 1 {
		at := &tokensv1alpha1.AccessToken{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: args[0]}, at); err != nil {
			return nil, explain(err)
		}
		return []tokensv1alpha1.AccessToken{*at}, nil
	}
	list := &tokensv1alpha1.AccessTokenList{}
	if err := c.List(ctx, list, opts...); err != nil {
		return nil, explain(err)
	}
	return list.Items, nil
}
