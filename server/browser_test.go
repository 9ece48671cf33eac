package server_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/finchconnect/finchconnect/tokenstore"
)

// chromium finds the browser for the browser tests: the
// FINCHCONNECT_TEST_CHROMIUM variable, or Debian's chromium on PATH (as
// cmd/finchconnect's TestBrowser_DemoFlow does).
func chromium(t *testing.T) string {
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

// browserTab drives one headless Chromium tab for a test.
type browserTab struct {
	t    *testing.T
	ctx  context.Context // the whole walk's deadline
	root context.Context // the tab, without that deadline, for diagnostics
	dir  string          // where screenshots go
}

func newBrowserTab(t *testing.T, width, height int) *browserTab {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox cannot start
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.WindowSize(width, height),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(cancelTab)
	ctx, cancel := context.WithTimeout(tab, 3*time.Minute)
	t.Cleanup(cancel)
	// The first action on a tab starts the browser, which ends with that
	// action's context: start it on the tab's own, so the per-step
	// timeouts below do not close it.
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	dir := os.Getenv("FINCHCONNECT_TEST_ARTIFACTS")
	if dir == "" {
		dir = os.TempDir()
	}
	return &browserTab{t: t, ctx: ctx, root: tab, dir: dir}
}

// fatal stops the test with what the tab shows.
func (b *browserTab) fatal(format string, args ...any) {
	b.t.Helper()
	dctx, cancel := context.WithTimeout(b.root, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(dctx, chromedp.Location())
	page, _ := chromedp.Run(dctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	b.t.Fatalf(format+"\nat %s:\n%s", append(args, loc, page)...)
}

// do runs actions once; an error is fatal.
func (b *browserTab) do(name string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	sctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		b.fatal("browser step %q: %v", name, err)
	}
}

// click clicks the element sel once its document has it. It is one
// attempt: a click that navigates must not be repeated on the next page.
func (b *browserTab) click(name, sel string) {
	b.t.Helper()
	b.waitFor(name+": the element is there", fmt.Sprintf(`document.querySelector(%q) !== null`, sel))
	b.do(name, chromedp.Click(chromedp.CSS(sel)))
}

// waitFor polls a JavaScript condition until it holds. It survives
// navigations: each poll evaluates in whatever document is current.
func (b *browserTab) waitFor(name, cond string) {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		sctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		ok, err := chromedp.Run(sctx, chromedp.Evaluate[bool](`(() => { try { return document.readyState === "complete" && !!(`+cond+`) } catch (e) { return false } })()`))
		cancel()
		if err == nil && ok {
			return
		}
		lastErr = err
		time.Sleep(50 * time.Millisecond) // polling a browser, not waiting out a TTL
	}
	b.fatal("browser wait %q: %s never held (last error %v)", name, cond, lastErr)
}

// eval evaluates expr in the current document.
func evalIn[T any](b *browserTab, expr string) T {
	b.t.Helper()
	sctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.fatal("evaluate %s: %v", expr, err)
	}
	return v
}

// widths are the screens every page is checked on: a laptop's and a
// phone's (390 px, an iPhone 12 to 15).
var widths = []int{1280, 390}

// checkLayout shows the current page at each width, saves a screenshot,
// and fails if the page is wider than the screen (a table or a long id
// pushing the page sideways). It leaves the tab at 1280 px.
func (b *browserTab) checkLayout(name string) {
	b.t.Helper()
	for _, w := range widths {
		b.do(fmt.Sprintf("%s at %d px", name, w), chromedp.EmulateViewport(int64(w), 900))
		b.waitFor(fmt.Sprintf("%s: the viewport is %d px", name, w), fmt.Sprintf(`window.innerWidth === %d`, w))
		type widthsJS struct {
			Scroll, Inner int
			Wide          []string
		}
		got := evalIn[widthsJS](b, `(() => {
			const inner = window.innerWidth, wide = [];
			for (const el of document.body.querySelectorAll("*")) {
				const r = el.getBoundingClientRect();
				if (r.right > inner + 0.5 && wide.length < 8) wide.push(el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (el.className ? "." + String(el.className).replace(/ /g, ".") : "") + " right=" + Math.round(r.right));
			}
			return {Scroll: document.documentElement.scrollWidth, Inner: inner, Wide: wide};
		})()`)
		sctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
		shot, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		cancel()
		if err != nil {
			b.fatal("screenshot %s at %d px: %v", name, w, err)
		}
		path := filepath.Join(b.dir, fmt.Sprintf("finchconnect-%s-%dpx.png", name, w))
		if err := os.WriteFile(path, shot, 0o644); err != nil {
			b.t.Errorf("save screenshot: %v", err)
		}
		b.t.Logf("screenshot of %s at %d px: %s", name, w, path)
		if got.Scroll > got.Inner {
			b.t.Errorf("%s at %d px: the page is %d px wide (scrollWidth), wider than the %d px screen; too wide: %s",
				name, w, got.Scroll, got.Inner, strings.Join(got.Wide, ", "))
		}
	}
	b.do(name+" back at 1280 px", chromedp.EmulateViewport(1280, 900))
	b.waitFor(name+": the viewport is back", `window.innerWidth === 1280`)
}

// TestBrowser_PagesAtScale walks the operator's pages in a real headless
// Chromium with 3,000 employers connected: the home page's search and
// paging both ways, an employee page (SSN masked), and a disconnect that
// asks first. Every page is shown at 1280 px and at 390 px, saved as a
// screenshot, and checked for horizontal overflow.
func TestBrowser_PagesAtScale(t *testing.T) {
	// Its own harness, store and browser: it runs beside the other
	// parallel tests, after the package's serial ones.
	t.Parallel()
	chromium(t) // skip early, before seeding, where there is none
	h := newHarness(t, harnessOptions{backend: tokenstore.NewMemory()})
	began := time.Now()
	// Seeded before the real connection, so that it is the newest.
	seedConnections(t, h.store, 3000, time.Now().UTC().Add(-72*time.Hour))
	t.Logf("seeded 3,000 connections in %v", time.Since(began))
	real := h.connectWith("zz-browser", "company", "directory", "individual", "employment", "payment", "pay_statement", "ssn")

	b := newBrowserTab(t, 1280, 900)
	rows := `document.querySelectorAll("#connections tbody tr").length`
	pageOf := `document.querySelector("#page-of").textContent.trim()`

	// The home page: the newest first, the total, 61 pages of 50.
	b.do("open the home page", chromedp.Navigate(h.ts.URL+"/"))
	b.waitFor("the home page", `document.querySelector("#connections") !== null`)
	if got := evalIn[string](b, `document.querySelector("#total").textContent`); got != "3,001" {
		t.Errorf("total on the home page = %q, want 3,001", got)
	}
	if got := evalIn[int](b, rows); got != 50 {
		t.Errorf("rows on the first page = %d, want 50", got)
	}
	if got := evalIn[string](b, `document.querySelector("#connections tbody tr .muted").textContent`); got != "zz-browser" {
		t.Errorf("first row = %q, want the newest connection, zz-browser", got)
	}
	if got := evalIn[string](b, pageOf); got != "Page 1 of 61" {
		t.Errorf("pager = %q, want Page 1 of 61", got)
	}
	b.checkLayout("home")

	// Paging forward, then back.
	b.click("Next", "#next-page")
	b.waitFor("page 2", pageOf+` === "Page 2 of 61"`)
	if got := evalIn[string](b, `document.querySelector("#connections tbody tr .muted").textContent`); got != "cust-2950" {
		t.Errorf("first row of page 2 = %q, want cust-2950", got)
	}
	b.click("Next again", "#next-page")
	b.waitFor("page 3", pageOf+` === "Page 3 of 61"`)
	b.click("Previous", "#prev-page")
	b.waitFor("back on page 2", pageOf+` === "Page 2 of 61"`)
	b.click("Previous again", "#prev-page")
	b.waitFor("back on page 1", pageOf+` === "Page 1 of 61" && !document.querySelector("#prev-page")`)

	// The search finds one customer among 3,001.
	b.do("type a search", chromedp.SetValue(chromedp.CSS("#q"), "cust-2024"))
	b.click("search", "#search")
	b.waitFor("the search's result", `location.search.includes("q=cust-2024") && `+rows+` === 1`)
	if got := evalIn[string](b, `document.querySelector("#connections tbody tr .muted").textContent`); got != "cust-2024" {
		t.Errorf("the search found %q, want cust-2024", got)
	}
	if got := evalIn[string](b, `document.querySelector("#showing").textContent`); got != "Showing 1–1 of 1 matching" {
		t.Errorf("the search says %q, want Showing 1–1 of 1 matching", got)
	}
	b.checkLayout("search")

	// The real connection, its directory, one employee.
	b.do("search for the real one", chromedp.SetValue(chromedp.CSS("#q"), "ZZ-BROWSER"))
	b.click("search again", "#search")
	b.waitFor("the real connection found", `location.search.includes("q=ZZ-BROWSER") && `+rows+` === 1`)
	b.click("open the connection", "#connections tbody tr a")
	b.waitFor("the connection page", `document.querySelector("#directory tbody a") !== null && document.querySelector("#legal-name") !== null`)
	b.checkLayout("connection")
	// The company's bank accounts and EIN, masked to their last digits:
	// no run of six digits or more (account numbers are 10 to 12 digits,
	// routing numbers 9, an EIN 9).
	accounts := evalIn[string](b, `(document.querySelector("#accounts") || {textContent: ""}).textContent`)
	if !strings.Contains(accounts, "account ••") {
		t.Errorf("bank accounts on the connection page = %q, want them shown masked (account ••…1234)", accounts)
	}
	ein := evalIn[string](b, `document.querySelector("#ein").textContent`)
	if long := regexp.MustCompile(`[0-9]{6,}`).FindString(accounts + " " + ein); long != "" || !strings.Contains(ein, "•") {
		t.Errorf("the connection page shows EIN %q and accounts %q: want every number masked", ein, accounts)
	}
	b.click("open an employee", "#directory tbody a")
	b.waitFor("the employee page", `document.querySelector("#employee-name") !== null`)
	ssn := evalIn[string](b, `document.querySelector("#ssn").textContent`)
	if !regexp.MustCompile(`^•••-••-[0-9A-Za-z]{4}$`).MatchString(ssn) {
		t.Errorf("SSN on the employee page = %q, want it masked as •••-••-1234", ssn)
	}
	text := evalIn[string](b, `document.body.innerText`)
	if strings.Contains(text, "000-00-") {
		t.Errorf("the employee page shows an SSN unmasked:\n%s", text)
	}
	for _, want := range []string{"Employment", "Recent pay statements", "$"} {
		if !strings.Contains(text, want) {
			t.Errorf("the employee page lacks %q:\n%s", want, text)
		}
	}
	b.checkLayout("employee")

	// Disconnect asks first, and only the confirmation disconnects.
	b.click("back to the connection", "#back")
	b.waitFor("the connection page again", `document.querySelector("#disconnect") !== null`)
	b.click("Disconnect", "#disconnect")
	b.waitFor("the confirmation", `document.querySelector("#confirm-disconnect") !== null`)
	if _, err := h.store.Lookup(t.Context(), real); err != nil {
		t.Fatalf("the connection is gone before the confirmation: %v", err)
	}
	if got := evalIn[string](b, `document.querySelector("#confirm h1").textContent`); got != "Disconnect Customer zz-browser?" {
		t.Errorf("the confirmation asks %q", got)
	}
	b.checkLayout("confirm-disconnect")
	b.click("Cancel", "#cancel")
	b.waitFor("back on the connection page", `document.querySelector("#disconnect") !== null && !document.querySelector("#confirm")`)
	if _, err := h.store.Lookup(t.Context(), real); err != nil {
		t.Fatalf("Cancel disconnected: %v", err)
	}
	b.click("Disconnect again", "#disconnect")
	b.waitFor("the confirmation again", `document.querySelector("#confirm-disconnect") !== null`)
	b.click("confirm", "#confirm-disconnect")
	b.waitFor("home, disconnected", `document.querySelector("#notice") !== null`)
	if _, err := h.store.Lookup(t.Context(), real); err == nil {
		t.Error("the confirmed disconnect left the connection stored")
	}
	if got := evalIn[string](b, `document.querySelector("#total").textContent`); got != "3,000" {
		t.Errorf("total after the disconnect = %q, want 3,000", got)
	}
}
