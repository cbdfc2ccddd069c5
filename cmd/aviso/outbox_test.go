package main

import (
	"bytes"
	"slices"
	"testing"
)

func TestOutboxFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string
		keep bool
	}{
		{"none", []string{"serve"}, nil, nil, false},
		{"repeated flag", []string{"serve", "--outbox", "postgres://a/x", "--outbox", "mysql://b/y", "--outbox-keep"}, nil,
			[]string{"postgres://a/x", "mysql://b/y"}, true},
		{"environment", []string{"serve"}, map[string]string{"AVISO_OUTBOX": "postgres://a/x, mysql://b/y", "AVISO_OUTBOX_KEEP": "1"},
			[]string{"postgres://a/x", "mysql://b/y"}, true},
		{"flags win", []string{"serve", "--outbox", "mysql://c/z"}, map[string]string{"AVISO_OUTBOX": "postgres://a/x"},
			[]string{"mysql://c/z"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			m := NewMain(&out, &out, env(tt.env))
			if err := m.ParseFlags(tt.args); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(m.Server.Outbox, tt.want) || m.Server.OutboxKeep != tt.keep {
				t.Errorf("outbox %q keep %v, want %q keep %v", m.Server.Outbox, m.Server.OutboxKeep, tt.want, tt.keep)
			}
		})
	}
}
