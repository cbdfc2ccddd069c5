// Package cluster holds end-to-end tests of several Aviso nodes sharing one PostgreSQL database:
// real `aviso serve` processes built from cmd/aviso, real receivers on 127.0.0.1, and a node
// killed with SIGKILL while it delivers. It has no code of its own; see multinode_test.go.
package cluster
