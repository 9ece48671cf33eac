package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath finds the browser for TestBrowser_DemoFlow: the
// FINCHCONNECT_TEST_CHROMIUM variable, or Debian's chromium on PATH.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("FINCHCONNECT_TEST_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no Chromium found; .ci/run installs Debian's chromium")
	}
	t.Skip("no Chromium on this machine: install Debian's chromium (or set FINCHCONNECT_TEST_CHROMIUM) to run the browser test")
	return ""
}

// TestBrowser_DemoFlow clicks through the demo in a real headless Chromium, as
// a person would: the connect form, the sandbox's provider picker and
// sign-in form, and the company page. It saves a screenshot of the result.
func TestBrowser_DemoFlow(t *testing.T) {
	exe := chromiumPath(t)
	app := start(t, nil, "-addr", "127.0.0.1:0", "-data-dir", t.TempDir())

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox cannot start
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1200, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	defer cancelTimeout()

	err := chromedp.Do(ctx,
		chromedp.Navigate(app.url+"/"),
		chromedp.WaitVisible(`#connect-form`),
		chromedp.SendKeys(`#customer_id`, "browser-1"),
		chromedp.SendKeys(`#customer_name`, "Browser Test Inc."),
		chromedp.Click(`#connect`),
		// The sandbox's Connect page: pick a provider, then sign in.
		chromedp.WaitVisible(`button[value="gusto"]`),
		chromedp.Click(`button[value="gusto"]`),
		chromedp.WaitVisible(`#username`),
		chromedp.SendKeys(`#username`, "authorized_simple"),
		chromedp.SendKeys(`#password`, "letmein"),
		chromedp.Click(`#submit`),
		// Back in finchconnect, on the connection's page.
		chromedp.WaitVisible(`#legal-name`),
	)
	if err != nil {
		t.Fatalf("browser flow: %v\nserver stderr:\n%s", err, app.stderr.String())
	}
	legalName, err := chromedp.Run(ctx, chromedp.Text(`#legal-name`))
	if err != nil {
		t.Fatal(err)
	}
	status, err := chromedp.Run(ctx, chromedp.Text(`#status`))
	if err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(90))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(legalName) == "" || legalName == "—" {
		t.Errorf("legal name on the page = %q, want the sandbox company's", legalName)
	}
	if status != "connected" {
		t.Errorf("status on the page = %q, want connected", status)
	}
	dir := os.Getenv("FINCHCONNECT_TEST_ARTIFACTS")
	if dir == "" {
		dir = os.TempDir()
	}
	path := filepath.Join(dir, "finchconnect-browser-flow.jpg")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Errorf("save screenshot: %v", err)
	}
	t.Logf("screenshot of the company page: %s (legal name %q)", path, legalName)
}
