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

package main

import (
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// SPDXMediaType is the media type of the SBOM, as a file and as an OCI artifact.
const SPDXMediaType = "application/spdx+json"

// The part of SPDX 2.3 (JSON) the SBOM uses.
type spdxDocument struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreationInfo   `json:"creationInfo"`
	Packages          []spdxPackage      `json:"packages"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	Name             string            `json:"name"`
	SPDXID           string            `json:"SPDXID"`
	VersionInfo      string            `json:"versionInfo,omitempty"`
	Supplier         string            `json:"supplier,omitempty"`
	DownloadLocation string            `json:"downloadLocation"`
	FilesAnalyzed    bool              `json:"filesAnalyzed"`
	PrimaryPurpose   string            `json:"primaryPackagePurpose,omitempty"`
	ExternalRefs     []spdxExternalRef `json:"externalRefs,omitempty"`
}

type spdxExternalRef struct {
	Category string `json:"referenceCategory"`
	Type     string `json:"referenceType"`
	Locator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

// spdxOf returns the SPDX 2.3 document of the image repository@digest, whose
// manager is binary: the image, the manager's main module and every Go module
// its build information lists (the modules linked into it), each with its
// package URL.
func spdxOf(binary, version, repository, digest, created string) ([]byte, error) {
	info, err := buildinfo.ReadFile(binary)
	if err != nil {
		return nil, err
	}
	imageID, mainID := "SPDXRef-Image", "SPDXRef-Package-main"
	doc := spdxDocument{
		SPDXVersion:       "SPDX-2.3",
		DataLicense:       "CC0-1.0",
		SPDXID:            "SPDXRef-DOCUMENT",
		Name:              "tokenmint-" + version,
		DocumentNamespace: "https://github.com/tokenmint/tokenmint/spdx/" + version + "/" + digest,
		CreationInfo:      spdxCreationInfo{Created: created, Creators: []string{"Organization: tokenmint", "Tool: hack/release"}},
		Packages: []spdxPackage{{
			Name: repository, SPDXID: imageID, VersionInfo: version, DownloadLocation: "NOASSERTION",
			PrimaryPurpose: "CONTAINER",
			ExternalRefs: []spdxExternalRef{{Category: "PACKAGE-MANAGER", Type: "purl",
				Locator: "pkg:oci/tokenmint@" + url.PathEscape(digest) + "?repository_url=" + url.QueryEscape(repository)}},
		}, {
			Name: info.Main.Path, SPDXID: mainID, VersionInfo: version, DownloadLocation: "https://github.com/tokenmint/tokenmint",
			PrimaryPurpose: "APPLICATION",
			ExternalRefs:   []spdxExternalRef{purl(info.Main.Path, "v"+version)},
		}},
		Relationships: []spdxRelationship{
			{"SPDXRef-DOCUMENT", "DESCRIBES", imageID},
			{imageID, "CONTAINS", mainID},
		},
	}
	for i, dep := range info.Deps {
		m := dep
		if dep.Replace != nil {
			m = dep.Replace
		}
		id := fmt.Sprintf("SPDXRef-Package-go-%d", i+1)
		doc.Packages = append(doc.Packages, spdxPackage{
			Name: m.Path, SPDXID: id, VersionInfo: m.Version, DownloadLocation: "NOASSERTION",
			PrimaryPurpose: "LIBRARY", ExternalRefs: []spdxExternalRef{purl(m.Path, m.Version)},
		})
		doc.Relationships = append(doc.Relationships, spdxRelationship{mainID, "DEPENDS_ON", id})
	}
	return json.MarshalIndent(doc, "", "  ")
}

func purl(module, version string) spdxExternalRef {
	return spdxExternalRef{Category: "PACKAGE-MANAGER", Type: "purl", Locator: "pkg:golang/" + module + "@" + version}
}

// rawManifest is a manifest to put as it is.
type rawManifest struct {
	data []byte
	mt   types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.data, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

// pushReferrer pushes sbom as an OCI artifact (artifactType application/spdx+json)
// whose subject is the image index, so that the registry's referrers API (or
// its tag fallback) lists it, and returns the artifact's digest.
func pushReferrer(ctx context.Context, repo name.Repository, subject v1.Hash, idx v1.ImageIndex, sbom []byte) (v1.Hash, error) {
	opts := []remote.Option{remote.WithContext(ctx)}
	opts = append(opts, pushAuth()...)
	emptyConfig := static.NewLayer([]byte("{}"), types.OCIEmptyJSON)
	layer := static.NewLayer(sbom, SPDXMediaType)
	for _, l := range []v1.Layer{emptyConfig, layer} {
		if err := remote.WriteLayer(repo, l, opts...); err != nil {
			return v1.Hash{}, err
		}
	}
	raw, err := idx.RawManifest()
	if err != nil {
		return v1.Hash{}, err
	}
	idxType, err := idx.MediaType()
	if err != nil {
		return v1.Hash{}, err
	}
	layerDigest, _ := layer.Digest()
	configDigest, _ := emptyConfig.Digest()
	manifest := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  SPDXMediaType,
		Config:        v1.Descriptor{MediaType: types.OCIEmptyJSON, Digest: configDigest, Size: 2, Data: []byte("{}")},
		Layers: []v1.Descriptor{{MediaType: SPDXMediaType, Digest: layerDigest, Size: int64(len(sbom)),
			Annotations: map[string]string{"org.opencontainers.image.title": "sbom.spdx.json"}}},
		Subject: &v1.Descriptor{MediaType: idxType, Digest: subject, Size: int64(len(raw))},
	}
	data, err := json.Marshal(manifest)
	if err != nil {
		return v1.Hash{}, err
	}
	digest := v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sha256.Sum256(data))}
	if err := remote.Put(repo.Digest(digest.String()), rawManifest{data, types.OCIManifestSchema1}, opts...); err != nil {
		return v1.Hash{}, err
	}
	return digest, nil
}
