// Package plugin holds the test of the kubectl-tokenmint release: release.sh,
// beside this file, builds the plugin's archives and fills the krew manifest
// plugins/tokenmint.yaml with their URLs and checksums.
package plugin
