//go:build tools

// Package etcd pins the etcd server built from this module.
package etcd

import _ "go.etcd.io/etcd/server/v3"
