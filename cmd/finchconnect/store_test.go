package main

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/keyring"
	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/finchconnect/finchconnect/tokenstore/sqlite"
)

func TestDescribeStore(t *testing.T) {
	tests := []struct{ in, want string }{
		{"memory:", "memory:"},
		{"sqlite:///var/lib/finchconnect/tokens.db", "sqlite:///var/lib/finchconnect/tokens.db"},
		{"postgres://app:hunter2@db:5432/fc?sslmode=require", "postgres://app@db:5432/fc?sslmode=require"},
		{"memory:?password=hunter2", "memory:?password=xxxxx"},
		{"postgres://db/fc?sslmode=verify-full&password=hunter2&sslpassword=hunter2", "postgres://db/fc?sslmode=verify-full&password=xxxxx&sslpassword=xxxxx"},
		{"redis://db:6379/0?prefix=fc&client_secret=hunter2&auth_token=hunter2&PassWord=hunter2", "redis://db:6379/0?prefix=fc&client_secret=xxxxx&auth_token=xxxxx&PassWord=xxxxx"},
		{"postgres://db/fc?pass%77ord=hunter2", "postgres://db/fc?pass%77ord=xxxxx"},
		{"postgres://db/fc?password", "postgres://db/fc?password"},
		{"postgres://u:p@db/fc?password=hunter2#frag", "postgres://u@db/fc?password=xxxxx"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := describeStore(tt.in)
			if got != tt.want {
				t.Errorf("describeStore(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if strings.Contains(got, "hunter2") {
				t.Errorf("describeStore(%q) = %q shows the password", tt.in, got)
			}
		})
	}
}

// TestMigrate_RedactsQueryPasswords: pgx takes passwords in the query
// (?password=, ?sslpassword=); migrate's output names the stores without
// them.
func TestMigrate_RedactsQueryPasswords(t *testing.T) {
	stdout, stderr, err := runBriefly(t, nil, "migrate", "-from", "memory:", "-to", "memory:?password=hunter2&sslpassword=hunter2")
	if err != nil {
		t.Fatalf("migrate = %v\n%s", err, stderr)
	}
	if strings.Contains(stdout+stderr, "hunter2") {
		t.Errorf("migrate printed a password:\n%s%s", stdout, stderr)
	}
	if !strings.Contains(stdout, "memory:?password=xxxxx") {
		t.Errorf("migrate output = %q, want the destination named with its password redacted", stdout)
	}
}

// TestToken_DeleteReportsAuditFailure: when the audit trail refuses the
// record of a delete, `token delete` says the connection is deleted and
// that the trail lacks it, and exits non-zero.
func TestToken_DeleteReportsAuditFailure(t *testing.T) {
	dir := t.TempDir()
	key, err := keyring.Generate(1)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"FINCHCONNECT_KEYS": key.Encode()}
	dbPath := filepath.Join(dir, "finchconnect.db")
	b, err := sqlite.Open(t.Context(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.Parse(key.Encode())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := tokenstore.New(b, kr).Put(t.Context(), finchconnect.Connection{
		ConnectionID: "conn-1", Status: "connected", AccessToken: finchconnect.NewSecret("tok"), CreatedAt: now, UpdatedAt: now,
	}); err != nil {
		t.Fatal(err)
	}
	b.Close()
	// The audit trail lives in the entries table: make it refuse.
	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TRIGGER refuse_audit BEFORE INSERT ON entries WHEN NEW.key LIKE 'audit/%'
		BEGIN SELECT RAISE(ABORT, 'audit trail unavailable'); END`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	stdout, stderr, err := runBriefly(t, env, "token", "delete", "-forget", "-yes", "-data-dir", dir, "conn-1")
	if err == nil || !strings.Contains(err.Error(), "deleted") || !strings.Contains(err.Error(), "audit") {
		t.Errorf("token delete with a failing audit trail = %v (stdout %q), want an error saying the delete happened and the audit record did not", err, stdout)
	}
	_ = stderr
	stdout, _, err = runBriefly(t, env, "token", "list", "-json", "-data-dir", dir)
	if err != nil || strings.Contains(stdout, "conn-1") {
		t.Errorf("token list after the delete = %v\n%s; want conn-1 gone", err, stdout)
	}
}
