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
	t.Parallel()
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
	actxRun, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(actxRun, 90*time.Second)
	defer cancelTimeout()

	// Each step waits for its element afresh: a click that submits a form
	// replaces the document, and a wait begun on the old one never ends.
	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
			err := chromedp.Do(sctx, actions...)
			scancel()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				dctx, dcancel := context.WithTimeout(actxRun, 5*time.Second)
				defer dcancel()
				page, _ := chromedp.Run(dctx, chromedp.OuterHTML(chromedp.CSS("html")))
				loc, _ := chromedp.Run(dctx, chromedp.Location())
				t.Fatalf("browser step %q: %v\nat %s:\n%s\nserver stderr:\n%s", name, err, loc, page, app.stderr.String())
			}
		}
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(app.url+"/")); err != nil {
		t.Fatal(err)
	}
	step("fill the connect form",
		chromedp.WaitVisible(chromedp.CSS(`#connect-form`)),
		chromedp.SetValue(chromedp.CSS(`#customer_id`), "browser-1"),
		chromedp.SetValue(chromedp.CSS(`#customer_name`), "Browser Test Inc."))
	step("connect", chromedp.Click(chromedp.CSS(`#connect`)))
	// The sandbox's Connect page: pick a provider, then sign in.
	step("pick a provider", chromedp.WaitVisible(chromedp.CSS(`button[value="gusto"]`)), chromedp.Click(chromedp.CSS(`button[value="gusto"]`)))
	step("sign in",
		chromedp.WaitVisible(chromedp.CSS(`#username`)),
		chromedp.SetValue(chromedp.CSS(`#username`), "authorized_simple"),
		chromedp.SetValue(chromedp.CSS(`#password`), "letmein"))
	step("submit", chromedp.Click(chromedp.CSS(`#submit`)))
	// Back in finchconnect, on the connection's page.
	step("the company page", chromedp.WaitVisible(chromedp.CSS(`#legal-name`)))
	legalName, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#legal-name`)))
	if err != nil {
		t.Fatal(err)
	}
	status, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#status`)))
	if err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(legalName) == "" || legalName == "—" {
		t.Errorf("legal name on the page = %q, want the sandbox company's", legalName)
	}
	if status != "Connected" { // statusName("connected")
		t.Errorf("status on the page = %q, want Connected", status)
	}
	dir := os.Getenv("FINCHCONNECT_TEST_ARTIFACTS")
	if dir == "" {
		dir = os.TempDir()
	}
	path := filepath.Join(dir, "finchconnect-browser-flow.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Errorf("save screenshot: %v", err)
	}
	t.Logf("screenshot of the company page: %s (legal name %q)", path, legalName)
}
