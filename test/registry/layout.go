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

package registry

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// refNameAnnotation tags a manifest of an OCI layout's index.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// maxLayoutFile bounds each file read from a layout.
const maxLayoutFile = 256 << 20

// AddLayout serves, under repository, the images of an OCI image layout
// archived as a tar (the archive `ctr images import` reads): every blob, and
// each image manifest index.json lists, by digest and by the tag its
// org.opencontainers.image.ref.name annotation gives. It returns the digests
// of those manifests. Every blob's digest is checked.
func (r *Registry) AddLayout(repository string, layout io.Reader) ([]string, error) {
	files := map[string][]byte{}
	archive := tar.NewReader(layout)
	for {
		h, err := archive.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the layout: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if h.Size > maxLayoutFile {
			return nil, fmt.Errorf("%s: %d bytes is too large", h.Name, h.Size)
		}
		data, err := io.ReadAll(archive)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", h.Name, err)
		}
		files[path.Clean(strings.TrimPrefix(h.Name, "./"))] = data
	}

	var index struct {
		Manifests []struct {
			MediaType   string            `json:"mediaType"`
			Digest      string            `json:"digest"`
			Size        int64             `json:"size"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	raw, ok := files["index.json"]
	if !ok {
		return nil, errors.New("the layout has no index.json")
	}
	if err := json.Unmarshal(raw, &index); err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}

	for name, data := range files {
		hex, ok := strings.CutPrefix(name, "blobs/sha256/")
		if !ok {
			continue
		}
		if digest := digestOf(data); digest != "sha256:"+hex {
			return nil, fmt.Errorf("%s has digest %s", name, digest)
		}
		if _, err := r.AddBlob(repository, data); err != nil {
			return nil, err
		}
	}

	var digests []string
	for _, m := range index.Manifests {
		if m.MediaType != MediaTypeOCIManifest && m.MediaType != MediaTypeDockerManifest {
			return nil, fmt.Errorf("index.json lists a %s: only image manifests are served", m.MediaType)
		}
		data, ok := files["blobs/sha256/"+strings.TrimPrefix(m.Digest, "sha256:")]
		if !ok || int64(len(data)) != m.Size || digestOf(data) != m.Digest {
			return nil, fmt.Errorf("index.json lists manifest %s (%d bytes), which the layout does not hold", m.Digest, m.Size)
		}
		digest, err := r.AddManifest(repository, m.Annotations[refNameAnnotation], m.MediaType, data)
		if err != nil {
			return nil, err
		}
		digests = append(digests, digest)
	}
	if len(digests) == 0 {
		return nil, errors.New("index.json lists no manifest")
	}
	return digests, nil
}
