package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestBenchNodesFlag(t *testing.T) {
	const db = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string // "" for none
	}{
		{"default one node", []string{"bench"}, nil, ""},
		{"two nodes on PostgreSQL", []string{"bench", "--nodes", "2", "--database", db}, nil, ""},
		{"two nodes from the environment", []string{"bench"}, map[string]string{"AVISO_BENCH_NODES": "2",
			"AVISO_BENCH_DATABASE_URL": db}, ""},
		{"two nodes without a database", []string{"bench", "--nodes", "2"}, nil, "needs --database"},
		{"environment without a database", []string{"bench"}, map[string]string{"AVISO_BENCH_NODES": "3"}, "needs --database"},
		{"two nodes at a URL", []string{"bench", "--nodes", "2", "--database", db, "--url", "http://127.0.0.1:1"}, nil, "no --url"},
		{"zero nodes", []string{"bench", "--nodes", "0"}, nil, "at least one node"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			m := NewMain(&out, &out, env(tt.env))
			err := m.ParseFlags(tt.args)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("ParseFlags(%q) = %v, want no error", tt.args, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("ParseFlags(%q) = %v, want an error about %q", tt.args, err, tt.wantErr)
			}
		})
	}
}
