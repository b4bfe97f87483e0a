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
	"strings"

	"github.com/spf13/cobra"
)

// VersionView is what version shows.
type VersionView struct {
	Plugin string `json:"plugin"`
	// Server is the cluster's Kubernetes version; ServerError says why it is unknown.
	Server      string    `json:"server,omitempty"`
	ServerError string    `json:"serverError,omitempty"`
	CRDs        []CRDView `json:"crds,omitempty"`
}

type versionOptions struct {
	*Options
	client bool
	output string
}

func newVersionCommand(o *Options) *cobra.Command {
	v := &versionOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show the plugin's version and the versions the cluster serves tokenmint's kinds in",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := outputFormat(v.output); err != nil {
				return err
			}
			return v.run(cmd.Context())
		},
	}
	cmd.Flags().BoolVar(&v.client, "client", false, "only the plugin's version; the cluster is not contacted")
	cmd.Flags().StringVarP(&v.output, "output", "o", "", "json or yaml")
	return cmd
}

func (v *versionOptions) run(_ context.Context) error {
	view := &VersionView{Plugin: v.Version}
	if view.Plugin == "" {
		view.Plugin = "dev"
	}
	if !v.client {
		if err := v.serverVersions(view); err != nil {
			view.ServerError = err.Error()
		}
	}
	if v.output != "" {
		return printStructured(v.Out, v.output, view)
	}
	fmt.Fprintf(v.Out, "Plugin: %s\n", view.Plugin)
	if v.client {
		return nil
	}
	if view.ServerError != "" {
		fmt.Fprintf(v.Out, "Cluster: unreachable: %s\n", oneLine(view.ServerError))
		return nil
	}
	fmt.Fprintf(v.Out, "Kubernetes: %s\n", view.Server)
	for _, crd := range view.CRDs {
		served := "not installed"
		if crd.Installed {
			served = "served as " + strings.Join(crd.Versions, ", ")
		}
		fmt.Fprintf(v.Out, "%s: %s\n", crd.Kind, served)
	}
	return nil
}

func (v *versionOptions) serverVersions(view *VersionView) error {
	dc, err := v.Discovery()
	if err != nil {
		return err
	}
	info, err := dc.ServerVersion()
	if err != nil {
		return err
	}
	view.Server = info.GitVersion
	view.CRDs, err = servedKinds(dc)
	return err
}
