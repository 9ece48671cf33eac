package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestProxy_OfficialSDK has the official Finch TypeScript SDK call, through
// the /v1 proxy, every one of its methods whose route the proxy allows,
// with finchconnect API keys (read, write for the writes, forward for
// request forwarding, which -proxy-forward turns on) as its access token:
// the app's services never hold a Finch token. finchconnect's refusals must
// reach the SDK as its typed errors, in Finch's error shape.
func TestProxy_OfficialSDK(t *testing.T) {
	t.Parallel()
	dir, err := filepath.Abs("../../sandbox/sdktest")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@tryfinch", "finch-api")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("sandbox/sdktest/node_modules is missing; .ci/run runs `npm ci` there")
		}
		t.Skip("run `npm ci` in sandbox/sdktest to drive the Finch SDK through the proxy")
	}
	data := t.TempDir()
	app := start(t, nil, "-addr", "127.0.0.1:0", "-data-dir", data, "-proxy-forward")
	b := newBrowser(t)
	_, loc, _ := b.do("GET", connectThroughSandboxWith(t, b, app.url, "proxy-sdk",
		"company", "directory", "individual", "employment", "payment", "pay_statement", "benefits", "documents"), nil)
	id := strings.TrimPrefix(loc, "/connections/")

	newKey := func(scope string) string {
		var key bytes.Buffer
		if err := run(t.Context(), []string{"finchconnect", "apikey", "create", "-scope", scope, "-name", "sdk test", "-data-dir", data},
			func(string) string { return "" }, nil, &key, io.Discard); err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(key.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "--test", "proxy.test.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"FINCHCONNECT_PROXY_URL="+app.url+"/v1/connections/"+id+"/finch",
		"FINCHCONNECT_API_KEY="+newKey("read"),
		"FINCHCONNECT_WRITE_KEY="+newKey("write"),
		"FINCHCONNECT_FORWARD_KEY="+newKey("forward"),
	)
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("# pass 3")) {
		t.Fatalf("node --test proxy.test.mjs: %v\n%s", err, out)
	}
}
